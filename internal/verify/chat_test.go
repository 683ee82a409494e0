package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/verify"
)

// importChatModel writes tolstoy-1m as a Q8_0 GGUF with the ChatML chat
// template into home's registry as "tolstoy-chat".
func importChatModel(t *testing.T, home string) string {
	t.Helper()
	def, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	var b bytes.Buffer
	if err := def.WriteGGUF(&b, gguf.Q8_0); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	w := &gguf.Writer{}
	for _, kv := range f.KVs {
		w.Set(kv.Key, kv.Value)
	}
	w.Set("tokenizer.chat_template", "chatml")
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := w.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "chat.gguf")
	if err := os.WriteFile(src, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.NewRegistry(home).Import(src, engine.ImportOptions{Name: "tolstoy-chat"}); err != nil {
		t.Fatal(err)
	}
	return "tolstoy-chat"
}

// chatJob runs msgs on model as the miner's built-in engine does (the
// template, or the flattened conversation for a model without one) and
// returns the claim a receipt for claimed (the messages the customer
// sent, as the receipt's prompt hash binds them) makes, with the encoded
// attestation.
func chatJob(t *testing.T, home, model string, ran, claimed []minerproto.ChatMessage) (verify.ReceiptClaim, []byte) {
	t.Helper()
	m, err := engine.Resolve(home, model)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	hash, err := verify.ModelFileHash(engine.NewRegistry(home), model)
	if err != nil {
		t.Fatal(err)
	}
	req := engine.GenerateRequest{MaxTokens: 40, Temperature: 0.8, Seed: 11, Threads: 1}
	if m.ChatTemplate() != "" {
		for _, cm := range ran {
			req.Messages = append(req.Messages, engine.ChatMessage{Role: cm.Role, Content: cm.Content})
		}
	} else {
		req.Prompt = verify.FlattenChat(ran)
	}
	res, a, err := verify.Generate(context.Background(), m, req, hash, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	att, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ph, ah := minerproto.PromptHash("", claimed), sha256.Sum256(att)
	text := res.Text
	return verify.ReceiptClaim{AttestHash: ah[:], PromptHash: ph[:], Messages: claimed, Result: &text, MaxTokens: 40}, att
}

var conversation = []minerproto.ChatMessage{{Role: "system", Content: "Be Tolstoy."}, {Role: "user", Content: "Who is Natasha?"}}

func TestHonestChatJobVerifies(t *testing.T) {
	home := t.TempDir()
	for _, model := range []string{importChatModel(t, home), engine.DefaultModel} {
		t.Run(model, func(t *testing.T) {
			claim, att := chatJob(t, home, model, conversation, conversation)
			rep, err := verify.VerifyReceipt(context.Background(), home, model, claim, att, 2, verify.DefaultTolerance)
			if err != nil || !rep.Pass {
				t.Fatalf("honest chat job: %+v, %v", rep, err)
			}
		})
	}
}

// TestChatJobFromOtherMessagesIsRejected: a miner that ran other messages
// than the customer's (a cached answer to another conversation) signs a
// receipt for the customer's; its attested prompt tokens are not the
// customer's rendered conversation. Rewriting them to the customer's
// leaves commitments the recomputation does not reproduce. Messages that
// do not hash to the receipt's prompt hash are refused before either.
func TestChatJobFromOtherMessagesIsRejected(t *testing.T) {
	home := t.TempDir()
	other := slices.Clone(conversation)
	other[1].Content = "Who is Pierre?"
	for _, model := range []string{importChatModel(t, home), engine.DefaultModel} {
		t.Run(model, func(t *testing.T) {
			m, err := engine.Resolve(home, model)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			claim, att := chatJob(t, home, model, other, conversation)
			if _, err := verify.VerifyReceipt(context.Background(), home, model, claim, att, 2, verify.DefaultTolerance); !errors.Is(err, verify.ErrTokens) {
				t.Fatalf("other messages' prompt tokens: %v, want ErrTokens", err)
			}

			// The same, with the attested prompt tokens replaced by the
			// customer's conversation (and the receipt signing that).
			a, err := verify.DecodeAttestation(att)
			if err != nil {
				t.Fatal(err)
			}
			withBOS, noBOS, err := verify.ChatPromptTokens(m, conversation)
			if err != nil {
				t.Fatal(err)
			}
			ids := withBOS
			if noBOS != nil && len(a.PromptTokens) == len(noBOS) {
				ids = noBOS
			}
			a.PromptTokens = a.PromptTokens[:0]
			for _, id := range ids {
				a.PromptTokens = append(a.PromptTokens, uint32(id))
			}
			forged, err := a.Encode()
			if err != nil {
				t.Fatal(err)
			}
			fh := sha256.Sum256(forged)
			claim.AttestHash = fh[:]
			rep, err := verify.VerifyReceipt(context.Background(), home, model, claim, forged, 2, verify.DefaultTolerance)
			if !errors.Is(err, verify.ErrMismatch) || rep.Pass {
				t.Fatalf("forged prompt tokens: %+v, %v, want ErrMismatch", rep, err)
			}

			// Messages other than the ones the receipt's prompt hash binds.
			claim, att = chatJob(t, home, model, conversation, conversation)
			claim.Messages = other
			if _, err := verify.VerifyReceipt(context.Background(), home, model, claim, att, 2, verify.DefaultTolerance); !errors.Is(err, verify.ErrTokens) {
				t.Fatalf("messages the receipt does not bind: %v, want ErrTokens", err)
			}
		})
	}
}

func TestFlattenChatIsTheBackends(t *testing.T) {
	var bm []backend.ChatMessage
	for _, m := range conversation {
		bm = append(bm, backend.ChatMessage{Role: m.Role, Content: m.Content})
	}
	if got, want := verify.FlattenChat(conversation), backend.FlattenMessages(bm); got != want {
		t.Fatalf("FlattenChat %q, the backend runs %q", got, want)
	}
}

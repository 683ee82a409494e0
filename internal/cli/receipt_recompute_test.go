package cli_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/verify"
)

// attestedJob writes what a customer holds after a job on the built-in
// engine: the ai-results JSON with its receipt, the miner's attestation
// and the prompt; gen may swap the attestation for a cheat's.
func attestedJob(t *testing.T, edit func(a *verify.Attestation)) (dir, pubHex string) {
	t.Helper()
	const prompt = "Natasha said"
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
	if err != nil {
		t.Fatal(err)
	}
	res, a, err := verify.Generate(context.Background(), m, engine.GenerateRequest{Prompt: prompt, MaxTokens: 48, Temperature: 0.8, Seed: 4, Threads: 1}, hash, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(a)
	}
	att, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	ph, rh, ah := sha256.Sum256([]byte(prompt)), sha256.Sum256([]byte(res.Text)), sha256.Sum256(att)
	cust := address.FromPubKey(pub)
	r := jobs.Receipt{JobID: make([]byte, jobs.IDLen), ChainID: "aitbc-devnet", Customer: cust[:], Model: engine.DefaultModel,
		PromptHash: ph[:], ResultHash: rh[:], TokensIn: uint64(len(res.PromptTokens)), TokensOut: uint64(len(res.Tokens)),
		StartMs: 1, EndMs: 2, Price: coin.Amount(len(res.Tokens)), AttestHash: ah[:]}
	r.Sign(priv)
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	rv, err := coordinator.NewReceiptView(b)
	if err != nil {
		t.Fatal(err)
	}
	job := coordinator.JobView{JobID: rv.JobID, Status: "completed", Model: engine.DefaultModel, MaxTokens: 48, Result: &res.Text, Receipt: rv,
		Sampling: &coordinator.SamplingView{Temperature: 0.8, Seed: 4}}
	js, _ := json.Marshal(job)
	dir = t.TempDir()
	for name, data := range map[string][]byte{"receipt.json": js, "job.att": att, "prompt.txt": []byte(prompt)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, hex.EncodeToString(pub)
}

func TestReceiptVerifyRecomputeAcceptsAnHonestJob(t *testing.T) {
	dir, pub := attestedJob(t, nil)
	out, _, err := runCLI(t, "receipt", "verify", "--file", filepath.Join(dir, "receipt.json"), "--offline", "--pubkey", pub,
		"--recompute", "--attestation", filepath.Join(dir, "job.att"), "--prompt-file", filepath.Join(dir, "prompt.txt"), "--output", "json")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var chk cli.ReceiptCheck
	if err := json.Unmarshal([]byte(out), &chk); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !chk.Signature || chk.Recompute == nil || !chk.Recompute.Pass || len(chk.Recompute.Chunks) != 2 {
		t.Fatalf("honest job: %s", out)
	}
	// The engine's attestation carries its sampling parameters, and every
	// draw of its sampler was replayed.
	att, _ := os.ReadFile(filepath.Join(dir, "job.att"))
	a, err := verify.DecodeAttestation(att)
	if err != nil {
		t.Fatal(err)
	}
	want := len(a.OutputTokens)
	if a.Stop == "eos" {
		want++
	}
	if a.Sampling == nil || chk.Recompute.Replayed != want {
		t.Errorf("%d draws replayed, want %d: %s", chk.Recompute.Replayed, want, out)
	}
}

// TestReceiptVerifyRecomputeChecksTheJobsSampling: the job's sampling
// request in ai-results' JSON must be what the attestation claims; a job
// that asked another seed fails with the reason.
func TestReceiptVerifyRecomputeChecksTheJobsSampling(t *testing.T) {
	dir, pub := attestedJob(t, nil)
	file := filepath.Join(dir, "receipt.json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var job coordinator.JobView
	if err := json.Unmarshal(b, &job); err != nil || job.Sampling == nil || job.Sampling.Seed != 4 {
		t.Fatalf("the job's JSON carries no sampling: %v %s", err, b)
	}
	job.Sampling.Seed = 5
	b, _ = json.Marshal(job)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "receipt", "verify", "--file", file, "--offline", "--pubkey", pub,
		"--recompute", "--attestation", filepath.Join(dir, "job.att"), "--prompt-file", filepath.Join(dir, "prompt.txt"))
	if !errors.Is(err, cli.ErrReceiptBad) || !strings.Contains(err.Error(), "seed") || !strings.Contains(err.Error(), "sampling parameters differ") {
		t.Fatalf("got %v, want the seed named: %s", err, out)
	}
}

func TestReceiptVerifyRecomputeRejectsAnotherPromptsCommitments(t *testing.T) {
	m, _ := engine.LoadDefault()
	dir, pub := attestedJob(t, func(a *verify.Attestation) {
		// The commitments of another prompt: the miner replays an answer
		// but attests this prompt's tokens (which the receipt binds).
		_, other, err := verify.Generate(context.Background(), m, engine.GenerateRequest{Prompt: "Pierre said", MaxTokens: 48, Temperature: 0.8, Seed: 4, Threads: 1}, a.ModelSHA256, "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Commits = other.Commits[:len(a.Commits)]
	})
	out, _, err := runCLI(t, "receipt", "verify", "--file", filepath.Join(dir, "receipt.json"), "--offline", "--pubkey", pub,
		"--recompute", "--attestation", filepath.Join(dir, "job.att"), "--prompt-file", filepath.Join(dir, "prompt.txt"))
	if !errors.Is(err, cli.ErrReceiptBad) || !strings.Contains(err.Error(), "recomputation does not match") {
		t.Fatalf("got %v, want a recomputation mismatch: %s", err, out)
	}
	if !strings.Contains(out, "recompute      FAILED") {
		t.Errorf("the report does not say the recomputation failed:\n%s", out)
	}
}

// TestReceiptVerifyRecomputeChecksAChatJobsMessages: a chat job's prompt is
// rebuilt from its messages (--messages-file) as the miner's engine ran
// it; the honest job passes, and other messages than the receipt binds,
// or a receipt for messages the miner did not run, are refused.
func TestReceiptVerifyRecomputeChecksAChatJobsMessages(t *testing.T) {
	msgs := []minerproto.ChatMessage{{Role: "system", Content: "Be Tolstoy."}, {Role: "user", Content: "Who is Natasha?"}}
	other := []minerproto.ChatMessage{msgs[0], {Role: "user", Content: "Who is Pierre?"}}
	write := func(ran, claimed []minerproto.ChatMessage) (dir, pubHex string) {
		m, err := engine.LoadDefault()
		if err != nil {
			t.Fatal(err)
		}
		hash, err := verify.ModelFileHash(engine.NewRegistry(t.TempDir()), engine.DefaultModel)
		if err != nil {
			t.Fatal(err)
		}
		// tolstoy-1m has no chat template: the built-in backend runs the
		// flattened conversation.
		res, a, err := verify.Generate(context.Background(), m, engine.GenerateRequest{Prompt: verify.FlattenChat(ran), MaxTokens: 48, Temperature: 0.8, Seed: 4, Threads: 1}, hash, "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		att, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		pub, priv, _ := ed25519.GenerateKey(nil)
		ph, rh, ah := minerproto.PromptHash("", claimed), sha256.Sum256([]byte(res.Text)), sha256.Sum256(att)
		cust := address.FromPubKey(pub)
		r := jobs.Receipt{JobID: make([]byte, jobs.IDLen), ChainID: "aitbc-devnet", Customer: cust[:], Model: engine.DefaultModel,
			PromptHash: ph[:], ResultHash: rh[:], TokensIn: uint64(len(res.PromptTokens)), TokensOut: uint64(len(res.Tokens)),
			StartMs: 1, EndMs: 2, Price: coin.Amount(len(res.Tokens)), AttestHash: ah[:]}
		r.Sign(priv)
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		rv, err := coordinator.NewReceiptView(b)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(coordinator.JobView{JobID: rv.JobID, Status: "completed", Model: engine.DefaultModel, MaxTokens: 48, Result: &res.Text, Receipt: rv})
		mj, _ := json.Marshal(claimed)
		oj, _ := json.Marshal(other)
		dir = t.TempDir()
		for name, data := range map[string][]byte{"receipt.json": js, "job.att": att, "messages.json": mj, "other.json": oj} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir, hex.EncodeToString(pub)
	}
	verifyWith := func(dir, pub, messages string) (string, error) {
		out, _, err := runCLI(t, "receipt", "verify", "--file", filepath.Join(dir, "receipt.json"), "--offline", "--pubkey", pub,
			"--recompute", "--attestation", filepath.Join(dir, "job.att"), "--messages-file", filepath.Join(dir, messages), "--output", "json")
		return out, err
	}

	dir, pub := write(msgs, msgs)
	out, err := verifyWith(dir, pub, "messages.json")
	if err != nil {
		t.Fatalf("honest chat job: %v: %s", err, out)
	}
	var chk cli.ReceiptCheck
	if err := json.Unmarshal([]byte(out), &chk); err != nil || chk.Recompute == nil || !chk.Recompute.Pass {
		t.Fatalf("honest chat job: %v: %s", err, out)
	}
	if _, err := verifyWith(dir, pub, "other.json"); !errors.Is(err, cli.ErrReceiptBad) || !strings.Contains(err.Error(), "do not hash to the receipt's prompt hash") {
		t.Fatalf("messages the receipt does not bind: %v", err)
	}

	// The miner answered other messages and signed the customer's.
	dir, pub = write(other, msgs)
	if _, err := verifyWith(dir, pub, "messages.json"); !errors.Is(err, cli.ErrReceiptBad) || !strings.Contains(err.Error(), "prompt encodes to other tokens") {
		t.Fatalf("an answer to other messages: %v", err)
	}
}

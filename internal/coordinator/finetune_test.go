package coordinator

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/train/lm"
)

// A fine-tuning job: the customer's book goes up by hash, the assigned
// miner fetches it, fine-tunes tolstoy-1m streaming each step, stores the
// GGUF with the coordinator for the customer, and the job settles on a
// receipt whose result hash commits to the result naming the GGUF's hash;
// the customer downloads the GGUF and it matches.
func TestFinetuneJobStoresItsModelForTheCustomer(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 16<<20, 32<<20))
	h.fund(10 * coin.Unit)
	model := jobkind.FinetuneModel(engine.DefaultModel)
	key, addr := newKey(t)
	h.chain.mu.Lock()
	h.chain.miners = append(h.chain.miners, ChainMiner{Address: addr, PubKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)),
		Models: []string{model}, PricePer1k: coin.Unit, Stake: 100 * coin.Unit, Status: "active"})
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	m := &fakeMiner{h: h, key: key, addr: addr, price: coin.Unit}
	m.mc = &minerConn{addr: addr, pub: key.Public().(ed25519.PublicKey), models: []string{model}, slots: 1, backend: "fake", send: make(chan minerproto.Envelope, 64)}
	if err := h.s.admit(m.mc); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	c := NewClient(srv.URL, h.apiKey)

	text, err := os.ReadFile(filepath.Join("..", "train", "lm", "testdata", "book.txt"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "book.txt")
	os.WriteFile(path, text, 0o600)
	info, err := c.UploadFile(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := lm.Params{Steps: 2, SeqLen: 32}.WithDefaults(256)
	if err != nil {
		t.Fatal(err)
	}
	spec, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeTraining, Input: jobkind.FileRef{SHA256: info.Hash, Bytes: info.Size},
		Finetune: &jobkind.FinetuneSpec{Base: engine.DefaultModel, Params: p}}, text)
	if err != nil {
		t.Fatal(err)
	}
	// The classifier's model name does not run a fine-tuning spec.
	if _, err := c.Submit(t.Context(), JobRequest{Model: jobkind.ModelCustomClassifier, Prompt: prompt, MaxTokens: spec.Units}); err == nil || !strings.Contains(err.Error(), "does not run") {
		t.Fatalf("fine-tuning spec under the classifier's name: %v", err)
	}
	v, err := c.Submit(t.Context(), JobRequest{Model: model, Prompt: prompt, MaxTokens: spec.Units})
	if err != nil {
		t.Fatal(err)
	}
	mj := m.nextJob()
	files := &miner.HTTPFiles{Coordinator: srv.URL, Key: minerproto.KeySigner(m.key), Now: h.clock.Now}
	kr := miner.KindRunner{Files: files, Results: files}
	var steps int
	out, err := kr.Run(t.Context(), mj, func(s string) error {
		if strings.HasPrefix(s, "step ") {
			steps++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := jobkind.ParseModelResult(out.Text)
	if err != nil || steps != 2 || out.TokensOut != spec.Units {
		t.Fatalf("result %q (%v), %d steps streamed", out.Text, err, steps)
	}
	m.finish(mj, out.Text, out.TokensOut)
	h.waitSent(jobs.TypeSettle, 1)
	h.block()
	j := h.waitStatus(v.JobID, store.StatusSettled)
	rv, err := NewReceiptView(j.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	rh := sha256.Sum256([]byte(out.Text))
	if rv.ResultHash != hex.EncodeToString(rh[:]) || rv.Model != model {
		t.Fatalf("receipt %+v", rv)
	}
	var gguf bytes.Buffer
	if _, err := c.DownloadFile(t.Context(), res.SHA256, &gguf); err != nil {
		t.Fatal(err)
	}
	if err := res.CheckFile(gguf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.LoadGGUF(gguf.Bytes()); err != nil {
		t.Fatal(err)
	}
}

package coordinator

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// addKindMiner connects a miner that offers the data-processing kind.
func (h *harness) addKindMiner(price coin.Amount) *fakeMiner {
	h.t.Helper()
	key, addr := newKey(h.t)
	models := []string{jobkind.ModelDataProcessing}
	h.chain.mu.Lock()
	h.chain.miners = append(h.chain.miners, ChainMiner{Address: addr, PubKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)),
		Models: models, PricePer1k: price, Stake: 100 * coin.Unit, Status: "active"})
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	m := &fakeMiner{h: h, key: key, addr: addr, price: price}
	m.mc = &minerConn{addr: addr, pub: key.Public().(ed25519.PublicKey), models: models, slots: 1, backend: "fake", send: make(chan minerproto.Envelope, 64)}
	if err := h.s.admit(m.mc); err != nil {
		h.t.Fatal(err)
	}
	return m
}

const salesCSV = "region,units\nnorth,10\nsouth,4\nnorth,7\n"

// A data-processing job: the input goes up by hash, the miner it is
// assigned to — and no other — fetches it with signed headers, runs the
// pipeline, and the job settles on a receipt whose prompt hash commits to
// the input's hash and the parameters and whose result hash is the
// report's.
func TestDataProcessingJobRunsOnTheAssignedMinersFetchedInput(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 1<<20, 1<<20))
	h.fund(10 * coin.Unit)
	m := h.addKindMiner(coin.Unit)
	other := h.addMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	c := NewClient(srv.URL, h.apiKey)
	path := filepath.Join(t.TempDir(), "processed_data.csv")
	os.WriteFile(path, []byte(salesCSV), 0o600)
	info, err := c.UploadFile(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	spec, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeDataProcessing,
		Input: jobkind.FileRef{SHA256: info.Hash, Bytes: info.Size},
		Data:  &dataproc.Spec{GroupBy: []string{"region"}, Aggregates: []dataproc.Aggregate{{Fn: "sum", Column: "units"}}, Output: "csv"}}, []byte(salesCSV))
	if err != nil {
		t.Fatal(err)
	}
	// Wrong max tokens, or a file the tenant never uploaded: refused at submit.
	if _, err := c.Submit(t.Context(), JobRequest{Model: jobkind.ModelDataProcessing, Prompt: prompt, MaxTokens: 50}); !errors.Is(err, ErrInvalidMaxTokens) {
		t.Fatalf("wrong max tokens: %v", err)
	}
	bad := strings.Replace(prompt, info.Hash, strings.Repeat("0", 64), 1)
	if _, err := c.Submit(t.Context(), JobRequest{Model: jobkind.ModelDataProcessing, Prompt: bad, MaxTokens: spec.Units}); !errors.Is(err, ErrFileNotFound) {
		t.Fatalf("unknown input: %v", err)
	}
	v, err := c.Submit(t.Context(), JobRequest{Model: jobkind.ModelDataProcessing, Prompt: prompt, MaxTokens: spec.Units})
	if err != nil {
		t.Fatal(err)
	}
	mj := m.nextJob()

	fetch := func(key ed25519.PrivateKey) ([]byte, error) {
		f := &miner.HTTPFiles{Coordinator: srv.URL, Key: minerproto.KeySigner(key), Now: h.clock.Now}
		return f.Fetch(t.Context(), v.JobID, info.Hash)
	}
	if _, err := fetch(other.key); err == nil || !strings.Contains(err.Error(), "not assigned") {
		t.Fatalf("another miner fetched the input: %v", err)
	}
	// The assigned miner's runner fetches and runs it.
	kr := miner.KindRunner{Files: &miner.HTTPFiles{Coordinator: srv.URL, Key: minerproto.KeySigner(m.key), Now: h.clock.Now}}
	var progress []string
	out, err := kr.Run(t.Context(), mj, func(s string) error { progress = append(progress, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.Text, "region,count,sum(units)\nnorth,2,17\nsouth,1,4\n") || out.TokensOut != spec.Units || len(progress) != 1 {
		t.Fatalf("output %+v progress %q", out, progress)
	}
	m.finish(mj, out.Text, out.TokensOut)
	h.waitSent(jobs.TypeSettle, 1)
	h.block()
	j := h.waitStatus(v.JobID, store.StatusSettled)
	rv, err := NewReceiptView(j.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	ph, rh := sha256.Sum256([]byte(prompt)), sha256.Sum256([]byte(out.Text))
	if rv.PromptHash != hex.EncodeToString(ph[:]) || rv.ResultHash != hex.EncodeToString(rh[:]) || rv.Model != jobkind.ModelDataProcessing || rv.TokensOut != uint64(spec.Units) {
		t.Fatalf("receipt %+v", rv)
	}
	// The job is over: its miner may not fetch the input any more.
	if _, err := fetch(m.key); err == nil {
		t.Fatal("input fetched after the job ended")
	}
}

// A job that needs a GPU is refused, naming the requirement, while only
// CPU miners serve its kind; once a miner with the GPU serves it, it is
// placed there.
func TestKindJobNeedingAGPUIsRefusedUntilAMinerHasOne(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 1<<20, 1<<20))
	h.fund(10 * coin.Unit)
	h.addKindMiner(coin.Unit) // registered with no GPU
	info, err := h.s.cfg.Files.Store.Put(t.Context(), h.tenant.ID, blobHash(salesCSV), strings.NewReader(salesCSV), 1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	spec, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeDataProcessing, Input: jobkind.FileRef{SHA256: info.Hash, Bytes: info.Size},
		Data: &dataproc.Spec{}, Resources: &jobkind.Resources{GPUs: 1, GPUModel: "rtx4090"}}, []byte(salesCSV))
	if err != nil {
		t.Fatal(err)
	}
	req := JobRequest{Model: jobkind.ModelDataProcessing, Prompt: prompt, MaxTokens: spec.Units}
	_, err = h.s.Submit(h.ctx, h.tenant, req)
	if !errors.Is(err, ErrNoFittingHardware) || !strings.Contains(err.Error(), "a GPU (they have: cpu") {
		t.Fatalf("err = %v", err)
	}
	gpu := h.addKindMiner(coin.Unit)
	h.chain.mu.Lock()
	for i := range h.chain.miners {
		if h.chain.miners[i].Address == gpu.addr {
			h.chain.miners[i].GPU, h.chain.miners[i].GPUMemoryMB = "NVIDIA GeForce RTX 4090", 24564
		}
	}
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	j := h.submit(req)
	if mj := gpu.nextJob(); mj.ID != j.ID {
		t.Fatalf("placed %s on the GPU miner, want %s", mj.ID, j.ID)
	}
}

func blobHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// The job's kind shows in its view.
func TestKindJobsShowTheirType(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 1<<20, 1<<20))
	h.fund(10 * coin.Unit)
	h.addKindMiner(coin.Unit)
	info, err := h.s.cfg.Files.Store.Put(t.Context(), h.tenant.ID, blobHash(salesCSV), strings.NewReader(salesCSV), 1<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	spec, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeDataProcessing, Input: jobkind.FileRef{SHA256: info.Hash, Bytes: info.Size}, Data: &dataproc.Spec{}}, []byte(salesCSV))
	if err != nil {
		t.Fatal(err)
	}
	j := h.submit(JobRequest{Model: jobkind.ModelDataProcessing, Prompt: prompt, MaxTokens: spec.Units})
	if v := view(j, false); v.Kind != "data-processing" {
		t.Fatalf("kind %q", v.Kind)
	}
	// A training spec under the data-processing model is refused.
	bad := strings.Replace(prompt, `"type":"data-processing"`, `"type":"training"`, 1)
	if _, err := h.s.Submit(h.ctx, h.tenant, JobRequest{Model: jobkind.ModelDataProcessing, Prompt: bad, MaxTokens: spec.Units}); !errors.Is(err, ErrUnsupportedJob) {
		t.Fatalf("mismatched type: %v", err)
	}
}

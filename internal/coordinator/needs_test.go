package coordinator

import (
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/jobkind"
)

// An inference job's hardware requirement is stored with the job and
// matched against the miners' registered hardware: refused, naming the
// requirement, while no miner has it (bad values refused outright); once
// a miner with it serves the model, the job is placed there and not on
// the CPU miner.
func TestInferenceJobNeedingAGPUIsPlacedOnlyWhereItFits(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	h.addMiner(coin.Unit) // registered with no GPU
	req := JobRequest{Model: testModel, Prompt: "Analyze processed data for trends", MaxTokens: 16,
		Needs: &sched.Resources{GPUs: 1, MemoryMB: 16384, GPUModel: "rtx4090"}}

	for name, bad := range map[string]sched.Resources{
		"negative GPUs":     {GPUs: -1},
		"memory, no GPU":    {MemoryMB: 8192},
		"GPUs beyond 64":    {GPUs: 65},
		"long GPU model":    {GPUs: 1, GPUModel: strings.Repeat("x", 129)},
		"memory beyond 16T": {GPUs: 1, MemoryMB: 1<<24 + 1},
	} {
		r := req
		r.Needs = &bad
		if _, err := h.s.Submit(h.ctx, h.tenant, r); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	kindReq := JobRequest{Model: jobkind.ModelDataProcessing, Prompt: "{}", MaxTokens: 1, Needs: req.Needs}
	if _, err := h.s.Submit(h.ctx, h.tenant, kindReq); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "in its spec") {
		t.Fatalf("needs on a data-processing job: %v", err)
	}

	_, err := h.s.Submit(h.ctx, h.tenant, req)
	if !errors.Is(err, ErrNoFittingHardware) || !strings.Contains(err.Error(), "a GPU (they have: cpu") {
		t.Fatalf("only a CPU miner: %v", err)
	}
	small := h.addMiner(coin.Unit)
	big := h.addMiner(coin.Unit)
	h.chain.mu.Lock()
	for i, m := range h.chain.miners {
		switch m.Address {
		case small.addr:
			h.chain.miners[i].GPU, h.chain.miners[i].GPUMemoryMB = "NVIDIA GeForce RTX 4090", 8192
		case big.addr:
			h.chain.miners[i].GPU, h.chain.miners[i].GPUMemoryMB = "NVIDIA GeForce RTX 4090", 24564
		}
	}
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	r := req
	r.Needs = &sched.Resources{GPUs: 1, MemoryMB: 32768}
	if _, err := h.s.Submit(h.ctx, h.tenant, r); !errors.Is(err, ErrNoFittingHardware) || !strings.Contains(err.Error(), "32768 MB of GPU memory") {
		t.Fatalf("more memory than any miner: %v", err)
	}

	j := h.submit(req)
	if mj := big.nextJob(); mj.ID != j.ID {
		t.Fatalf("placed %s on the 24 GB miner, want %s", mj.ID, j.ID)
	}
	if got := h.job(j.ID); got.Needs == nil || *got.Needs != (store.Needs{GPUs: 1, MemoryMB: 16384, GPUModel: "rtx4090"}) || got.Miner != big.addr {
		t.Fatalf("stored job: needs %+v on %s", got.Needs, got.Miner)
	}
	if v := view(h.job(j.ID), false); v.Needs == nil || *v.Needs != *req.Needs {
		t.Fatalf("job view: needs %+v", v.Needs)
	}
}

package sched_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
)

func TestResourcesPlaceOnMinersWithTheHardware(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 1)
	cpu := miner(1, coin.Unit, "m")
	cpu.GPU = "cpu"
	rtx := miner(2, coin.Unit, "m")
	rtx.GPU, rtx.GPUMemoryMB = "NVIDIA GeForce RTX 4090", 24564
	a100 := miner(3, coin.Unit, "other")
	a100.GPU, a100.GPUMemoryMB = "NVIDIA A100-SXM4-80GB", 81920
	all := []*sched.Miner{cpu, rtx, a100}
	job := func(r sched.Resources) sched.Job {
		return sched.Job{Model: "m", MaxTokens: 100, MaxPrice: 100 * coin.Unit, Needs: &r}
	}
	for _, r := range []sched.Resources{{GPUs: 1}, {GPUs: 1, MemoryMB: 8192}, {GPUs: 1, GPUModel: "rtx4090"}, {GPUs: 1, GPUModel: "RTX-4090", MemoryMB: 24564}} {
		if m, np := s.Place(job(r), all); np != nil || m != rtx {
			t.Errorf("%+v: placed on %v, %v", r, m, np)
		}
	}
	cases := []struct {
		r    sched.Resources
		want string
	}{
		{sched.Resources{GPUs: 2}, "2 GPUs; miners register one GPU each (they have: NVIDIA GeForce RTX 4090, cpu; the most GPU memory: 24564 MB)"},
		{sched.Resources{GPUs: 1, MemoryMB: 40000}, "40000 MB of GPU memory (they have"},
		{sched.Resources{GPUs: 1, GPUModel: "a100"}, "GPU model a100 (they have"}, // the A100 does not serve model m
	}
	for _, c := range cases {
		_, np := s.Place(job(c.r), all)
		if np == nil || np.Reason != sched.NoResources || !strings.Contains(np.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.r, np, c.want)
		}
	}
	// Without requirements the CPU miner is as good as any.
	if _, np := s.Place(sched.Job{Model: "m", MaxTokens: 100, MaxPrice: 100 * coin.Unit}, []*sched.Miner{cpu}); np != nil {
		t.Fatal(np)
	}
	for _, bad := range []sched.Resources{{GPUs: -1}, {MemoryMB: 8192}, {GPUModel: "x"}, {GPUs: 100}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

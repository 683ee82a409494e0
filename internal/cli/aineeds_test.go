package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
)

type listedMiners []coordinator.MinerView

func (l listedMiners) Miners(context.Context) ([]coordinator.MinerView, error) { return l, nil }

// TestCheckTextNeeds: an inference job's hardware is checked against the
// miners serving its model before the escrow; the refusal names what is
// missing and what the miners have.
func TestCheckTextNeeds(t *testing.T) {
	miners := listedMiners{
		{Models: []string{"tolstoy-1m"}, GPU: "cpu"},
		{Models: []string{"tolstoy-1m"}, GPU: "NVIDIA GeForce RTX 4090", GPUMemoryMB: 8192},
		{Models: []string{"llama3"}, GPU: "NVIDIA H100", GPUMemoryMB: 81559},
	}
	for _, c := range []struct {
		model string
		need  sched.Resources
		want  string // "" fits
	}{
		{"tolstoy-1m", sched.Resources{GPUs: 1, GPUModel: "rtx4090", MemoryMB: 8000}, ""},
		{"tolstoy-1m", sched.Resources{GPUs: 1, MemoryMB: 16384}, "16384 MB of GPU memory (they have: NVIDIA GeForce RTX 4090, cpu; the most GPU memory: 8192 MB)"},
		{"tolstoy-1m", sched.Resources{GPUs: 1, GPUModel: "h100"}, "GPU model h100"},
		{"llama3", sched.Resources{GPUs: 1, GPUModel: "h100"}, ""},
		{"mistral", sched.Resources{GPUs: 1}, "no miner connected to the coordinator serves mistral"},
	} {
		err := checkTextNeeds(t.Context(), miners, c.model, &c.need)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s %+v: %v, want %q", c.model, c.need, err, c.want)
		}
	}
}

package sched

import (
	"fmt"
	"sort"
	"strings"
)

// Resources is the hardware a job requires of its miner (`ai-submit
// --gpu-allocated N --memory MB --gpu-model M`). The chain registers one
// GPU per miner — its name and memory, as the miner detected them — so a
// job needing more than one GPU fits no miner today, and says so.
type Resources struct {
	GPUs     int    `json:"gpus,omitempty"`
	MemoryMB uint64 `json:"memory_mb,omitempty"` // GPU memory when GPUs > 0
	GPUModel string `json:"gpu_model,omitempty"` // matched ignoring case, spaces and dashes: "rtx4090" matches "NVIDIA GeForce RTX 4090"
}

// Validate checks the ranges.
func (r *Resources) Validate() error {
	switch {
	case r.GPUs < 0 || r.GPUs > 64:
		return fmt.Errorf("sched: GPUs must be 0-64")
	case r.MemoryMB > 1<<24:
		return fmt.Errorf("sched: memory must be at most %d MB", 1<<24)
	case len(r.GPUModel) > 128:
		return fmt.Errorf("sched: GPU model longer than 128 bytes")
	case r.GPUs == 0 && (r.MemoryMB > 0 || r.GPUModel != ""):
		return fmt.Errorf("sched: memory and GPU model are a GPU's: ask for at least one GPU")
	}
	return nil
}

func hasGPU(m *Miner) bool { return m.GPU != "" && !strings.EqualFold(m.GPU, "cpu") }

func norm(s string) string {
	return strings.NewReplacer(" ", "", "-", "", "_", "").Replace(strings.ToLower(s))
}

// Lacks says what of r the miner does not have ("" when it fits).
func (r *Resources) Lacks(m *Miner) string {
	gpus := 0
	if hasGPU(m) {
		gpus = 1
	}
	switch {
	case r.GPUs > gpus:
		return fmt.Sprintf("%d GPU(s)", r.GPUs)
	case r.GPUModel != "" && !strings.Contains(norm(m.GPU), norm(r.GPUModel)):
		return "GPU model " + r.GPUModel
	case r.MemoryMB > 0 && m.GPUMemoryMB < r.MemoryMB:
		return fmt.Sprintf("%d MB of GPU memory", r.MemoryMB)
	}
	return ""
}

// Explain names the first requirement no miner of ms meets, with what the
// miners have, for a "why nothing fits" answer.
func (r *Resources) Explain(ms []*Miner) string {
	var gpus []string
	var most uint64
	seen := map[string]bool{}
	for _, m := range ms {
		name := m.GPU
		if !hasGPU(m) {
			name = "cpu"
		}
		if !seen[name] {
			seen[name] = true
			gpus = append(gpus, name)
		}
		most = max(most, m.GPUMemoryMB)
	}
	sort.Strings(gpus)
	have := fmt.Sprintf("(they have: %s; the most GPU memory: %d MB)", strings.Join(gpus, ", "), most)
	some := func(ok func(*Miner) bool) bool {
		for _, m := range ms {
			if ok(m) {
				return true
			}
		}
		return false
	}
	switch {
	case r.GPUs > 1:
		return fmt.Sprintf("%d GPUs; miners register one GPU each %s", r.GPUs, have)
	case r.GPUs == 1 && !some(hasGPU):
		return "a GPU " + have
	case r.GPUModel != "" && !some(func(m *Miner) bool { return strings.Contains(norm(m.GPU), norm(r.GPUModel)) }):
		return "GPU model " + r.GPUModel + " " + have
	case r.MemoryMB > 0 && !some(func(m *Miner) bool { return m.GPUMemoryMB >= r.MemoryMB }):
		return fmt.Sprintf("%d MB of GPU memory %s", r.MemoryMB, have)
	}
	return r.String() + " on one miner " + have
}

// String describes r.
func (r *Resources) String() string {
	var parts []string
	if r.GPUs > 0 {
		parts = append(parts, fmt.Sprintf("%d GPU(s)", r.GPUs))
	}
	if r.GPUModel != "" {
		parts = append(parts, "GPU model "+r.GPUModel)
	}
	if r.MemoryMB > 0 {
		parts = append(parts, fmt.Sprintf("%d MB of GPU memory", r.MemoryMB))
	}
	return strings.Join(parts, ", ")
}

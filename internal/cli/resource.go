package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/miner/hw"
)

func newResourceCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resource",
		Short: "Reserve miner capacity (GPU slots) for an agent, watch utilization, stress-test the backend",
		Long: `An allocation holds job slots on one connected miner for an agent of yours,
for a duration: other tenants' jobs cannot use them, yours can. On a CPU
miner a "GPU" is a job slot and --memory cannot be checked (the response says
so). Allocations live in the coordinator's memory and end with it.`,
	}
	var agent, model string
	var gpu int
	var memory uint64
	var duration time.Duration
	var lease rentOpts
	alloc := &cobra.Command{
		Use:   "allocate",
		Short: "Reserve --gpu slots with --memory MB for --duration",
		Example: `  aitbc resource allocate --agent-id "gpu-worker-1" --gpu 1 --memory 8192 --duration 3600
  aitbc resource allocate --agent-id gpu-worker-1 --duration 3600 --wallet researcher-1 --service-id svc-3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lease.wallet != "" { // a paid lease on chain (rent.go)
				return allocateByLease(cmd.Context(), g, &lease, agent, gpu, memory, duration)
			}
			c, err := g.coordinator()
			if err != nil {
				return err
			}
			a, err := c.Allocate(cmd.Context(), coordinator.AllocateRequest{AgentID: agent, GPU: gpu, MemoryMB: memory, DurationS: int64(duration / time.Second), Model: model})
			if err != nil {
				return err
			}
			return g.Print(a, func(w io.Writer) { printAlloc(w, a) })
		},
	}
	alloc.Flags().StringVar(&agent, "agent-id", "", "name of the agent the capacity is for (required)")
	alloc.Flags().IntVar(&gpu, "gpu", 1, "slots (GPUs) to hold")
	alloc.Flags().Uint64Var(&memory, "memory", 0, "GPU memory in MB the miner must have")
	secondsFlag(alloc.Flags(), &duration, "duration", time.Hour, "how long (seconds, or e.g. 30m)")
	alloc.Flags().StringVar(&model, "model", "", "only a miner that serves this model")
	alloc.Flags().StringVar(&lease.wallet, "wallet", "", "pay with a lease on chain from this wallet (aitbc rent): the cheapest gpu-rental listing with a free place, or --service-id")
	alloc.Flags().StringVar(&lease.password, "password", "", "that wallet's password (or AITBC_PASSWORD)")
	alloc.Flags().StringVar(&lease.serviceID, "service-id", "", "with --wallet: the gpu-rental listing to lease")

	var sagent string
	status := &cobra.Command{
		Use:   "status",
		Short: "Show your allocations (or one agent's)",
		Example: `  aitbc resource status
  aitbc resource status --agent-id gpu-worker-1 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.coordinator()
			if err != nil {
				return err
			}
			list, err := c.Allocations(cmd.Context(), sagent)
			if err != nil {
				return err
			}
			return g.Print(list, func(w io.Writer) {
				if len(list) == 0 {
					fmt.Fprintln(w, "no allocations")
				}
				for _, a := range list {
					printAlloc(w, a)
				}
			})
		},
	}
	status.Flags().StringVar(&sagent, "agent-id", "", "only this agent")

	var dagent string
	dealloc := &cobra.Command{
		Use:     "deallocate",
		Short:   "Release an agent's allocation",
		Example: `  aitbc resource deallocate --agent-id gpu-worker-1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dagent == "" {
				return usagef("--agent-id is required")
			}
			c, err := g.coordinator()
			if err != nil {
				return err
			}
			a, err := c.Deallocate(cmd.Context(), dagent)
			if err != nil {
				return err
			}
			return g.Print(a, func(w io.Writer) {
				fmt.Fprintf(w, "released %d slots of %s on miner %s\n", a.Slots, a.AgentID, a.Miner)
			})
		},
	}
	dealloc.Flags().StringVar(&dagent, "agent-id", "", "agent (required)")

	var typ string
	var period time.Duration
	util := &cobra.Command{
		Use:     "utilization",
		Short:   "Average and peak use of the miners' slots over a period",
		Example: `  aitbc resource utilization --type gpu --period 1h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := coordinator.NewClient(g.Coord, "").Utilization(cmd.Context(), typ, period)
			if err != nil {
				return err
			}
			return g.Print(u, func(w io.Writer) {
				if u.Samples == 0 {
					fmt.Fprintf(w, "no %s samples in the last %s (the coordinator samples every 10 s)\n", u.Type, u.Period)
					return
				}
				fmt.Fprintf(w, "%s slots over %s (%d samples, %d miners now): average %.1f%% used, peak %.1f%%\n", u.Type, u.Period, u.Samples, u.Miners, u.AvgPercent, u.PeakPct)
				fmt.Fprintf(w, "  average %.1f slots, %.1f running jobs, %.1f reserved\n", u.Slots, u.Busy, u.Reserved)
			})
		},
	}
	util.Flags().StringVar(&typ, "type", "all", "gpu, cpu or all")
	util.Flags().DurationVar(&period, "period", time.Hour, "window, up to 24h")
	cmd.AddCommand(alloc, status, dealloc, util, newResourceTestCmd(g))
	return cmd
}

func printAlloc(w io.Writer, a coordinator.Allocation) {
	mem := fmt.Sprintf("%d MB", a.MemoryMB)
	if !a.MemoryChecked {
		mem += " (not checked: the miner reports no GPU memory)"
	}
	fmt.Fprintf(w, "%s: %d slots on miner %s (%s), memory %s, until %s\n", a.AgentID, a.Slots, a.Miner, a.GPU, mem, a.Expires.Local().Format(time.DateTime))
}

// StressOptions configure StressTest.
type StressOptions struct {
	Duration time.Duration // how long generation runs
	Interval time.Duration // between samples (1 s)
	Workers  int           // concurrent generations (GOMAXPROCS)
	// MemoryStress adds one full-context session (its KV cache filled)
	// every interval, held to the end, until MemoryLimitMB of them.
	MemoryStress  bool
	MemoryLimitMB uint64
	// GPUMemory reads the GPUs' used memory for each sample (nil: none).
	GPUMemory func(ctx context.Context) (usedMB int64, ok bool)
}

// StressSample is one point of the run.
type StressSample struct {
	At           float64 `json:"at_s"` // seconds since the start
	Tokens       int64   `json:"tokens"`
	TokensPerSec float64 `json:"tokens_per_sec"` // over the last interval
	HeapMB       float64 `json:"heap_mb"`        // Go heap in use
	RSSMB        float64 `json:"rss_mb,omitempty"`
	GPUUsedMB    *int64  `json:"gpu_used_mb,omitempty"`
	HeldSessions int     `json:"held_sessions,omitempty"` // memory stress: full KV caches held
	HeldMB       float64 `json:"held_mb,omitempty"`
}

// StressReport is the result of StressTest.
type StressReport struct {
	Backend      string         `json:"backend"` // what ran: "built-in engine (CPU)"
	Model        string         `json:"model"`
	Device       string         `json:"device"` // the GPU found, or "cpu"
	Note         string         `json:"note,omitempty"`
	Workers      int            `json:"workers"`
	Duration     float64        `json:"duration_s"`
	Tokens       int64          `json:"tokens"`
	TokensPerSec float64        `json:"tokens_per_sec"` // over the whole run
	PeakHeapMB   float64        `json:"peak_heap_mb"`
	PeakRSSMB    float64        `json:"peak_rss_mb,omitempty"`
	Errors       int64          `json:"errors"`
	Samples      []StressSample `json:"samples"`
}

// maxStress bounds a stress run.
const maxStress = time.Hour

var stressPrompts = []string{"Natasha", "Pierre looked at", "The old prince", "Moscow was burning and", "Andrew said"}

// StressTest runs m with opts.Workers concurrent generations for
// opts.Duration, sampling throughput and memory each interval and handing
// each sample to progress (which may be nil). Generation errors are
// counted, not fatal, so that a run under memory pressure reports what
// happened; a cancelled ctx ends the run early with what was measured.
func StressTest(ctx context.Context, m *engine.Model, opts StressOptions, progress func(StressSample)) (StressReport, error) {
	if opts.Duration <= 0 || opts.Duration > maxStress {
		return StressReport{}, fmt.Errorf("resource test: duration must be from 1 s to %s", maxStress)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	rep := StressReport{Backend: "built-in engine (CPU)", Model: m.Name(), Workers: opts.Workers, Samples: []StressSample{}}
	runCtx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	var tokens, errs atomic.Int64
	var wg sync.WaitGroup
	maxTokens := 64
	if opts.MemoryStress {
		maxTokens = 0 // fill the context: the largest KV cache a job can use
	}
	for w := range opts.Workers {
		wg.Go(func() {
			for i := 0; runCtx.Err() == nil; i++ {
				_, err := m.Generate(runCtx, engine.GenerateRequest{
					Prompt: stressPrompts[(w+i)%len(stressPrompts)], MaxTokens: maxTokens, Temperature: 0.8,
					Seed: uint64(w*1_000_003 + i + 1), Threads: 1,
				}, func(engine.Token) error { tokens.Add(1); return nil })
				if err != nil && runCtx.Err() == nil {
					errs.Add(1)
				}
			}
		})
	}
	cfg := m.Config()
	sessionMB := float64(2*cfg.Layers*cfg.SeqLen*cfg.KVDim()*4) / (1 << 20) // K and V, float32
	// The ballast grows in its own goroutine: filling a cache takes a
	// while, and the samples must keep their pace.
	var held atomic.Int64
	var sessions []*engine.Session // the ballast goroutine's until wg.Wait
	if opts.MemoryStress {
		wg.Go(func() {
			t := time.NewTicker(opts.Interval)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
				}
				if float64(len(sessions)+1)*sessionMB > float64(opts.MemoryLimitMB) {
					continue
				}
				s, err := m.NewSession(engine.SessionOptions{Threads: 1})
				if err != nil {
					errs.Add(1)
					continue
				}
				fillSession(runCtx, s, cfg.SeqLen)
				sessions = append(sessions, s)
				held.Store(int64(len(sessions)))
			}
		})
	}
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	start := time.Now()
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	last, lastAt := int64(0), start
	sample := func(now time.Time) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		n := tokens.Load()
		s := StressSample{At: now.Sub(start).Seconds(), Tokens: n, HeapMB: float64(ms.HeapInuse) / (1 << 20), RSSMB: rssMB(),
			HeldSessions: int(held.Load()), HeldMB: float64(held.Load()) * sessionMB}
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			s.TokensPerSec = float64(n-last) / dt
		}
		if opts.GPUMemory != nil {
			if used, ok := opts.GPUMemory(ctx); ok {
				s.GPUUsedMB = &used
			}
		}
		last, lastAt = n, now
		rep.PeakHeapMB, rep.PeakRSSMB = max(rep.PeakHeapMB, s.HeapMB), max(rep.PeakRSSMB, s.RSSMB)
		rep.Samples = append(rep.Samples, s)
		if progress != nil {
			progress(s)
		}
	}
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case now := <-tick.C:
			sample(now)
		}
	}
	wg.Wait()
	end := time.Now()
	switch n := tokens.Load(); {
	case len(rep.Samples) == 0 || end.Sub(lastAt) > opts.Interval/10:
		sample(end)
	case n != last:
		// Tokens that landed between the last tick and the deadline: too
		// few moments for a rate of their own, so the last sample counts them.
		rep.Samples[len(rep.Samples)-1].Tokens = n
	}
	rep.Duration = end.Sub(start).Seconds()
	rep.Tokens, rep.Errors = tokens.Load(), errs.Load()
	if rep.Duration > 0 {
		rep.TokensPerSec = float64(rep.Tokens) / rep.Duration
	}
	return rep, nil
}

// fillSession runs a session through every position so that its KV cache
// is written, not merely reserved.
func fillSession(ctx context.Context, s *engine.Session, n int) {
	for pos := range n {
		if ctx.Err() != nil {
			return
		}
		if _, err := s.Forward(1, pos); err != nil {
			return
		}
	}
}

// rssMB is the process's resident memory from /proc (0 where there is none).
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return float64(pages*int64(os.Getpagesize())) / (1 << 20)
}

func newResourceTestCmd(g *Globals) *cobra.Command {
	var typ string
	var memStress bool
	var duration time.Duration
	var workers int
	var memLimit uint64
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Stress the miner's backend for --duration: tokens/s and memory over time",
		Long: `Runs the miner's built-in engine (the default model, tolstoy-1m) with
--workers concurrent generations for --duration, printing tokens/s and memory
(Go heap, resident set, and the GPU's used memory where nvidia-smi reports
it) each second. --memory-stress fills the context on every generation and
adds one full-context session (its KV cache written and held) each second,
up to --memory-limit MB, so memory grows over the run as it would with many
long jobs. The built-in engine computes on the CPU: on a machine without a
GPU, --type gpu says so and tests the CPU backend; with one, the GPU is
reported and its memory sampled, but the work is still the CPU's.`,
		Example: `  aitbc resource test --type gpu --memory-stress --duration 300
  aitbc resource test --type cpu --duration 10 --workers 2 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if typ != "gpu" && typ != "cpu" {
				return usagef("--type must be gpu or cpu")
			}
			if duration < time.Second || duration > maxStress {
				return usagef("--duration must be from 1 s to %s", maxStress)
			}
			if workers < 0 || workers > 256 {
				return usagef("--workers must be 0-256")
			}
			ctx := cmd.Context()
			info := hw.DetectWith(ctx, hw.Options{NoGPU: typ == "cpu"})
			m, err := engine.LoadDefault()
			if err != nil {
				return err
			}
			defer m.Close()
			opts := StressOptions{Duration: duration, Workers: workers, MemoryStress: memStress, MemoryLimitMB: memLimit}
			device, note := "cpu", ""
			switch {
			case typ == "gpu" && len(info.GPUs) == 0:
				note = "no GPU found (nvidia-smi reports none): testing the CPU backend"
			case typ == "gpu":
				device = info.GPUs[0].Name
				note = "GPU " + device + " found; the built-in engine computes on the CPU, so this tests the CPU backend and samples the GPU's memory"
				opts.GPUMemory = func(ctx context.Context) (int64, bool) {
					i := hw.DetectWith(ctx, hw.Options{})
					if len(i.GPUs) == 0 || i.GPUs[0].MemoryUsedMB < 0 {
						return 0, false
					}
					return i.GPUs[0].MemoryUsedMB, true
				}
			}
			if note != "" {
				fmt.Fprintln(g.Stderr(), note)
			}
			rep, err := StressTest(ctx, m, opts, func(s StressSample) {
				line := fmt.Sprintf("[%4.0fs/%.0fs] %8.1f tokens/s  heap %6.1f MB  rss %6.1f MB", s.At, duration.Seconds(), s.TokensPerSec, s.HeapMB, s.RSSMB)
				if s.GPUUsedMB != nil {
					line += fmt.Sprintf("  gpu %d MB", *s.GPUUsedMB)
				}
				if s.HeldSessions > 0 {
					line += fmt.Sprintf("  held %d sessions (%.1f MB KV)", s.HeldSessions, s.HeldMB)
				}
				fmt.Fprintln(g.Stderr(), line)
			})
			if err != nil {
				return err
			}
			rep.Device, rep.Note = device, note
			return g.Print(rep, func(w io.Writer) {
				fmt.Fprintf(w, "%s, model %s on %s: %d tokens in %.1f s = %.1f tokens/s with %d workers; peak heap %.1f MB, peak rss %.1f MB; %d errors\n",
					rep.Backend, rep.Model, rep.Device, rep.Tokens, rep.Duration, rep.TokensPerSec, rep.Workers, rep.PeakHeapMB, rep.PeakRSSMB, rep.Errors)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "gpu", "gpu or cpu (without a GPU, gpu tests the CPU backend and says so)")
	f.BoolVar(&memStress, "memory-stress", false, "fill contexts and hold a growing set of KV caches")
	secondsFlag(f, &duration, "duration", 30*time.Second, "how long (seconds, or e.g. 5m; up to 1h)")
	f.IntVar(&workers, "workers", 0, "concurrent generations (0: one per CPU)")
	f.Uint64Var(&memLimit, "memory-limit", 1024, "MB of KV caches --memory-stress may hold")
	return cmd
}

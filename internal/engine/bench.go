package engine

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// BenchOptions configure Model.Bench.
type BenchOptions struct {
	Threads int // 0 means runtime.GOMAXPROCS(0)
	Tokens  int // positions per repetition; 0 means min(256, context)
	Reps    int // timed repetitions; 0 means 5
}

// BenchResult reports a benchmark: the method and the measured rates.
type BenchResult struct {
	Model   string        `json:"model"`
	Threads int           `json:"threads"`
	Tokens  int           `json:"tokens"` // positions per repetition
	Reps    int           `json:"reps"`
	Wall    time.Duration `json:"wall_ns"` // all timed repetitions together
	// TokensPerSecond is the median over repetitions of Tokens divided by
	// the repetition's wall-clock time; Best is the fastest repetition.
	TokensPerSecond float64   `json:"tokens_per_second"`
	Best            float64   `json:"best_tokens_per_second"`
	Runs            []float64 `json:"runs_tokens_per_second"`
	// PromptTokensPerSecond is the median over repetitions of Tokens
	// divided by the time Prefill takes to process them as a prompt (the
	// sequence the warm-up generated, in batches, no logits), as
	// llama-bench's pp figure; PromptRuns are the repetitions' rates.
	PromptTokensPerSecond float64   `json:"prompt_tokens_per_second"`
	PromptRuns            []float64 `json:"prompt_runs_tokens_per_second"`
}

// Bench measures generation speed the way llama2.c's run.c reports it:
// starting from BOS, each position runs the full forward pass (embedding,
// all layers, classifier) and picks the next token greedily; generation
// never stops early. One untimed repetition warms up, then Reps are timed.
// Each repetition then also times the same positions as a prompt
// (Prefill), for the prompt rate.
func (m *Model) Bench(ctx context.Context, opts BenchOptions) (BenchResult, error) {
	if opts.Tokens == 0 {
		opts.Tokens = min(256, m.cfg.SeqLen)
	}
	if opts.Reps == 0 {
		opts.Reps = 5
	}
	if opts.Tokens < 1 || opts.Tokens > m.cfg.SeqLen || opts.Reps < 1 {
		return BenchResult{}, fmt.Errorf("%w: %d tokens × %d repetitions, context %d", ErrMaxTokens, opts.Tokens, opts.Reps, m.cfg.SeqLen)
	}
	s, err := m.NewSession(SessionOptions{Threads: opts.Threads, MaxPos: opts.Tokens})
	if err != nil {
		return BenchResult{}, err
	}
	defer s.Close()
	r := BenchResult{Model: m.name, Threads: s.threads, Tokens: opts.Tokens, Reps: opts.Reps}
	seq := make([]int, opts.Tokens)
	for rep := -1; rep < opts.Reps; rep++ {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		s.Reset()
		start := time.Now()
		token := m.tok.BOS()
		for pos := range opts.Tokens {
			seq[pos] = token
			logits, err := s.Forward(token, pos)
			if err != nil {
				return r, err
			}
			token = argmax(logits)
		}
		el := time.Since(start)
		s.Reset()
		start = time.Now()
		if err := s.Prefill(ctx, seq, 0); err != nil {
			return r, err
		}
		pel := time.Since(start)
		if rep < 0 {
			continue // warm-up
		}
		r.Wall += el
		r.Runs = append(r.Runs, float64(opts.Tokens)/el.Seconds())
		r.PromptRuns = append(r.PromptRuns, float64(opts.Tokens)/pel.Seconds())
	}
	sorted := slices.Sorted(slices.Values(r.Runs))
	r.TokensPerSecond = sorted[len(sorted)/2]
	r.Best = sorted[len(sorted)-1]
	r.PromptTokensPerSecond = slices.Sorted(slices.Values(r.PromptRuns))[len(r.PromptRuns)/2]
	return r, nil
}

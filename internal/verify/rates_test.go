package verify_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/verify"
)

var words = []string{"Natasha", "Pierre", "the prince", "Moscow", "the old count", "Sonya", "the army", "Andrei", "the ball", "Petya"}

// prompts returns two prompts that differ in one word.
func prompts(r *rand.Rand) (string, string) {
	a, b := words[r.IntN(len(words))], words[r.IntN(len(words))]
	for b == a {
		b = words[r.IntN(len(words))]
	}
	c := words[r.IntN(len(words))]
	return fmt.Sprintf("%s said to %s that", a, c), fmt.Sprintf("%s said to %s that", b, c)
}

const (
	truncation = "cheat: truncated output (claims eos)"
	// truncationV1 is the same cheat in the first attestation format,
	// without the sampling parameters: only the probability checks judge
	// it (what a verifier accepting version 1 still faces).
	truncationV1 = "cheat: truncated output, version 1 (no replay)"
	// truncationInexact is the cheat with one committed value moved by a
	// bf16 step (as another engine's rounding would move it), so that the
	// recomputation is not exact and the exact replay does not apply: the
	// tolerant replay of the stop judges it.
	truncationInexact = "cheat: truncated output, made inexact"
	honestInexact     = "honest Q8_0, made inexact (one committed value a step off)"
)

type record struct {
	name string
	ok   bool
	err  error
	// The job's worst chunk: mismatches and mantissa error mean.
	mism   int
	mean   float64
	median float64
}

// spread is the range of a case's worst-chunk statistics over its jobs.
type spread struct {
	minMism, maxMism int
	minMean, maxMean float64
	minMed, maxMed   float64
}

func (s spread) add(r record, first bool) spread {
	if first {
		return spread{r.mism, r.mism, r.mean, r.mean, r.median, r.median}
	}
	return spread{min(s.minMism, r.mism), max(s.maxMism, r.mism), min(s.minMean, r.mean), max(s.maxMean, r.mean),
		min(s.minMed, r.median), max(s.maxMed, r.median)}
}

// TestDetectionRates measures how often honest jobs are rejected (false
// positives) and each cheat accepted (false negatives), over
// AITBC_VERIFY_RUNS runs per case (default 12; docs/VERIFICATION.md
// publishes a run of 300). Each run draws a prompt, a one-word variant of
// it and a sampling seed; honest runs are generated on one thread and
// recomputed on 1, 2 or 3.
func TestDetectionRates(t *testing.T) {
	runs := 12
	if v, err := strconv.Atoi(os.Getenv("AITBC_VERIFY_RUNS")); err == nil && v > 0 {
		runs = v
	}
	// AITBC_VERIFY_MAX_MISMATCHES measures the rates under another exponent
	// bound (docs/VERIFICATION.md, "Across engines": llama.cpp's Q8_0
	// needs 8).
	tol := verify.DefaultTolerance
	if v, err := strconv.Atoi(os.Getenv("AITBC_VERIFY_MAX_MISMATCHES")); err == nil && v >= 0 {
		tol.MaxMismatches = v
		t.Logf("tolerance %+v", tol)
	}
	f := newFixture(t)
	var mu sync.Mutex
	counts := map[string][2]int{} // accepted, rejected
	spreads := map[string]spread{}
	var order []string
	var firstErr error
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				recs, err := oneRun(f, i, tol)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				for _, r := range recs {
					c, seen := counts[r.name]
					if !seen {
						order = append(order, r.name)
					}
					spreads[r.name] = spreads[r.name].add(r, !seen)
					if r.ok {
						c[0]++
					} else {
						c[1]++
					}
					counts[r.name] = c
					if !r.ok && r.name[:6] == "honest" {
						t.Logf("%s: rejected: %v", r.name, r.err)
					}
					if r.ok && r.name[:6] == "cheat:" {
						t.Logf("round %d, %s: accepted (worst chunk: %d mismatches, mantissa mean %.2f, median %.1f)", i, r.name, r.mism, r.mean, r.median)
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range runs {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	t.Logf("%-52s %8s %8s  %s", "case", "accepted", "rejected", "worst chunk per job: mismatches, mantissa mean, median (ranges)")
	for _, name := range order {
		c, sp := counts[name], spreads[name]
		t.Logf("%-52s %8d %8d  %d..%d, %.2f..%.2f, %.1f..%.1f", name, c[0], c[1], sp.minMism, sp.maxMism, sp.minMean, sp.maxMean, sp.minMed, sp.maxMed)
		switch {
		case name[:6] == "honest" && c[1] > 0:
			t.Errorf("%s: %d of %d honest jobs rejected", name, c[1], c[0]+c[1])
		case name == truncationV1 || name == secondChoiceV1:
			// Reported, not held to 5%: the first format has no replay
			// (docs/VERIFICATION.md).
		case name == truncationInexact && c[0]*20 > c[0]+c[1]:
			// The tolerant replay: about p_stop + 2·slack at the cut, and
			// the stop's probability floor as well (docs/VERIFICATION.md).
			t.Errorf("%s: %d of %d accepted (more than 5%%)", name, c[0], c[0]+c[1])
		case (name == truncation || name == secondChoice) && c[0] > 0:
			// The sampler's replay catches every one.
			t.Errorf("%s: %d of %d accepted, want none", name, c[0], c[0]+c[1])
		case name[:6] == "cheat:" && c[0]*20 > c[0]+c[1]:
			t.Errorf("%s: %d of %d cheats accepted (more than 5%%)", name, c[0], c[0]+c[1])
		}
	}
}

// oneRun generates the honest jobs and the cheats of run i and verifies
// each against the model the cheats claim (Q8_0).
func oneRun(f *fixture, i int, tol verify.Tolerance) ([]record, error) {
	ctx := context.Background()
	const claimed, maxTok = "Q8_0", 64
	mq := f.byType[claimed]
	vocab := uint32(mq.Config().VocabSize)
	r := rand.New(rand.NewPCG(uint64(i), 99))
	p, p2 := prompts(r)
	seed := r.Uint64()
	threads := 1 + i%3
	var recs []record
	check := func(name string, m *engine.Model, hash []byte, a *verify.Attestation) error {
		// The verifier knows the job's request (the coordinator's): every
		// attestation must claim it.
		exp := verify.Expected{ModelSHA256: hash, MaxTokens: maxTok, Sampling: &verify.JobSampling{Temperature: 0.8, Seed: seed}}
		rep, err := verify.Recompute(ctx, m, a, exp, threads, tol)
		if err != nil && !errors.Is(err, verify.ErrMismatch) {
			return fmt.Errorf("%s: %w", name, err)
		}
		rec := record{name: name, ok: err == nil && rep.Pass, err: err}
		for _, c := range rep.Chunks {
			rec.mism, rec.mean, rec.median = max(rec.mism, c.Mismatches), max(rec.mean, c.MantMean), max(rec.median, c.MantMedian)
		}
		recs = append(recs, rec)
		return nil
	}
	generate := func(m *engine.Model, hash []byte, prompt string) (*verify.Attestation, error) {
		req := engine.GenerateRequest{Prompt: prompt, MaxTokens: maxTok, Temperature: 0.8, Seed: seed, Threads: 1}
		_, a, err := verify.Generate(ctx, m, req, hash, "test", nil)
		return a, err
	}
	for _, q := range []string{"F32", "Q8_0", "Q4_K"} {
		a, err := generate(f.byType[q], f.hash[q], p)
		if err != nil {
			return nil, err
		}
		if err := check(fmt.Sprintf("honest %s, stop %s, verified on %d threads", q, a.Stop, threads), f.byType[q], f.hash[q], a); err != nil {
			return nil, err
		}
	}
	real, err := generate(mq, f.hash[claimed], p)
	if err != nil {
		return nil, err
	}
	cheats := []struct {
		name   string
		m      *engine.Model
		prompt string
		edit   func(a *verify.Attestation) error
	}{
		{"cheat: coarser quantisation (Q4_K as Q8_0)", f.byType["Q4_K"], p, nil},
		{"cheat: different model (one layer less)", f.small, p, nil},
		{"cheat: substitute model (one layer's weights × 0.9)", f.scaled, p, nil},
		{"cheat: altered prompt (one word)", mq, p2, func(a *verify.Attestation) error { a.PromptTokens = real.PromptTokens; return nil }},
		{"cheat: replayed answer (another prompt's)", mq, p2, func(a *verify.Attestation) error { a.PromptTokens = real.PromptTokens; return nil }},
		{"cheat: altered output (one token, not the last)", mq, p, func(a *verify.Attestation) error {
			if n := len(a.OutputTokens); n > 1 {
				j := r.IntN(n - 1)
				a.OutputTokens[j] = (a.OutputTokens[j] + 1 + r.Uint32N(vocab-1)) % vocab
			}
			return nil
		}},
		{truncation, mq, p, func(a *verify.Attestation) error { return truncate(mq, a, r) }},
		{truncationInexact, mq, p, func(a *verify.Attestation) error {
			if err := truncate(mq, a, r); err != nil || len(a.OutputTokens) == 0 {
				return err
			}
			return nudgeLastChunk(mq, a)
		}},
		{truncationV1, mq, p, func(a *verify.Attestation) error {
			a.Version, a.Sampling = verify.Version, nil
			return truncate(mq, a, r)
		}},
		{secondChoice, mq, p, func(a *verify.Attestation) error { return alterToSecondChoice(mq, a, r) }},
		{secondChoiceV1, mq, p, func(a *verify.Attestation) error {
			a.Version, a.Sampling = verify.Version, nil
			return alterToSecondChoice(mq, a, r)
		}},
		// The engine's own job with one committed value a step off (what
		// another engine's rounding does): not exact, so its stop meets
		// the tolerant replay, which must accept it.
		{honestInexact, mq, p, func(a *verify.Attestation) error {
			if len(a.OutputTokens) == 0 {
				return nil
			}
			return nudgeLastChunk(mq, a)
		}},
		// Not a saving, so not a cheat anyone would run: how close two
		// quantisations of the same weights come (docs/VERIFICATION.md).
		{"finer quantisation (F32 as Q8_0)", f.byType["F32"], p, nil},
	}
	for _, c := range cheats {
		a, err := generate(c.m, f.hash[claimed], c.prompt)
		if err != nil {
			return nil, err
		}
		a.Quant = claimed
		if c.edit != nil {
			if err := c.edit(a); err != nil {
				return nil, err
			}
		}
		if err := check(c.name, mq, f.hash[claimed], a); err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// truncate cuts a's output at a random place and claims it stopped at
// eos, with the last chunk's commitment recomputed for the cut output.
func truncate(m *engine.Model, a *verify.Attestation, r *rand.Rand) error {
	n := len(a.OutputTokens)
	if n < 2 {
		return nil
	}
	keep := 1 + r.IntN(n-1)
	a.OutputTokens = a.OutputTokens[:keep]
	a.Commits = a.Commits[:(keep+verify.ChunkTokens-1)/verify.ChunkTokens]
	a.Stop = string(engine.StopEOS)
	return recommitLastChunk(m, a, false)
}

const (
	secondChoice   = "cheat: second-choice token, recommitted"
	secondChoiceV1 = "cheat: second-choice token, recommitted, version 1 (no replay)"
)

// alterToSecondChoice replaces one output token (not the last) by the
// model's most likely other token there and recomputes every commitment
// for the edited output, so that the recomputation is exact: the cheat
// the probability checks cannot see, and the sampler's replay must.
func alterToSecondChoice(m *engine.Model, a *verify.Attestation, r *rand.Rand) error {
	n := len(a.OutputTokens)
	if n < 2 {
		return nil
	}
	at := r.IntN(n - 1)
	var seq []int
	for _, v := range append(append([]uint32{}, a.PromptTokens...), a.OutputTokens...) {
		seq = append(seq, int(v))
	}
	p := len(a.PromptTokens)
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(seq)})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Prefill(context.Background(), seq[:p-1+at], 0); err != nil {
		return err
	}
	l, err := s.Forward(seq[p-1+at], p-1+at)
	if err != nil {
		return err
	}
	stops, second := m.StopTokens(), -1
	for tok := range l {
		if tok != seq[p+at] && !slices.Contains(stops, tok) && (second < 0 || l[tok] > l[second]) {
			second = tok
		}
	}
	a.OutputTokens[at] = uint32(second)
	s.Reset()
	seq[p+at] = second
	rec := verify.NewRecorder(verify.TopK)
	err = s.PrefillHidden(context.Background(), seq[:p+n-1], 0, func(pos int, h []float32) {
		if pos >= p-1 {
			rec.Hidden(pos, h)
		}
	})
	if err != nil {
		return err
	}
	a.Commits, err = rec.Finish()
	return err
}

// nudgeLastChunk recommits a's last chunk with its largest value moved
// by one to two bf16 steps: a near-miss within the tolerance that makes
// the recomputation inexact (what a miner claiming another engine may
// send).
func nudgeLastChunk(m *engine.Model, a *verify.Attestation) error {
	return recommitLastChunk(m, a, true)
}

// recommitLastChunk recommits a's last chunk from a recomputation, as a
// miner that truncates its output after generating it would; with nudge,
// the chunk's largest value is moved by 1/64 of itself first (one to two
// bf16 steps).
func recommitLastChunk(m *engine.Model, a *verify.Attestation, nudge bool) error {
	n := len(a.OutputTokens)
	from := (len(a.Commits) - 1) * verify.ChunkTokens
	var seq []int
	for _, v := range append(append([]uint32{}, a.PromptTokens...), a.OutputTokens...) {
		seq = append(seq, int(v))
	}
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(seq)})
	if err != nil {
		return err
	}
	defer s.Close()
	p := len(a.PromptTokens)
	rec := verify.NewRecorder(verify.TopK)
	var hs [][]float32
	err = s.PrefillHidden(context.Background(), seq[:p+n-1], 0, func(pos int, h []float32) {
		if pos >= p-1+from {
			hs = append(hs, slices.Clone(h))
		}
	})
	if err != nil {
		return err
	}
	if nudge {
		bi, bj := 0, 0
		for i, h := range hs {
			for j, v := range h {
				if math.Abs(float64(v)) > math.Abs(float64(hs[bi][bj])) {
					bi, bj = i, j
				}
			}
		}
		hs[bi][bj] *= 1 + 1.0/64
	}
	for i, h := range hs {
		rec.Hidden(p-1+from+i, h)
	}
	c, err := rec.Finish()
	if err != nil || len(c) != 1 {
		return fmt.Errorf("recommit: %v, %d chunks", err, len(c))
	}
	a.Commits[len(a.Commits)-1] = c[0]
	return nil
}

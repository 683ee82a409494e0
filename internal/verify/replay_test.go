package verify_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/verify"
)

// job is one generation with the request that made it, as a verifier
// knows it from the coordinator.
type job struct {
	res engine.Result
	a   *verify.Attestation
	exp verify.Expected
}

func genJob(t testing.TB, m *engine.Model, hash []byte, prompt string, maxTokens int, temp, topP float32, seed uint64) job {
	t.Helper()
	req := engine.GenerateRequest{Prompt: prompt, MaxTokens: maxTokens, Temperature: temp, TopP: topP, Seed: seed, Threads: 1}
	res, a, err := verify.Generate(context.Background(), m, req, hash, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	text := res.Text
	return job{res: res, a: a, exp: verify.Expected{ModelSHA256: hash, Result: &text, MaxTokens: maxTokens,
		Sampling: &verify.JobSampling{Temperature: temp, TopP: topP, Seed: seed}}}
}

// asV1 is a's first-format twin: the same tokens and commitments, without
// the sampling parameters.
func asV1(a *verify.Attestation) *verify.Attestation {
	b := *a
	b.Version, b.Sampling = verify.Version, nil
	return &b
}

func clone(a *verify.Attestation) *verify.Attestation {
	b := *a
	b.OutputTokens = slices.Clone(a.OutputTokens)
	b.Commits = slices.Clone(a.Commits)
	if a.Sampling != nil {
		s := *a.Sampling
		b.Sampling = &s
	}
	return &b
}

func seqOf(a *verify.Attestation) []int {
	var seq []int
	for _, v := range append(slices.Clone(a.PromptTokens), a.OutputTokens...) {
		seq = append(seq, int(v))
	}
	return seq
}

// recommitAll recomputes every commitment of a from its tokens, as a
// miner that edits its output after generating it and commits honestly to
// the edited one would: the recomputation is then exact.
func recommitAll(t testing.TB, m *engine.Model, a *verify.Attestation) {
	t.Helper()
	seq := seqOf(a)
	p, n := len(a.PromptTokens), len(a.OutputTokens)
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(seq)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := verify.NewRecorder(verify.TopK)
	err = s.PrefillHidden(context.Background(), seq[:p+n-1], 0, func(pos int, h []float32) {
		if pos >= p-1 {
			rec.Hidden(pos, h)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.Commits, err = rec.Finish(); err != nil {
		t.Fatal(err)
	}
}

// logitsAt are the model's logits after seq[:pos+1] (a copy).
func logitsAt(t testing.TB, m *engine.Model, seq []int, pos int) []float32 {
	t.Helper()
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: pos + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Prefill(context.Background(), seq[:pos], 0); err != nil {
		t.Fatal(err)
	}
	l, err := s.Forward(seq[pos], pos)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clone(l)
}

func softmaxProb(l []float32, tok int) float64 {
	hi := float64(slices.Max(l))
	var z float64
	for _, v := range l {
		z += math.Exp(float64(v) - hi)
	}
	return math.Exp(float64(l[tok])-hi) / z
}

// TestHonestJobsReplayExactly: the engine's jobs at temperature 0, 0.8
// and 1.0 with top-p 0.9 verify on 1 and 2 threads, every draw of the
// sampler replayed (the output tokens and, after an eos, the stop), with
// only the last token checked against the probability floor.
func TestHonestJobsReplayExactly(t *testing.T) {
	f := newFixture(t)
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	ctx := context.Background()
	eos := 0
	for _, c := range []struct {
		temp, topP float32
		seed       uint64
	}{{0, 0, 0}, {0.8, 0, 11}, {0.8, 0.9, 12}, {1, 0.9, 13}, {1, 1, 14}} {
		for seed := c.seed; seed < c.seed+4; seed++ {
			j := genJob(t, m, h, "Pierre said to Natasha that", 48, c.temp, c.topP, seed)
			if j.a.Version != verify.VersionSampling || j.a.Sampling.Seed == 0 || j.a.Sampling.TopP == 0 {
				t.Fatalf("attestation %d with %+v: want version %d, defaults applied", j.a.Version, j.a.Sampling, verify.VersionSampling)
			}
			want := len(j.a.OutputTokens)
			if j.a.Stop == string(engine.StopEOS) {
				want++
				eos++
			}
			for _, threads := range []int{1, 2} {
				rep, err := verify.Recompute(ctx, m, j.a, j.exp, threads, verify.DefaultTolerance)
				if err != nil || !rep.Pass {
					t.Fatalf("T %v top-p %v seed %d, %d threads: honest job rejected: %v", c.temp, c.topP, seed, threads, err)
				}
				if rep.Replayed != want || rep.TokensChecked != 1 {
					t.Errorf("T %v top-p %v seed %d: %d draws replayed, %d tokens checked; want %d and 1", c.temp, c.topP, seed, rep.Replayed, rep.TokensChecked, want)
				}
				tol := verify.DefaultTolerance
				tol.ReplayStopOnly = true
				rep, err = verify.Recompute(ctx, m, j.a, j.exp, threads, tol)
				if err != nil || rep.Replayed != want-len(j.a.OutputTokens)+1 {
					t.Errorf("T %v seed %d, stop only: %v, %d draws replayed", c.temp, seed, err, rep.Replayed)
				}
			}
			if c.temp == 0 {
				break // greedy: the seed changes nothing
			}
		}
	}
	t.Logf("%d of the jobs stopped at eos", eos)
}

// truncations finds honest jobs and cut points whose truncation (claiming
// eos, the last chunk recommitted) the probability checks accept: the
// stop is likely enough there (≥ MinStopProb).
func truncations(t *testing.T, f *fixture, want int) []*verify.Attestation {
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	var out []*verify.Attestation
	for seed := uint64(1); seed < 200 && len(out) < want; seed++ {
		j := genJob(t, m, h, "Natasha said to the old count that", 64, 0.8, 0, seed)
		seq := seqOf(j.a)
		p := len(j.a.PromptTokens)
		for keep := 1; keep < len(j.a.OutputTokens) && len(out) < want; keep++ {
			l := logitsAt(t, m, seq, p-1+keep)
			var stop float64
			for _, st := range m.StopTokens() {
				stop = max(stop, softmaxProb(l, st))
			}
			if stop < verify.DefaultTolerance.MinStopProb {
				continue
			}
			a := clone(j.a)
			a.OutputTokens = a.OutputTokens[:keep]
			a.Stop = string(engine.StopEOS)
			recommitAll(t, m, a)
			out = append(out, a)
		}
	}
	if len(out) < want {
		t.Fatalf("found %d plausible truncations, want %d", len(out), want)
	}
	return out
}

// TestTruncationIsCaughtByReplay: an output cut where the model might well
// have stopped passes the probability checks (its first-format twin is
// accepted), but the replayed draw at the cut is the token the engine went
// on with, not a stop: rejected with ErrReplay, also when only the stop is
// replayed.
func TestTruncationIsCaughtByReplay(t *testing.T) {
	f := newFixture(t)
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	ctx := context.Background()
	for i, a := range truncations(t, f, 3) {
		exp := verify.Expected{ModelSHA256: h, MaxTokens: 64, Sampling: &verify.JobSampling{Temperature: 0.8, Seed: a.Sampling.Seed}}
		if rep, err := verify.Recompute(ctx, m, asV1(a), exp, 1, verify.DefaultTolerance); err != nil || !rep.Pass {
			t.Fatalf("truncation %d: the probability checks reject it (%v); want a cut they accept", i, err)
		}
		for _, stopOnly := range []bool{false, true} {
			tol := verify.DefaultTolerance
			tol.ReplayStopOnly = stopOnly
			rep, err := verify.Recompute(ctx, m, a, exp, 2, tol)
			if !errors.Is(err, verify.ErrReplay) || rep.Pass {
				t.Fatalf("truncation %d after %d tokens (stop only %v): %v, want ErrReplay", i, len(a.OutputTokens), stopOnly, err)
			}
			if !strings.Contains(err.Error(), "not a stop") {
				t.Errorf("truncation %d: %v, want the stop's draw named", i, err)
			}
		}
	}
}

// TestAlteredTokenIsCaughtByReplay: one output token replaced by the
// model's second choice there, every commitment recomputed for the edited
// output (so the recomputation is exact and the probability checks pass:
// the first-format twin is accepted), is rejected by the full replay with
// ErrReplay at that token. Replaying the stop only does not see it (the
// documented trade-off of Tolerance.ReplayStopOnly).
func TestAlteredTokenIsCaughtByReplay(t *testing.T) {
	f := newFixture(t)
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	ctx := context.Background()
	for _, temp := range []float32{0, 0.8} {
		j := genJob(t, m, h, "The prince said to Sonya that", 64, temp, 0, 5)
		n := len(j.a.OutputTokens)
		if n < 8 {
			t.Fatalf("T %v: only %d tokens", temp, n)
		}
		at := n / 2
		seq := seqOf(j.a)
		p := len(j.a.PromptTokens)
		l := logitsAt(t, m, seq, p-1+at)
		second := -1
		for tok := range l {
			if tok != int(j.a.OutputTokens[at]) && !slices.Contains(m.StopTokens(), tok) && (second < 0 || l[tok] > l[second]) {
				second = tok
			}
		}
		a := clone(j.a)
		a.OutputTokens[at] = uint32(second)
		recommitAll(t, m, a)
		exp := j.exp
		exp.Result = nil // the cheat's receipt signs its edited text
		if rep, err := verify.Recompute(ctx, m, asV1(a), exp, 1, verify.DefaultTolerance); err != nil || !rep.Pass {
			t.Fatalf("T %v: the first format rejects the edit (%v); want it accepted, as the probability checks do", temp, err)
		}
		rep, err := verify.Recompute(ctx, m, a, exp, 1, verify.DefaultTolerance)
		if !errors.Is(err, verify.ErrReplay) || rep.Pass {
			t.Fatalf("T %v: token %d replaced by the second choice: %v, want ErrReplay", temp, at, err)
		}
		if want := "output token " + strconv.Itoa(at) + " is"; !strings.Contains(err.Error(), want) {
			t.Errorf("T %v: %v, want %q", temp, err, want)
		}
		tol := verify.DefaultTolerance
		tol.ReplayStopOnly = true
		if _, err := verify.Recompute(ctx, m, a, exp, 1, tol); err != nil {
			t.Errorf("T %v, stop only: %v; the edit is documented as unseen there", temp, err)
		}
	}
}

// TestSamplingParametersMustBeTheJobs: an attestation that claims other
// parameters than the job asked for is refused before any computation
// (ErrParams); one that claims the job's seed but sampled with another is
// refused by the replay (ErrReplay).
func TestSamplingParametersMustBeTheJobs(t *testing.T) {
	f := newFixture(t)
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	ctx := context.Background()
	j := genJob(t, m, h, "Andrei said to Petya that", 40, 0.8, 0.9, 21)
	for name, edit := range map[string]func(e *verify.Expected){
		"temperature": func(e *verify.Expected) { e.Sampling.Temperature = 1 },
		"top-p":       func(e *verify.Expected) { e.Sampling.TopP = 0 },
		"seed":        func(e *verify.Expected) { e.Sampling.Seed = 22 },
		"stop":        func(e *verify.Expected) { e.Sampling.Stop = []string{"\n\n"} },
		"max tokens":  func(e *verify.Expected) { e.MaxTokens = 64 },
	} {
		exp := j.exp
		s := *exp.Sampling
		exp.Sampling = &s
		edit(&exp)
		rep, err := verify.Recompute(ctx, m, j.a, exp, 1, verify.DefaultTolerance)
		if !errors.Is(err, verify.ErrParams) || rep.Pass || len(rep.Chunks) != 0 {
			t.Errorf("job asked another %s: %v (%d chunks computed), want ErrParams first", name, err, len(rep.Chunks))
		}
	}
	// The job's seed claimed, another one used.
	other := genJob(t, m, h, "Andrei said to Petya that", 40, 0.8, 0.9, 99)
	a := clone(other.a)
	a.Sampling.Seed = 21
	exp := j.exp
	exp.Result = &other.res.Text
	if _, err := verify.Recompute(ctx, m, a, exp, 1, verify.DefaultTolerance); !errors.Is(err, verify.ErrReplay) {
		t.Errorf("sampled with seed 99, claims 21: %v, want ErrReplay", err)
	}
	// A job with stop strings whose text contains one ran past its stop.
	text := j.res.Text
	if len(text) > 4 {
		a := clone(j.a)
		a.Sampling.StopStrings = []string{text[1:4]}
		exp := j.exp
		s := *exp.Sampling
		s.Stop = a.Sampling.StopStrings
		exp.Sampling = &s
		if _, err := verify.Recompute(ctx, m, a, exp, 1, verify.DefaultTolerance); !errors.Is(err, verify.ErrReplay) || !strings.Contains(err.Error(), "stop string") {
			t.Errorf("text with its stop string %q: %v, want ErrReplay", s.Stop[0], err)
		}
	}
}

// TestFirstFormatStillVerifies: a version 1 attestation (no sampling
// parameters) keeps its bytes through decode and encode and verifies as
// before: by the commitments and the probability checks, no replay.
func TestFirstFormatStillVerifies(t *testing.T) {
	f := newFixture(t)
	m, h := f.byType["Q8_0"], f.hash["Q8_0"]
	j := genJob(t, m, h, "The old count said", 48, 0.8, 0, 3)
	b, err := asV1(j.a).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0x89 || b[1] != verify.Version {
		t.Fatalf("first format encodes as % x..., want a 9-element array of version 1", b[:2])
	}
	a, err := verify.DecodeAttestation(b)
	if err != nil || a.Sampling != nil {
		t.Fatalf("decode: %v, sampling %v", err, a.Sampling)
	}
	if again, _ := a.Encode(); !bytes.Equal(again, b) {
		t.Fatal("a version 1 attestation does not keep its bytes")
	}
	rep, err := verify.Recompute(context.Background(), m, a, j.exp, 1, verify.DefaultTolerance)
	if err != nil || !rep.Pass || rep.Replayed != 0 || rep.TokensChecked != 1 {
		t.Fatalf("version 1: %v, %d replayed, %d checked", err, rep.Replayed, rep.TokensChecked)
	}
}

// TestSamplingAttestationShape: the version 3 encoding round-trips and
// signs its parameters; malformed parameters are refused.
func TestSamplingAttestationShape(t *testing.T) {
	f := newFixture(t)
	j := genJob(t, f.byType["Q8_0"], f.hash["Q8_0"], "Sonya said", 20, 0.8, 0, 0)
	if sp := j.a.Sampling; sp.Seed != engine.DefaultSeed || sp.TopP != 1 || sp.Temperature != 0.8 || sp.MaxTokens != 20 {
		t.Fatalf("sampling %+v: want the engine's defaults and the limit", sp)
	}
	b, err := j.a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := verify.DecodeAttestation(b)
	if err != nil || !reflect.DeepEqual(back.Sampling, j.a.Sampling) {
		t.Fatalf("round trip: %v %+v", err, back.Sampling)
	}
	h1, _ := j.a.Hash()
	c := clone(j.a)
	c.Sampling.Seed++
	if h2, _ := c.Hash(); bytes.Equal(h1, h2) {
		t.Error("the seed is not in the attestation's hash")
	}
	for name, edit := range map[string]func(a *verify.Attestation){
		"NaN temperature":        func(a *verify.Attestation) { a.Sampling.Temperature = float32(math.NaN()) },
		"temperature 3":          func(a *verify.Attestation) { a.Sampling.Temperature = 3 },
		"top-p 0":                func(a *verify.Attestation) { a.Sampling.TopP = 0 },
		"seed 0":                 func(a *verify.Attestation) { a.Sampling.Seed = 0 },
		"limit under the output": func(a *verify.Attestation) { a.Sampling.MaxTokens = uint32(len(a.OutputTokens) - 1) },
		"empty stop string":      func(a *verify.Attestation) { a.Sampling.StopStrings = []string{""} },
		"too many stop strings":  func(a *verify.Attestation) { a.Sampling.StopStrings = make([]string, verify.MaxStopStrings+1) },
		"version 3 without":      func(a *verify.Attestation) { a.Sampling = nil },
		"version 1 with":         func(a *verify.Attestation) { a.Version = verify.Version },
	} {
		a := clone(j.a)
		edit(a)
		if err := a.Check(); !errors.Is(err, verify.ErrCommitment) {
			t.Errorf("%s: %v, want ErrCommitment", name, err)
		}
	}
}

package verify_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/verify"
)

// reportLogprobs plays a remote backend that reports log-probabilities
// (what Ollama or llama-server send with logprobs/top_logprobs): it
// generates from prompt on m and reports, for each generated token, its
// text, its log-probability and the top alternatives, computed on m token
// by token (Forward), as that backend would.
func reportLogprobs(t *testing.T, m *engine.Model, prompt string, n int, seed uint64) ([]int, *verify.LogprobAttestation) {
	t.Helper()
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: prompt, MaxTokens: n, Temperature: 0.8, Seed: seed, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq := append(slices.Clone(res.PromptTokens), res.Tokens...)
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(seq)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := m.Tokenizer()
	a := &verify.LogprobAttestation{Version: verify.LogprobVersion, Backend: "test", Model: "tolstoy"}
	p := len(res.PromptTokens)
	for pos := range len(seq) - 1 {
		logits, err := s.Forward(seq[pos], pos)
		if err != nil {
			t.Fatal(err)
		}
		if pos < p-1 {
			continue
		}
		lp := logSoftmax(logits)
		next := seq[pos+1]
		at := verify.PositionLogprobs{Token: []byte(tok.Piece(seq[pos], next)), Logprob: verify.MicroLogprob(lp[next])}
		order := make([]int, len(lp))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(x, y int) int { return -cmpFloat(lp[x], lp[y]) })
		for _, id := range order[:verify.TopLogprobs] {
			at.Top = append(at.Top, verify.TopLogprob{Token: []byte(tok.Piece(seq[pos], id)), Logprob: verify.MicroLogprob(lp[id])})
		}
		a.Positions = append(a.Positions, at)
	}
	return res.PromptTokens, a
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func logSoftmax(logits []float32) []float64 {
	hi := float64(slices.Max(logits))
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v) - hi)
	}
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = float64(v) - hi - math.Log(z)
	}
	return out
}

// TestLogprobAttestationHonestPasses: a backend that ran the model passes,
// checked on another thread count, and the attestation survives its
// encoding.
func TestLogprobAttestationHonestPasses(t *testing.T) {
	f := newFixture(t)
	m := f.byType["Q8_0"]
	prompt, a := reportLogprobs(t, m, "The old prince said", 80, 3)
	enc, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := verify.AttestationVersion(enc); err != nil || v != verify.LogprobVersion {
		t.Fatalf("version %d, %v", v, err)
	}
	back, err := verify.DecodeLogprobAttestation(enc)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes for %d positions with %d alternatives each", len(enc), len(a.Positions), verify.TopLogprobs)
	rep, err := verify.RecomputeLogprobs(context.Background(), m, back, prompt, 2, verify.DefaultLogprobTolerance)
	if err != nil || !rep.Pass {
		t.Fatalf("honest run rejected: %v %+v", err, rep.Failures)
	}
	if r := rep.Logprobs; r.Positions != 80 || r.MaxDiff > 1e-5 || r.TopOverlap != 1 {
		t.Errorf("honest run: %+v, want 80 positions, no difference, every alternative found", r)
	}
	// A prompt longer than a batch: the verifier prefills it without
	// logits first.
	long := strings.Repeat("The old prince said that the war would be long. ", 4)
	prompt, a = reportLogprobs(t, m, long, 30, 4)
	if len(prompt) <= 33 {
		t.Fatalf("prompt of %d tokens, want more than a batch", len(prompt))
	}
	rep, err = verify.RecomputeLogprobs(context.Background(), m, a, prompt, 1, verify.DefaultLogprobTolerance)
	if err != nil || rep.Logprobs.MaxDiff > 1e-5 {
		t.Fatalf("honest run after a long prompt: %v %+v", err, rep.Logprobs)
	}
}

// TestLogprobAttestationCatches: another model, a coarser quantisation
// and forged numbers are rejected; text the model cannot tokenise is
// refused as ErrTokens.
func TestLogprobAttestationCatches(t *testing.T) {
	f := newFixture(t)
	verifier := f.byType["F32"]
	ctx := context.Background()
	cases := map[string]*engine.Model{
		"a model without its last layer": f.small,
		"Q4_K instead of F32":            f.byType["Q4_K"],
	}
	for name, served := range cases {
		prompt, a := reportLogprobs(t, served, "The old prince said", 64, 5)
		rep, err := verify.RecomputeLogprobs(ctx, verifier, a, prompt, 1, verify.DefaultLogprobTolerance)
		if !errors.Is(err, verify.ErrMismatch) || rep.Pass {
			t.Errorf("%s: accepted (%v, %+v)", name, err, rep.Logprobs)
		}
		t.Logf("%s: %+v", name, *rep.Logprobs)
	}
	// Q8_0 against F32 is within the tolerance: a fine quantisation is
	// what this check does not catch (docs/VERIFICATION.md).
	prompt8, a8 := reportLogprobs(t, f.byType["Q8_0"], "The old prince said", 64, 5)
	if rep, _ := verify.RecomputeLogprobs(ctx, verifier, a8, prompt8, 1, verify.DefaultLogprobTolerance); rep.Logprobs != nil {
		t.Logf("Q8_0 instead of F32 (not caught by design): %+v", *rep.Logprobs)
	}
	prompt, a := reportLogprobs(t, verifier, "The old prince said", 40, 7)
	forged := *a
	forged.Positions = slices.Clone(a.Positions)
	for i := range forged.Positions {
		forged.Positions[i].Logprob = verify.MicroLogprob(-0.01) // "the model was sure of every token"
	}
	if _, err := verify.RecomputeLogprobs(ctx, verifier, &forged, prompt, 1, verify.DefaultLogprobTolerance); !errors.Is(err, verify.ErrMismatch) {
		t.Errorf("forged log-probabilities: %v", err)
	}
	alien := *a
	alien.Positions = slices.Clone(a.Positions)
	alien.Positions[3].Token = []byte("\U0001F600zz-not-a-token")
	if _, err := verify.RecomputeLogprobs(ctx, verifier, &alien, prompt, 1, verify.DefaultLogprobTolerance); !errors.Is(err, verify.ErrTokens) {
		t.Errorf("a token outside the vocabulary: %v", err)
	}
}

// TestLogprobAttestationShape: malformed or oversized attestations are
// refused before any computation.
func TestLogprobAttestationShape(t *testing.T) {
	ok := verify.PositionLogprobs{Token: []byte("a"), Logprob: -5}
	long := make([]verify.TopLogprob, verify.MaxTopLogprobs+1)
	for _, a := range []verify.LogprobAttestation{
		{Version: verify.Version, Positions: []verify.PositionLogprobs{ok}},
		{Version: verify.LogprobVersion},
		{Version: verify.LogprobVersion, Positions: []verify.PositionLogprobs{{Token: []byte("a"), Logprob: 3}}},
		{Version: verify.LogprobVersion, Positions: []verify.PositionLogprobs{{Token: []byte("a"), Top: long}}},
		{Version: verify.LogprobVersion, Positions: []verify.PositionLogprobs{{Token: make([]byte, verify.MaxTokenBytes+1)}}},
	} {
		if err := a.Check(); !errors.Is(err, verify.ErrCommitment) {
			t.Errorf("%+v: %v", a, err)
		}
	}
	if _, err := verify.AttestationVersion([]byte{0xa1, 0x01}); !errors.Is(err, verify.ErrCommitment) {
		t.Errorf("a map, not an attestation: %v", err)
	}
	if got := verify.MicroLogprob(math.Inf(-1)); got != -2000*verify.LogprobScale {
		t.Errorf("-inf stored as %d", got)
	}
}

// FuzzDecodeLogprobAttestation: any bytes either fail to decode with
// ErrCommitment or give an attestation that checks and re-encodes to a
// form that decodes to the same attestation.
func FuzzDecodeLogprobAttestation(f *testing.F) {
	good := verify.LogprobAttestation{Version: verify.LogprobVersion, Backend: "ollama", Model: "m",
		Positions: []verify.PositionLogprobs{{Token: []byte("a"), Logprob: -5, Top: []verify.TopLogprob{{Token: []byte{0xc3}, Logprob: -7}}}}}
	enc, err := good.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte{0x84, 0x02, 0x60, 0x60, 0x80})
	f.Add([]byte{0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := verify.DecodeLogprobAttestation(b)
		if err != nil {
			if !errors.Is(err, verify.ErrCommitment) {
				t.Fatalf("error %v is not ErrCommitment", err)
			}
			return
		}
		again, err := a.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := verify.DecodeLogprobAttestation(again)
		if err != nil {
			t.Fatalf("re-encoded attestation does not decode: %v", err)
		}
		if b2, _ := back.Encode(); string(b2) != string(again) {
			t.Fatal("encoding is not stable")
		}
	})
}

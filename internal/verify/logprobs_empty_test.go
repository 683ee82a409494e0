package verify_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/verify"
)

// reportTokens plays a backend that ran prompt then out on m, reporting
// each output token's bytes as llama-server does (a control token as no
// bytes), its log-probability and the top alternatives, computed token by
// token (Forward).
func reportTokens(t *testing.T, m *engine.Model, prompt, out []int) *verify.LogprobAttestation {
	t.Helper()
	seq := append(slices.Clone(prompt), out...)
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(seq)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := m.Tokenizer()
	a := &verify.LogprobAttestation{Version: verify.LogprobVersion, Backend: verify.BackendOpenAI, Model: "tolstoy"}
	for pos := range len(seq) - 1 {
		logits, err := s.Forward(seq[pos], pos)
		if err != nil {
			t.Fatal(err)
		}
		if pos < len(prompt)-1 {
			continue
		}
		lp := logSoftmax(logits)
		next := seq[pos+1]
		prev := seq[pos] // as reportLogprobs, but a server renders a piece after BOS mid-output with its space
		if pos >= len(prompt) {
			prev = -1
		}
		at := verify.PositionLogprobs{Token: []byte(tok.Piece(prev, next)), Logprob: verify.MicroLogprob(lp[next])}
		order := make([]int, len(lp))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(x, y int) int { return -cmpFloat(lp[x], lp[y]) })
		for _, id := range order[:verify.TopLogprobs] {
			at.Top = append(at.Top, verify.TopLogprob{Token: []byte(tok.Piece(prev, id)), Logprob: verify.MicroLogprob(lp[id])})
		}
		a.Positions = append(a.Positions, at)
	}
	return a
}

// TestLogprobAttestationEmptyToken: a job whose output holds a control
// token (BOS or EOS mid-output, which llama-server reports with no bytes)
// is placed exactly wherever the token is, and refused when the model
// gives it almost no chance (padding); more tokens
// without bytes than maxEmptyTokens allows are refused, and a forged
// log-probability at such a position is still caught.
func TestLogprobAttestationEmptyToken(t *testing.T) {
	f := newFixture(t)
	m := f.byType["Q8_0"]
	tok := m.Tokenizer()
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "The old prince said", MaxTokens: 40, Temperature: 0.8, Seed: 5, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prompt := res.PromptTokens
	for _, tc := range []struct {
		name string
		at   []int // indexes of res.Tokens before which a control token goes
		id   int
	}{
		{"BOS mid-output", []int{12}, tok.BOS()},
		{"EOS mid-output", []int{20}, tok.EOS()},
		{"first and last", []int{0, len(res.Tokens)}, tok.BOS()},
	} {
		out := slices.Clone(res.Tokens)
		for k, i := range tc.at {
			out = slices.Insert(out, i+k, tc.id)
		}
		a := reportTokens(t, m, prompt, out)
		for k, i := range tc.at {
			if p := a.Positions[i+k]; len(p.Token) != 0 {
				t.Fatalf("%s: position %d reported as %q, want no bytes", tc.name, i+k, p.Token)
			}
		}
		rep, err := verify.RecomputeLogprobs(context.Background(), m, a, prompt, 2, verify.DefaultLogprobTolerance)
		// Δ = 0 everywhere only if the verifier placed the same token: the
		// positions after it are computed on it.
		if r := rep.Logprobs; r == nil || r.EmptyTokens != len(tc.at) || r.MaxDiff > 1e-5 || r.TopOverlap != 1 {
			t.Errorf("%s: %+v, want %d empty tokens placed, no difference", tc.name, r, len(tc.at))
		}
		// Placed exactly, and still refused: a control token the model
		// gives almost no chance is padding (it adds no text, but counts as
		// a paid token), not something an honest sampler drew. The honest
		// case, a control token the model makes likely, passes in
		// TestLlamaServerRecordings (wide Q8_0, <s> at 0.15).
		if !errors.Is(err, verify.ErrMismatch) || rep.Pass || !strings.Contains(err.Error(), "implausible") {
			t.Errorf("%s: %v, want refused as implausible", tc.name, err)
		}
	}

	// A forged log-probability on the control token: no candidate is near.
	out := slices.Insert(slices.Clone(res.Tokens), 12, tok.BOS())
	a := reportTokens(t, m, prompt, out)
	a.Positions[12].Logprob = verify.MicroLogprob(-1e-4)
	if _, err := verify.RecomputeLogprobs(context.Background(), m, a, prompt, 1, verify.DefaultLogprobTolerance); !errors.Is(err, verify.ErrMismatch) {
		t.Errorf("forged control-token log-probability: %v, want ErrMismatch", err)
	}

	// Too many tokens without bytes: one in eight at most.
	out = slices.Clone(res.Tokens)
	for i := 0; i < 8; i++ {
		out = slices.Insert(out, 3*i, tok.BOS())
	}
	a = reportTokens(t, m, prompt, out)
	if _, err := verify.RecomputeLogprobs(context.Background(), m, a, prompt, 1, verify.DefaultLogprobTolerance); !errors.Is(err, verify.ErrTokens) {
		t.Errorf("8 of %d tokens without bytes: %v, want ErrTokens", len(a.Positions), err)
	}
}

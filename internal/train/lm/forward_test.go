package lm

import (
	"math"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
)

// TestForwardMatchesEngine runs tolstoy-1m's weights through the
// trainer's forward pass and the engine's inference: the next-token
// probabilities agree, so the model being trained is the model that runs.
func TestForwardMatchesEngine(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	tens, err := m.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	s := shapeOf(m.Config())
	l := layoutOf(s)
	p := flatten(tens, l)
	tokens := m.Tokenizer().Encode("Prince Andrew looked at the old count and smiled.", true)
	T := len(tokens)
	a := newActs(s, T)
	forward(p, l, a, newRope(s, T), tokens, make([]int, T))
	sess, err := m.NewSession(engine.SessionOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	for pos, tok := range tokens {
		logits, err := sess.Forward(tok, pos)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), logits...)
		softmax(want)
		got := a.probs[pos*s.vocab : (pos+1)*s.vocab]
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-5 {
				t.Fatalf("position %d token %d: trainer %g, engine %g", pos, i, got[i], want[i])
			}
		}
	}
}

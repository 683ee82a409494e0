package engine_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// sentinels are the errors a loader may return for bad input; anything
// else (or a panic) is a bug.
var sentinels = []error{
	engine.ErrTruncated, engine.ErrSizeMismatch, engine.ErrInvalidHeader, engine.ErrUnknownFormat,
	engine.ErrUnsupported, engine.ErrTokenizer, engine.ErrVocabMismatch,
}

func checkLoad(t *testing.T, m *engine.Model, err error) {
	t.Helper()
	if err != nil {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error without a sentinel: %v", err)
	}
	// A model that loads must run.
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logits, err := s.Forward(m.Tokenizer().BOS(), 0)
	if err != nil || len(logits) != m.Config().VocabSize {
		t.Fatalf("forward: %v, %d logits", err, len(logits))
	}
}

// FuzzLoadLlama2C feeds arbitrary checkpoints (with a valid tokenizer):
// loading must fail with a sentinel error or give a model that runs.
func FuzzLoadLlama2C(f *testing.F) {
	tok := microTokenizer()
	for _, shared := range []bool{true, false} {
		w := newMicro(shared, 9)
		f.Add(w.v0())
		f.Add(w.v1())
		f.Add(w.v0()[:40])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := engine.LoadLlama2C(data, tok)
		checkLoad(t, m, err)
	})
}

// FuzzLoadGGUF feeds arbitrary GGUF files: loading must fail with a
// sentinel error or give a model that runs.
func FuzzLoadGGUF(f *testing.F) {
	for _, shared := range []bool{true, false} {
		src, err := engine.LoadLlama2C(newMicro(shared, 11).v0(), microTokenizer())
		if err != nil {
			f.Fatal(err)
		}
		for _, typ := range []gguf.TensorType{gguf.F32, gguf.F16} {
			var b bytes.Buffer
			if err := src.WriteGGUF(&b, typ); err != nil {
				f.Fatal(err)
			}
			f.Add(b.Bytes())
		}
	}
	f.Add([]byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := engine.LoadGGUF(data)
		checkLoad(t, m, err)
	})
}

package engine_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// TestTensorsRoundTrip: a model rebuilt from its own tensors generates
// the same tokens, and survives a GGUF round trip; tensors of the wrong
// size are refused.
func TestTensorsRoundTrip(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	tens, err := m.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	n, err := m.WithTensors("copy", tens)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := n.WriteGGUF(&buf, gguf.F32); err != nil {
		t.Fatal(err)
	}
	back, err := engine.LoadGGUF(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	req := engine.GenerateRequest{Prompt: "Natasha", MaxTokens: 16, Threads: 1}
	want, err := m.Generate(context.Background(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mm := range []*engine.Model{n, back} {
		got, err := mm.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Text != want.Text {
			t.Fatalf("%s: %q, want %q", mm.Name(), got.Text, want.Text)
		}
	}
	tens.Layers[1].W2 = tens.Layers[1].W2[:10]
	if _, err := m.WithTensors("bad", tens); !errors.Is(err, engine.ErrBuffer) {
		t.Fatalf("short tensor: %v", err)
	}
}

package lm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/train/lm"
)

func book(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/book.txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func base(t *testing.T) *engine.Model {
	t.Helper()
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// small is a run that takes a few seconds on a loaded 2-core machine.
var small = lm.Params{Steps: 8, BatchSize: 4, SeqLen: 32, LearningRate: 3e-4, Seed: 5}

// TestFinetuneLowersHeldOutLoss: a few steps on the customer's book make
// the model better at the part of the book it never trained on, and the
// loss of every step is reported.
func TestFinetuneLowersHeldOutLoss(t *testing.T) {
	var steps []lm.Step
	res, err := lm.Finetune(context.Background(), base(t), "austen-1m", book(t), small, 0, func(s lm.Step) error {
		steps = append(steps, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != small.Steps || steps[len(steps)-1].Step != small.Steps || steps[0].Steps != small.Steps {
		t.Fatalf("progress: %+v", steps)
	}
	m := res.Metrics
	t.Logf("held-out loss %.4f -> %.4f; first step %.4f, last %.4f", m.HoldoutLossBefore, m.HoldoutLossAfter, steps[0].Loss, steps[len(steps)-1].Loss)
	if !(m.HoldoutLossAfter < m.HoldoutLossBefore-0.05) {
		t.Fatalf("held-out loss %.4f after fine-tuning, %.4f before: not lower", m.HoldoutLossAfter, m.HoldoutLossBefore)
	}
	if m.HoldoutWindows < 1 || res.Plan.HoldoutTokens < small.SeqLen+1 {
		t.Fatalf("held-out evaluation on %d windows of %d tokens", m.HoldoutWindows, res.Plan.HoldoutTokens)
	}
}

// TestFinetuneIsDeterministic: the same data, seed and parameters give
// the same weights bit for bit, on one goroutine or several.
func TestFinetuneIsDeterministic(t *testing.T) {
	p := small
	p.Steps = 3
	var hashes []string
	for _, workers := range []int{1, 3, 1} {
		p.Workers = workers
		res, err := lm.Finetune(context.Background(), base(t), "x", book(t), p, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, res.WeightsSHA256)
	}
	if hashes[0] != hashes[1] || hashes[0] != hashes[2] {
		t.Fatalf("weights hashes differ: %v", hashes)
	}
	p.Seed++
	res, err := lm.Finetune(context.Background(), base(t), "x", book(t), p, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.WeightsSHA256 == hashes[0] {
		t.Fatal("another seed gave the same weights: the hash proves nothing")
	}
}

// TestFinetunedModelWritesImportableGGUF: the result is a GGUF that the
// registry imports and the engine runs, and its weights are the new ones.
func TestFinetunedModelWritesImportableGGUF(t *testing.T) {
	p := small
	p.Steps = 2
	res, err := lm.Finetune(context.Background(), base(t), "austen-1m", book(t), p, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := res.Model.WriteGGUF(&buf, gguf.F32); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "austen.gguf")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := engine.NewRegistry(dir)
	if _, err := reg.Import(file, engine.ImportOptions{Name: "austen-1m"}); err != nil {
		t.Fatal(err)
	}
	m, err := reg.Open("austen-1m")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tens, err := m.Tensors()
	if err != nil {
		t.Fatal(err)
	}
	if got := lm.TensorsSHA256(tens); got != res.WeightsSHA256 {
		t.Fatalf("imported weights hash %s, trained %s", got, res.WeightsSHA256)
	}
	out, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "Mr. Bennet", MaxTokens: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tokens) == 0 {
		t.Fatal("the imported model generated nothing")
	}
}

// TestFinetuneRefusesBadInput: datasets that are not text, too small or
// too large, and runs that are too long fail before any step.
func TestFinetuneRefusesBadInput(t *testing.T) {
	bookText := book(t)
	for _, c := range []struct {
		name string
		text []byte
		p    lm.Params
		max  int
		want error
	}{
		{"empty", []byte(" \n\t"), small, 0, lm.ErrDataset},
		{"binary", []byte("PK\x03\x04\x00\x00 zip"), small, 0, lm.ErrDataset},
		{"not utf-8", []byte("caf\xe9 au lait"), small, 0, lm.ErrDataset},
		{"too short", []byte("A short line."), small, 0, lm.ErrDataset},
		{"too large", bytes.Repeat([]byte("a"), lm.MaxDatasetBytes+1), small, 0, lm.ErrDataset},
		{"too long a run", bookText, lm.Params{Steps: 1000, BatchSize: 4, SeqLen: 32}, 10000, lm.ErrTooLong},
		{"steps and epochs", bookText, lm.Params{Steps: 2, Epochs: 1}, 0, lm.ErrParams},
		{"sequence beyond the context", bookText, lm.Params{Steps: 1, SeqLen: 512}, 0, lm.ErrParams},
		{"learning rate", bookText, lm.Params{Steps: 1, LearningRate: 5}, 0, lm.ErrParams},
	} {
		t.Run(c.name, func(t *testing.T) {
			called := false
			_, err := lm.Finetune(context.Background(), base(t), "x", c.text, c.p, c.max, func(lm.Step) error { called = true; return nil })
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if called || !strings.HasPrefix(err.Error(), "lm: ") {
				t.Fatalf("a step ran, or the error %q lacks the package prefix", err)
			}
		})
	}
}

package jobkind_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/train/lm"
)

func bookText(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../train/lm/testdata/book.txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func finetuneParams(t *testing.T, steps int) lm.Params {
	t.Helper()
	p, err := lm.Params{Steps: steps, SeqLen: 32}.WithDefaults(256)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFinetuneJobStreamsStepsAndNamesItsModelFile: a training job with
// --model tolstoy-1m fine-tunes on the book, streams each step's loss,
// is the same with 1 or 2 workers, and its result names the GGUF (which
// the engine loads) by hash.
func TestFinetuneJobStreamsStepsAndNamesItsModelFile(t *testing.T) {
	model, err := jobkind.ModelFor(jobkind.TypeTraining, engine.DefaultModel)
	if err != nil || model != "finetune:tolstoy-1m" || !jobkind.IsKindModel(model) {
		t.Fatalf("model %q, %v", model, err)
	}
	data := bookText(t)
	s, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(data),
		Finetune: &jobkind.FinetuneSpec{Base: engine.DefaultModel, Params: finetuneParams(t, 3)}}, data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Units != 6 || s.KindModel() != model { // 3 steps × 4 × 32 tokens = 384 tokens: six units of 64
		t.Fatalf("units %d, model %s", s.Units, s.KindModel())
	}
	spec, err := jobkind.ParseSpec(prompt)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	a, err := jobkind.Execute(t.Context(), spec, data, ref(data).SHA256, 1, func(l string) error {
		if strings.HasPrefix(l, "step ") {
			steps = append(steps, l)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := jobkind.Execute(t.Context(), spec, data, ref(data).SHA256, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Text != b.Text || !bytes.Equal(a.File, b.File) || len(steps) != 3 || !strings.HasPrefix(steps[2], "step 3/3 loss=") {
		t.Fatalf("results differ between 1 and 2 workers, or progress %q", steps)
	}
	r, err := jobkind.ParseModelResult(a.Text)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckFile(a.File); err != nil {
		t.Fatal(err)
	}
	if err := r.CheckFile(append(a.File[:len(a.File):len(a.File)], 0)); err == nil {
		t.Fatal("a longer file passed the check")
	}
	m, err := engine.LoadGGUF(a.File)
	if err != nil {
		t.Fatal(err)
	}
	tens, err := m.Tensors()
	if err != nil || lm.TensorsSHA256(tens) != r.WeightsSHA256 {
		t.Fatalf("the GGUF's weights are not the ones the result names: %v", err)
	}
	if jobkind.OutputName(model, "j1", &spec) != "j1.gguf" {
		t.Fatal(jobkind.OutputName(model, "j1", &spec))
	}
}

func TestFinetuneJobsAreRefusedBeforePayment(t *testing.T) {
	data := bookText(t)
	good := finetuneParams(t, 2)
	long := good
	long.Steps = 1 << 20
	partial := good
	partial.SeqLen = 0
	bin := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00")
	for _, c := range []struct {
		name string
		spec jobkind.Spec
		data []byte
		want error
	}{
		{"not text", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(bin), Finetune: &jobkind.FinetuneSpec{Base: engine.DefaultModel, Params: good}}, bin, lm.ErrDataset},
		{"empty", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref([]byte("\n\n")), Finetune: &jobkind.FinetuneSpec{Base: engine.DefaultModel, Params: good}}, []byte("\n\n"), lm.ErrDataset},
		{"too long a run", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(data), Finetune: &jobkind.FinetuneSpec{Base: engine.DefaultModel, Params: long}}, data, jobkind.ErrTooMuchWork},
		{"another base", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(data), Finetune: &jobkind.FinetuneSpec{Base: "llama3.2", Params: good}}, data, jobkind.ErrBadSpec},
		{"parameters not whole", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(data), Finetune: &jobkind.FinetuneSpec{Base: engine.DefaultModel, Params: partial}}, data, jobkind.ErrBadSpec},
		{"both trainers", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(data), Train: &jobkind.TrainSpec{}, Finetune: &jobkind.FinetuneSpec{Base: engine.DefaultModel, Params: good}}, data, jobkind.ErrBadSpec},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := jobkind.Prepare(c.spec, c.data); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := jobkind.ModelFor(jobkind.TypeTraining, "llama3.2"); !errors.Is(err, jobkind.ErrBadSpec) || !strings.Contains(err.Error(), "tolstoy-1m") {
		t.Fatalf("unknown training model: %v", err)
	}
}

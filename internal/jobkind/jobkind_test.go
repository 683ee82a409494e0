package jobkind_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/train"
)

func ref(data []byte) jobkind.FileRef {
	h := sha256.Sum256(data)
	return jobkind.FileRef{SHA256: hex.EncodeToString(h[:]), Bytes: int64(len(data)), Name: "f.csv"}
}

func table(rows int) []byte {
	var sb strings.Builder
	sb.WriteString("a,b,label\n")
	for i := range rows {
		l := "x"
		if (i%7)+(i%5) > 5 {
			l = "y"
		}
		fmt.Fprintf(&sb, "%d,%d,%s\n", i%7, i%5, l)
	}
	return []byte(sb.String())
}

func TestDataProcessingJobRoundTrip(t *testing.T) {
	data := table(2500) // 7,500 cells: 8 units
	s, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeDataProcessing, Input: ref(data),
		Data: &dataproc.Spec{GroupBy: []string{"label"}, Aggregates: []dataproc.Aggregate{{Fn: "count"}}, Output: "csv"}}, data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Units != 8 {
		t.Fatalf("units = %d, want 8", s.Units)
	}
	back, err := jobkind.ParseSpec(prompt)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	res, err := jobkind.Execute(t.Context(), back, data, ref(data).SHA256, 1, func(l string) error { lines = append(lines, l); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if res.Units != 8 || !strings.Contains(res.Text, "label,count,count(*)\nx,1429,1429\ny,1071,1071\n") || len(lines) != 1 {
		t.Fatalf("result %+v, progress %q", res, lines)
	}
	if got := jobkind.OutputName(jobkind.ModelDataProcessing, "j1", &back); got != "j1.report.csv" {
		t.Fatalf("output name %s", got)
	}
}

func TestTrainingJobIsTheSameOnAnyMinerAndStreamsEpochs(t *testing.T) {
	data := table(400)
	p, _ := train.Params{Kind: train.KindLogistic, Epochs: 5, Seed: 3}.WithDefaults()
	p.Workers = 0
	s, prompt, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(data), Train: &jobkind.TrainSpec{Label: "label", Params: p}}, data)
	if err != nil {
		t.Fatal(err)
	}
	if s.Units != 16 { // 320 training rows × 5 epochs / 100
		t.Fatalf("units %d", s.Units)
	}
	spec, _ := jobkind.ParseSpec(prompt)
	var epochs int
	a, err := jobkind.Execute(t.Context(), spec, data, ref(data).SHA256, 1, func(l string) error {
		if strings.HasPrefix(l, "epoch ") {
			epochs++
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
	if a.Text != b.Text || epochs != 5 {
		t.Fatalf("model files differ between 1 and 2 workers, or %d epochs streamed", epochs)
	}
	m, err := train.ReadModel(strings.NewReader(a.Text))
	if err != nil || m.Label != "label" {
		t.Fatalf("model file: %v", err)
	}
}

func TestBadJobsAreRefusedBeforePayment(t *testing.T) {
	data := table(50)
	good, _ := train.Params{}.WithDefaults()
	good.Workers = 0
	cases := []struct {
		name string
		spec jobkind.Spec
		data []byte
		want error
	}{
		{"unknown type", jobkind.Spec{Type: "rendering", Input: ref(data)}, data, jobkind.ErrUnknownType},
		{"training without parameters", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(data)}, data, jobkind.ErrBadSpec},
		{"missing label column", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(data), Train: &jobkind.TrainSpec{Label: "species", Params: good}}, data, train.ErrNoLabel},
		{"not a CSV", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref([]byte("a,b\n1\n")), Train: &jobkind.TrainSpec{Params: good}}, []byte("a,b\n1\n"), train.ErrInvalidCSV},
		{"size differs from the ref", jobkind.Spec{Type: jobkind.TypeTraining, Input: jobkind.FileRef{Bytes: 3}, Train: &jobkind.TrainSpec{Params: good}}, data, jobkind.ErrInput},
		{"unknown column to group by", jobkind.Spec{Type: jobkind.TypeDataProcessing, Input: ref(data), Data: &dataproc.Spec{GroupBy: []string{"zone"}}}, data, dataproc.ErrUnknownColumn},
		{"too much work", jobkind.Spec{Type: jobkind.TypeTraining, Input: ref(table(5000)), Train: &jobkind.TrainSpec{Label: "label", Params: func() train.Params { p := good; p.Epochs = 1000; return p }()}}, table(5000), jobkind.ErrTooMuchWork},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := jobkind.Prepare(c.spec, c.data); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := jobkind.ModelFor(jobkind.TypeTraining, "large-model"); !errors.Is(err, jobkind.ErrBadSpec) {
		t.Fatalf("large-model: %v", err)
	}
}

// A miner handed a different file than the job names, or a spec whose
// units lie, refuses to run it: nobody is paid for work the spec does not
// describe.
func TestExecuteRefusesAnotherFileOrFalseUnits(t *testing.T) {
	data := table(100)
	s, _, err := jobkind.Prepare(jobkind.Spec{Type: jobkind.TypeDataProcessing, Input: ref(data), Data: &dataproc.Spec{}}, data)
	if err != nil {
		t.Fatal(err)
	}
	other := table(101)
	if _, err := jobkind.Execute(t.Context(), s, other, ref(other).SHA256, 1, nil); !errors.Is(err, jobkind.ErrInput) {
		t.Fatalf("other file: %v", err)
	}
	s.Units = 100
	if _, err := jobkind.Execute(t.Context(), s, data, ref(data).SHA256, 1, nil); !errors.Is(err, jobkind.ErrBadSpec) {
		t.Fatalf("inflated units: %v", err)
	}
}

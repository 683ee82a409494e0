package train_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/train"
)

// xorCSV is a dataset no line separates: the label is whether x and y have
// the same sign. A deterministic pseudo-random walk spreads the points.
func xorCSV(n int) string {
	var sb strings.Builder
	sb.WriteString("x,y,noise,label\n")
	s := uint64(12345)
	next := func() float64 {
		s = s*6364136223846793005 + 1442695040888963407
		return float64(s>>11)/(1<<53)*2 - 1
	}
	for range n {
		x, y, z := next(), next(), next()
		label := "differ"
		if x*y > 0 {
			label = "same"
		}
		fmt.Fprintf(&sb, "%.4f,%.4f,%.4f,%s\n", x, y, z, label)
	}
	return sb.String()
}

func read(t testing.TB, csv string) *train.Dataset {
	t.Helper()
	d, err := train.ReadCSV(strings.NewReader(csv), "label", train.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSameDataSeedAndParamsGiveTheSameWeightsOnAnyWorkerCount(t *testing.T) {
	d := read(t, xorCSV(500))
	p := train.Params{Kind: train.KindMLP, Epochs: 5, BatchSize: 64, LearningRate: 0.2, Seed: 7}
	var hashes []string
	for _, workers := range []int{1, 1, 2, 3} {
		p.Workers = workers
		m, err := train.Train(t.Context(), d, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, m.WeightsSHA256)
	}
	for i, h := range hashes {
		if h != hashes[0] {
			t.Fatalf("run %d: weights hash %s, run 0: %s", i, h, hashes[0])
		}
	}
	p.Seed, p.Workers = 8, 1
	m, err := train.Train(t.Context(), d, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.WeightsSHA256 == hashes[0] {
		t.Fatal("another seed gave the same weights: the hash does not cover them")
	}
}

// The MLP learns XOR, which logistic regression cannot: proof that the
// hidden layer and its backpropagation work.
func TestMLPLearnsWhatLogisticRegressionCannot(t *testing.T) {
	d := read(t, xorCSV(1000))
	var epochs []train.Epoch
	mlp, err := train.Train(t.Context(), d, train.Params{Kind: train.KindMLP, Epochs: 60, BatchSize: 16, LearningRate: 0.3, Hidden: 16, Seed: 1},
		func(e train.Epoch) { epochs = append(epochs, e) })
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) != 60 || epochs[59].Epoch != 60 {
		t.Fatalf("%d epochs reported", len(epochs))
	}
	if epochs[59].HoldoutLoss >= epochs[0].HoldoutLoss/2 {
		t.Fatalf("held-out loss %.3f → %.3f: did not learn", epochs[0].HoldoutLoss, epochs[59].HoldoutLoss)
	}
	if mlp.Metrics.HoldoutAccuracy < 0.9 || mlp.Metrics.HoldoutRows != 200 || mlp.Metrics.SamplesSeen != 60*800 {
		t.Fatalf("mlp metrics %+v", mlp.Metrics)
	}
	lr, err := train.Train(t.Context(), d, train.Params{Kind: train.KindLogistic, Epochs: 60, BatchSize: 16, LearningRate: 0.3, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lr.Metrics.HoldoutAccuracy > 0.75 {
		t.Fatalf("logistic regression reached %.2f on XOR: the data is not what the test thinks", lr.Metrics.HoldoutAccuracy)
	}
}

func TestLogisticRegressionSeparatesALinearRule(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("a,b,label\n")
	for i := range 400 {
		a, b := float64(i%20), float64((i*7)%23)
		label := "low"
		if a+b > 20 {
			label = "high"
		}
		fmt.Fprintf(&sb, "%g,%g,%s\n", a, b, label)
	}
	m, err := train.Train(t.Context(), read(t, sb.String()), train.Params{Kind: train.KindLogistic, Epochs: 40, LearningRate: 0.5, Seed: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Metrics.HoldoutAccuracy < 0.95 {
		t.Fatalf("accuracy %.3f", m.Metrics.HoldoutAccuracy)
	}
	got := m.Predict([]float64{19, 20, 0, 1}, 2)
	if got[0].Class != "high" || got[1].Class != "low" {
		t.Fatalf("predictions %+v", got)
	}
}

func TestModelFileRoundTripsAndRefusesTampering(t *testing.T) {
	d := read(t, xorCSV(200))
	m, err := train.Train(t.Context(), d, train.Params{Epochs: 3, Seed: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		t.Fatal(err)
	}
	file := buf.String()
	back, err := train.ReadModel(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if back.Hash() != m.WeightsSHA256 {
		t.Fatal("weights changed through the file")
	}
	x, n, err := train.ReadFeatures(strings.NewReader(xorCSV(10)), back.Features, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.Predict(x, n), back.Predict(x, n)
	for i := range a {
		if a[i].Class != b[i].Class || a[i].Probs[0] != b[i].Probs[0] {
			t.Fatalf("row %d: %+v vs %+v", i, a[i], b[i])
		}
	}
	w := m.Layers[0].W[0]
	tampered := strings.Replace(file, fmt.Sprint(w), fmt.Sprint(w+1), 1)
	if _, err := train.ReadModel(strings.NewReader(tampered)); !errors.Is(err, train.ErrBadModel) {
		t.Fatalf("tampered model: %v", err)
	}
	if _, _, err := train.ReadFeatures(strings.NewReader("x,noise\n1,2\n"), back.Features, 0); !errors.Is(err, train.ErrColumns) {
		t.Fatalf("missing column: %v", err)
	}
}

func TestBadDatasetsAndParams(t *testing.T) {
	cases := []struct {
		name  string
		csv   string
		label string
		lim   train.Limits
		want  error
	}{
		{"ragged rows", "a,label\n1,x\n2,y,3\n", "label", train.Limits{}, train.ErrInvalidCSV},
		{"empty file", "", "", train.Limits{}, train.ErrInvalidCSV},
		{"missing label column", "a,b\n1,2\n", "species", train.Limits{}, train.ErrNoLabel},
		{"text feature", "a,label\n1,x\nfoo,y\n1,x\n2,y\n", "label", train.Limits{}, train.ErrNotNumeric},
		{"one class", "a,label\n1,x\n2,x\n3,x\n4,x\n", "label", train.Limits{}, train.ErrOneClass},
		{"too few rows", "a,label\n1,x\n2,y\n", "label", train.Limits{}, train.ErrTooFewRows},
		{"over the row limit", "a,label\n1,x\n2,y\n3,x\n4,y\n", "label", train.Limits{MaxRows: 3}, train.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := train.ReadCSV(strings.NewReader(c.csv), c.label, c.lim); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	d := read(t, xorCSV(50))
	for _, p := range []train.Params{{Kind: "svm"}, {Epochs: -1}, {LearningRate: 100}, {BatchSize: 1 << 20}, {Kind: train.KindLogistic, Hidden: 4}, {Holdout: 0.9}} {
		if _, err := train.Train(t.Context(), d, p, nil); !errors.Is(err, train.ErrInvalidParam) {
			t.Fatalf("params %+v: %v", p, err)
		}
	}
}

func TestExpIsWithinAnULPOfMathExp(t *testing.T) {
	for x := -700.0; x <= 0; x += 0.37 {
		got, want := train.Exp(x), math.Exp(x)
		if math.Abs(got-want) > 2*math.Abs(math.Nextafter(want, 0)-want) {
			t.Fatalf("exp(%g) = %g, math.Exp %g", x, got, want)
		}
	}
}

// BenchmarkMLPTrain measures training throughput (samples/s: rows × epochs
// per second) of the default MLP on a 4-feature table, one worker and two.
func BenchmarkMLPTrain(b *testing.B) {
	d := read(b, xorCSV(10000))
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			p := train.Params{Kind: train.KindMLP, Epochs: 1, BatchSize: 256, Hidden: 32, Seed: 1, Workers: workers}
			var samples int64
			for b.Loop() {
				m, err := train.Train(b.Context(), d, p, nil)
				if err != nil {
					b.Fatal(err)
				}
				samples += m.Metrics.SamplesSeen
			}
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

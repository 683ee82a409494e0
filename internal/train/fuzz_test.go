package train_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/train"
)

// FuzzReadCSV: any dataset reads or is refused, never panics; one that
// reads trains for an epoch.
func FuzzReadCSV(f *testing.F) {
	f.Add("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n9,1,x\n", "label")
	f.Add("a,label\n1e308,x\n-1e308,y\n0,x\n2,y\n", "")
	f.Add("a,label\nNaN,x\n", "label")
	f.Fuzz(func(t *testing.T, data, label string) {
		d, err := train.ReadCSV(strings.NewReader(data), label, train.Limits{MaxRows: 200, MaxFeatures: 8})
		if err != nil {
			return
		}
		if _, err := train.Train(t.Context(), d, train.Params{Epochs: 1, Hidden: 2}, nil); err != nil && !strings.Contains(err.Error(), "too few rows") {
			t.Fatal(err)
		}
	})
}

// FuzzReadModel: a model file reads only when its shapes and weights hash
// hold; a valid one round-trips.
func FuzzReadModel(f *testing.F) {
	d, _ := train.ReadCSV(strings.NewReader(xorCSV(40)), "label", train.Limits{})
	m, _ := train.Train(f.Context(), d, train.Params{Epochs: 1, Hidden: 2}, nil)
	var buf bytes.Buffer
	m.Write(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"aitbc-classifier/v1","features":["a"],"mean":[0],"std":[1],"classes":["x","y"],"layers":[{"in":1,"out":2,"w":[1],"b":[0,0]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := train.ReadModel(bytes.NewReader(b))
		if err != nil {
			return
		}
		x := make([]float64, len(m.Features))
		if p := m.Predict(x, 1); len(p) != 1 || len(p[0].Probs) != len(m.Classes) {
			t.Fatalf("prediction %+v", p)
		}
	})
}

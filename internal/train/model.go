package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
)

// Kinds of classifier.
const (
	KindLogistic = "logistic" // multinomial logistic regression
	KindMLP      = "mlp"      // one hidden ReLU layer, softmax output
)

// FileFormat names the model file's format.
const FileFormat = "aitbc-classifier/v1"

// shard is how many samples one gradient buffer sums, sequentially. It is
// fixed, never derived from the number of workers, so that the reduction
// order — shard sums added in shard order — is the same on every run.
const shard = 16

// Params are a training run's settings; with the data they decide the
// weights exactly.
type Params struct {
	Kind         string  `json:"kind"`
	Epochs       int     `json:"epochs"`
	BatchSize    int     `json:"batch_size"`
	LearningRate float64 `json:"learning_rate"`
	Hidden       int     `json:"hidden,omitempty"` // MLP hidden units
	Holdout      float64 `json:"holdout"`          // fraction of rows held out for evaluation
	Seed         uint64  `json:"seed"`
	// Workers is how many goroutines compute gradients; it does not change
	// the result.
	Workers int `json:"-"`
}

// WithDefaults fills zero fields and checks ranges.
func (p Params) WithDefaults() (Params, error) {
	if p.Kind == "" {
		p.Kind = KindMLP
	}
	if p.Epochs == 0 {
		p.Epochs = 20
	}
	if p.BatchSize == 0 {
		p.BatchSize = 32
	}
	if p.LearningRate == 0 {
		p.LearningRate = 0.1
	}
	if p.Hidden == 0 && p.Kind == KindMLP {
		p.Hidden = 16
	}
	if p.Holdout == 0 {
		p.Holdout = 0.2
	}
	if p.Workers <= 0 {
		p.Workers = 1
	}
	switch {
	case p.Kind != KindLogistic && p.Kind != KindMLP:
		return p, fmt.Errorf("%w: kind %q (logistic or mlp)", ErrInvalidParam, p.Kind)
	case p.Epochs < 1 || p.Epochs > 10_000:
		return p, fmt.Errorf("%w: epochs must be 1-10000", ErrInvalidParam)
	case p.BatchSize < 1 || p.BatchSize > 65_536:
		return p, fmt.Errorf("%w: batch size must be 1-65536", ErrInvalidParam)
	case !(p.LearningRate > 0 && p.LearningRate <= 10):
		return p, fmt.Errorf("%w: learning rate must be in (0, 10]", ErrInvalidParam)
	case p.Kind == KindMLP && (p.Hidden < 1 || p.Hidden > 1024):
		return p, fmt.Errorf("%w: hidden units must be 1-1024", ErrInvalidParam)
	case p.Kind == KindLogistic && p.Hidden != 0:
		return p, fmt.Errorf("%w: logistic regression has no hidden layer", ErrInvalidParam)
	case !(p.Holdout > 0 && p.Holdout <= 0.5):
		return p, fmt.Errorf("%w: holdout must be in (0, 0.5]", ErrInvalidParam)
	case p.Workers > 256:
		return p, fmt.Errorf("%w: workers must be 1-256", ErrInvalidParam)
	}
	return p, nil
}

// Layer is a dense layer: Out×In weights, row-major, and Out biases.
type Layer struct {
	In  int       `json:"in"`
	Out int       `json:"out"`
	W   []float64 `json:"w"`
	B   []float64 `json:"b"`
}

// Model is a trained classifier, as its file holds it.
type Model struct {
	Format   string    `json:"format"`
	Kind     string    `json:"kind"`
	Features []string  `json:"features"`
	Label    string    `json:"label"`
	Classes  []string  `json:"classes"`
	Mean     []float64 `json:"mean"` // feature standardisation, from the training rows
	Std      []float64 `json:"std"`
	Layers   []Layer   `json:"layers"`
	Params   Params    `json:"params"`
	// WeightsSHA256 is the hash of every weight's IEEE-754 bits (Hash):
	// two runs that agree on it trained the same model.
	WeightsSHA256 string  `json:"weights_sha256"`
	Metrics       Metrics `json:"metrics"`
}

// Metrics are the last epoch's figures and the work done.
type Metrics struct {
	Epochs          int     `json:"epochs"`
	TrainRows       int     `json:"train_rows"`
	HoldoutRows     int     `json:"holdout_rows"`
	TrainLoss       float64 `json:"train_loss"`
	HoldoutLoss     float64 `json:"holdout_loss"`
	HoldoutAccuracy float64 `json:"holdout_accuracy"`
	// SamplesSeen is epochs × training rows: the work a training job is
	// paid for (docs/JOBS.md).
	SamplesSeen int64 `json:"samples_seen"`
}

// Epoch is one epoch's progress, streamed while training.
type Epoch struct {
	Epoch           int     `json:"epoch"`
	Epochs          int     `json:"epochs"`
	TrainLoss       float64 `json:"train_loss"`
	HoldoutLoss     float64 `json:"holdout_loss"`
	HoldoutAccuracy float64 `json:"holdout_accuracy"`
}

// Hash returns the SHA-256 of the model's standardisation and weights, in
// order, as little-endian IEEE-754 bits.
func (m *Model) Hash() string {
	h := sha256.New()
	var b [8]byte
	put := func(xs []float64) {
		for _, x := range xs {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
			h.Write(b[:])
		}
	}
	put(m.Mean)
	put(m.Std)
	for _, l := range m.Layers {
		put(l.W)
		put(l.B)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Write writes the model file (JSON: Go prints float64s so that they read
// back to the same bits).
func (m *Model) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(m)
}

// ReadModel reads and checks a model file.
func ReadModel(r io.Reader) (*Model, error) {
	var m Model
	dec := json.NewDecoder(io.LimitReader(r, 256<<20))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadModel, err)
	}
	if m.Format != FileFormat {
		return nil, fmt.Errorf("%w: format %q, want %s", ErrBadModel, m.Format, FileFormat)
	}
	nf := len(m.Features)
	if nf == 0 || len(m.Mean) != nf || len(m.Std) != nf || len(m.Classes) < 2 || len(m.Layers) == 0 || len(m.Layers) > 2 {
		return nil, fmt.Errorf("%w: shapes do not match", ErrBadModel)
	}
	for j := range nf {
		if !(m.Std[j] > 0) || math.IsInf(m.Std[j], 0) || math.IsNaN(m.Mean[j]) || math.IsInf(m.Mean[j], 0) {
			return nil, fmt.Errorf("%w: feature %d's standardisation is not finite and positive", ErrBadModel, j)
		}
	}
	in := nf
	for i, l := range m.Layers {
		if l.In != in || l.Out < 1 || l.Out > 1<<16 || len(l.W) != l.In*l.Out || len(l.B) != l.Out {
			return nil, fmt.Errorf("%w: layer %d shapes do not match", ErrBadModel, i)
		}
		in = l.Out
	}
	if in != len(m.Classes) {
		return nil, fmt.Errorf("%w: output layer has %d units for %d classes", ErrBadModel, in, len(m.Classes))
	}
	if got := m.Hash(); got != m.WeightsSHA256 {
		return nil, fmt.Errorf("%w: weights hash %s, file says %s", ErrBadModel, got, m.WeightsSHA256)
	}
	return &m, nil
}

// Prediction is one row's class and the probability of each class.
type Prediction struct {
	Class string    `json:"class"`
	Probs []float64 `json:"probabilities"`
}

// Predict classifies n rows of x (row-major, the model's features in order).
func (m *Model) Predict(x []float64, n int) []Prediction {
	nf := len(m.Features)
	f := newNet(m.Layers)
	out := make([]Prediction, n)
	row := make([]float64, nf)
	for i := range n {
		for j := range nf {
			row[j] = (x[i*nf+j] - m.Mean[j]) / m.Std[j]
		}
		p := f.forward(m.Layers, row)
		best := 0
		for c := range p {
			if p[c] > p[best] {
				best = c
			}
		}
		out[i] = Prediction{Class: m.Classes[best], Probs: append([]float64(nil), p...)}
	}
	return out
}

// Train fits a classifier to d, calling onEpoch after each epoch (it may
// be nil). The result depends only on d and p, never on p.Workers.
func Train(ctx context.Context, d *Dataset, p Params, onEpoch func(Epoch)) (*Model, error) {
	p, err := p.WithDefaults()
	if err != nil {
		return nil, err
	}
	nf, n := len(d.Features), d.Rows()
	nt, err := TrainRows(n, p.Holdout)
	if err != nil {
		return nil, err
	}
	rng := splitmix(p.Seed)
	order := rng.perm(n)
	trainIdx, holdIdx := order[:nt], order[nt:]

	m := &Model{Format: FileFormat, Kind: p.Kind, Features: d.Features, Label: d.Label, Classes: d.Classes, Params: p}
	m.Params.Workers = 0
	m.Mean, m.Std = standardise(d, trainIdx)
	xs := make([]float64, len(d.X))
	for i := range n {
		for j := range nf {
			xs[i*nf+j] = (d.X[i*nf+j] - m.Mean[j]) / m.Std[j]
		}
	}
	nc := len(d.Classes)
	if p.Kind == KindMLP {
		m.Layers = []Layer{newLayer(nf, p.Hidden, &rng), newLayer(p.Hidden, nc, &rng)}
	} else {
		m.Layers = []Layer{newLayer(nf, nc, &rng)}
	}

	maxShards := (p.BatchSize + shard - 1) / shard
	grads := make([][]Layer, maxShards)
	nets := make([]*net, maxShards)
	losses := make([]float64, maxShards)
	for i := range grads {
		grads[i] = zeroLike(m.Layers)
		nets[i] = newNet(m.Layers)
	}
	var last Epoch
	for ep := 1; ep <= p.Epochs; ep++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rng.shuffle(trainIdx)
		var lossSum float64
		for b0 := 0; b0 < len(trainIdx); b0 += p.BatchSize {
			batch := trainIdx[b0:min(b0+p.BatchSize, len(trainIdx))]
			ns := (len(batch) + shard - 1) / shard
			run(p.Workers, ns, func(s int) {
				g := grads[s]
				for _, l := range g {
					clear(l.W)
					clear(l.B)
				}
				losses[s] = 0
				for _, i := range batch[s*shard : min((s+1)*shard, len(batch))] {
					losses[s] += nets[s].backward(m.Layers, g, xs[i*nf:(i+1)*nf], d.Y[i])
				}
			})
			// Reduce in shard order, then step: the fixed order that makes
			// the weights the same whatever the number of workers.
			scale := p.LearningRate / float64(len(batch))
			for s := range ns {
				lossSum += losses[s]
			}
			for li := range m.Layers {
				l := &m.Layers[li]
				for k := range l.W {
					var sum float64
					for s := range ns {
						sum += grads[s][li].W[k]
					}
					l.W[k] -= float64(scale * sum)
				}
				for k := range l.B {
					var sum float64
					for s := range ns {
						sum += grads[s][li].B[k]
					}
					l.B[k] -= float64(scale * sum)
				}
			}
		}
		hl, acc := evaluate(m.Layers, nets[0], xs, nf, d.Y, holdIdx)
		last = Epoch{Epoch: ep, Epochs: p.Epochs, TrainLoss: lossSum / float64(len(trainIdx)), HoldoutLoss: hl, HoldoutAccuracy: acc}
		if onEpoch != nil {
			onEpoch(last)
		}
	}
	m.WeightsSHA256 = m.Hash()
	m.Metrics = Metrics{Epochs: p.Epochs, TrainRows: len(trainIdx), HoldoutRows: len(holdIdx), TrainLoss: last.TrainLoss,
		HoldoutLoss: last.HoldoutLoss, HoldoutAccuracy: last.HoldoutAccuracy, SamplesSeen: int64(p.Epochs) * int64(len(trainIdx))}
	return m, nil
}

// TrainRows is how many of n rows are trained on when holdout of them are
// held out (at least one row is held out, at least two trained on).
func TrainRows(n int, holdout float64) (int, error) {
	nh := max(int(math.Round(float64(n)*holdout)), 1)
	if n-nh < 2 {
		return 0, fmt.Errorf("%w: %d rows leave nothing to train on after the holdout", ErrTooFewRows, n)
	}
	return n - nh, nil
}

// run calls f(0..n-1) on up to workers goroutines.
func run(workers, n int, f func(int)) {
	if workers <= 1 || n <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	wg.Wait()
}

func standardise(d *Dataset, rows []int) (mean, std []float64) {
	nf := len(d.Features)
	mean, std = make([]float64, nf), make([]float64, nf)
	for _, i := range rows {
		for j := range nf {
			mean[j] += d.X[i*nf+j]
		}
	}
	for j := range nf {
		mean[j] /= float64(len(rows))
	}
	for _, i := range rows {
		for j := range nf {
			dv := d.X[i*nf+j] - mean[j]
			std[j] += float64(dv * dv)
		}
	}
	for j := range nf {
		std[j] = math.Sqrt(std[j] / float64(len(rows)))
		if std[j] < 1e-12 { // a constant column: leave it centred
			std[j] = 1
		}
	}
	return mean, std
}

func newLayer(in, out int, rng *rand64) Layer {
	l := Layer{In: in, Out: out, W: make([]float64, in*out), B: make([]float64, out)}
	a := math.Sqrt(6 / float64(in+out)) // Glorot uniform
	for i := range l.W {
		l.W[i] = float64(a * (2*rng.float() - 1))
	}
	return l
}

func zeroLike(ls []Layer) []Layer {
	out := make([]Layer, len(ls))
	for i, l := range ls {
		out[i] = Layer{In: l.In, Out: l.Out, W: make([]float64, len(l.W)), B: make([]float64, len(l.B))}
	}
	return out
}

func evaluate(ls []Layer, f *net, xs []float64, nf int, y []int, rows []int) (loss, acc float64) {
	right := 0
	for _, i := range rows {
		p := f.forward(ls, xs[i*nf:(i+1)*nf])
		loss -= math.Log(max(p[y[i]], 1e-300))
		best := 0
		for c := range p {
			if p[c] > p[best] {
				best = c
			}
		}
		if best == y[i] {
			right++
		}
	}
	return loss / float64(len(rows)), float64(right) / float64(len(rows))
}

package lm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// Errors of fine-tuning; test them with errors.Is.
var (
	ErrParams  = errors.New("lm: invalid fine-tuning parameters")
	ErrDataset = errors.New("lm: dataset is not usable text")
	ErrTooLong = errors.New("lm: fine-tuning run over the limit")
)

// Limits on a run: a dataset is a book, not a corpus, and one run is what
// one job may pay for.
const (
	MaxDatasetBytes = 8 << 20 // a long novel is 3 MB
	MaxBatchSize    = 16
	MaxSeqLen       = 256
	MinSeqLen       = 8
	// MaxTokens is the most tokens one run may train on (steps × batch ×
	// sequence length): for tolstoy-1m, at the rate measured in
	// docs/PERFORMANCE.md (about 800 tokens per CPU-second), under an hour
	// on one core, within a job's time to live.
	MaxTokens = 2 << 20
	// maxEvalWindows bounds the held-out evaluation, so that a long book's
	// tail does not cost more than a few steps.
	maxEvalWindows = 16
)

// Params are a fine-tuning run's settings; with the base model and the
// text they decide the new weights exactly.
type Params struct {
	// Steps is the number of optimizer steps; when 0, Epochs passes over
	// the training tokens (rounded up to whole steps) decide it.
	Steps        int     `json:"steps,omitempty"`
	Epochs       int     `json:"epochs,omitempty"`
	BatchSize    int     `json:"batch_size"`
	SeqLen       int     `json:"seq_len"`
	LearningRate float64 `json:"learning_rate"`
	WeightDecay  float64 `json:"weight_decay"`
	Holdout      float64 `json:"holdout"` // share of the text, at its end, held out for evaluation
	Seed         uint64  `json:"seed"`
	// Workers is how many goroutines compute gradients; it does not change
	// the result.
	Workers int `json:"-"`
}

// WithDefaults fills zero fields and checks ranges against the model's
// context (0: no model yet).
func (p Params) WithDefaults(ctxLen int) (Params, error) {
	if p.Steps == 0 && p.Epochs == 0 {
		p.Epochs = 1
	}
	if p.BatchSize == 0 {
		p.BatchSize = 4
	}
	if p.SeqLen == 0 {
		p.SeqLen = 64
	}
	if p.LearningRate == 0 {
		p.LearningRate = 3e-4
	}
	if p.Holdout == 0 {
		p.Holdout = 0.1
	}
	if p.Seed == 0 {
		p.Seed = 1
	}
	maxSeq := MaxSeqLen
	if ctxLen > 0 {
		maxSeq = min(maxSeq, ctxLen)
	}
	switch {
	case p.Steps < 0 || p.Epochs < 0:
		return p, fmt.Errorf("%w: steps and epochs must not be negative", ErrParams)
	case p.Steps > 0 && p.Epochs > 0:
		return p, fmt.Errorf("%w: give steps or epochs, not both", ErrParams)
	case p.BatchSize < 1 || p.BatchSize > MaxBatchSize:
		return p, fmt.Errorf("%w: batch size %d outside 1..%d", ErrParams, p.BatchSize, MaxBatchSize)
	case p.SeqLen < MinSeqLen || p.SeqLen > maxSeq:
		return p, fmt.Errorf("%w: sequence length %d outside %d..%d", ErrParams, p.SeqLen, MinSeqLen, maxSeq)
	case !(p.LearningRate > 0 && p.LearningRate <= 0.1):
		return p, fmt.Errorf("%w: learning rate %v outside (0, 0.1]", ErrParams, p.LearningRate)
	case !(p.WeightDecay >= 0 && p.WeightDecay <= 1):
		return p, fmt.Errorf("%w: weight decay %v outside [0, 1]", ErrParams, p.WeightDecay)
	case !(p.Holdout >= 0.01 && p.Holdout <= 0.5):
		return p, fmt.Errorf("%w: holdout %v outside [0.01, 0.5]", ErrParams, p.Holdout)
	}
	return p, nil
}

// Plan is what a run will do, known before it starts (and before a job
// is paid for).
type Plan struct {
	Params        Params `json:"params"`
	Tokens        int    `json:"dataset_tokens"`
	TrainTokens   int    `json:"train_tokens"`
	HoldoutTokens int    `json:"holdout_tokens"`
	Steps         int    `json:"steps"`
	// StepTokens is the total number of tokens the run trains on (steps ×
	// batch size × sequence length).
	StepTokens int `json:"step_tokens"`
}

// CheckText refuses a dataset that is not text: empty (or only blanks),
// over MaxDatasetBytes, not UTF-8, or holding NUL bytes (a binary file
// that happens to decode).
func CheckText(text []byte) error {
	switch {
	case len(text) > MaxDatasetBytes:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrDataset, len(text), MaxDatasetBytes)
	case len(bytes.TrimSpace(text)) == 0:
		return fmt.Errorf("%w: empty", ErrDataset)
	case !utf8.Valid(text):
		return fmt.Errorf("%w: not UTF-8 text", ErrDataset)
	case bytes.IndexByte(text, 0) >= 0:
		return fmt.Errorf("%w: holds NUL bytes (a binary file?)", ErrDataset)
	}
	return nil
}

// Prepare checks the text and parameters against the model, tokenizes
// the text and plans the run. maxTokens (0: MaxTokens) bounds the tokens
// trained on.
func Prepare(base *engine.Model, text []byte, p Params, maxTokens int) (Plan, error) {
	pl, _, err := prepare(base, text, p, maxTokens)
	return pl, err
}

// split is the text's tokens divided for a run: the training stream, and
// the held-out windows of SeqLen+1 tokens each.
type split struct {
	train []int
	held  [][]int
}

// prepare is Prepare, also returning the tokens. The held-out share is
// taken as whole windows spread evenly through the text (not its last
// pages only), so that the held-out loss measures the book as a whole;
// the training stream is the rest, in order.
func prepare(base *engine.Model, text []byte, p Params, maxTokens int) (Plan, split, error) {
	var sp split
	if err := CheckText(text); err != nil {
		return Plan{}, sp, err
	}
	p, err := p.WithDefaults(base.Config().SeqLen)
	if err != nil {
		return Plan{}, sp, err
	}
	if _, err := base.Tensors(); err != nil {
		return Plan{}, sp, err
	}
	toks := base.Tokenizer().Encode(string(text), false)
	pl := Plan{Params: p, Tokens: len(toks)}
	win := p.SeqLen + 1
	blocks := len(toks) / win
	k := int(math.Ceil(float64(blocks) * p.Holdout))
	if blocks-k < 1 || k < 1 {
		return Plan{}, sp, fmt.Errorf("%w: %d tokens; a sequence length of %d needs at least %d (a longer text, or a shorter sequence length)",
			ErrDataset, len(toks), p.SeqLen, 2*win)
	}
	// held-out block j of k is block (2j+1)·blocks/(2k): evenly spread
	for b := 0; b*win < len(toks); b++ {
		end := min((b+1)*win, len(toks))
		if len(sp.held) < k && b == (2*len(sp.held)+1)*blocks/(2*k) {
			sp.held = append(sp.held, toks[b*win:end])
			continue
		}
		sp.train = append(sp.train, toks[b*win:end]...)
	}
	pl.TrainTokens, pl.HoldoutTokens = len(sp.train), len(sp.held)*win
	perStep := p.BatchSize * p.SeqLen
	pl.Steps = p.Steps
	if pl.Steps == 0 {
		pl.Steps = p.Epochs * ((pl.TrainTokens + perStep - 1) / perStep)
	}
	if maxTokens <= 0 || maxTokens > MaxTokens {
		maxTokens = MaxTokens
	}
	if pl.Steps > maxTokens/perStep {
		return Plan{}, sp, fmt.Errorf("%w: %d steps of %d tokens, at most %d tokens (fewer steps or epochs, a smaller batch)",
			ErrTooLong, pl.Steps, perStep, maxTokens)
	}
	pl.StepTokens = pl.Steps * perStep
	return pl, sp, nil
}

// Step is one optimizer step's progress.
type Step struct {
	Step  int     `json:"step"`
	Steps int     `json:"steps"`
	Loss  float64 `json:"loss"` // mean cross-entropy of the step's batch, in nats per token
}

// Metrics describe a finished run.
type Metrics struct {
	HoldoutLossBefore float64 `json:"holdout_loss_before"`
	HoldoutLossAfter  float64 `json:"holdout_loss_after"`
	FinalTrainLoss    float64 `json:"final_train_loss"`
	HoldoutWindows    int     `json:"holdout_windows"`
}

// Result is a fine-tuned model.
type Result struct {
	Plan          Plan    `json:"plan"`
	Metrics       Metrics `json:"metrics"`
	WeightsSHA256 string  `json:"weights_sha256"`
	// Model is the base model with the new weights, stored as float32;
	// its WriteGGUF writes the file aitbc model import reads.
	Model *engine.Model `json:"-"`
}

// Finetune trains base on text and returns the model named name. onStep
// (may be nil) is called after every step; an error it returns stops the
// run. maxTokens bounds the run as in Prepare.
func Finetune(ctx context.Context, base *engine.Model, name string, text []byte, p Params, maxTokens int, onStep func(Step) error) (*Result, error) {
	workers := p.Workers
	pl, sp, err := prepare(base, text, p, maxTokens)
	if err != nil {
		return nil, err
	}
	p = pl.Params
	t, err := base.Tensors()
	if err != nil {
		return nil, err
	}
	tr := newTrainer(t.Config, flatten(t, layoutOf(shapeOf(t.Config))), p.SeqLen, p.BatchSize, max(workers, 1))
	train, held := sp.train, sp.held
	res := &Result{Plan: pl}
	if res.Metrics.HoldoutLossBefore, res.Metrics.HoldoutWindows, err = tr.eval(ctx, held); err != nil {
		return nil, err
	}
	rng := splitmix(p.Seed)
	opt := newAdamW(len(tr.p), p.LearningRate, p.WeightDecay)
	starts := make([]int, p.BatchSize)
	for step := 1; step <= pl.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for b := range starts {
			starts[b] = rng.intn(len(train) - p.SeqLen)
		}
		loss := tr.step(train, starts)
		opt.update(tr.p, tr.grads[0], tr.workers)
		res.Metrics.FinalTrainLoss = loss
		if onStep != nil {
			if err := onStep(Step{Step: step, Steps: pl.Steps, Loss: loss}); err != nil {
				return nil, err
			}
		}
	}
	if res.Metrics.HoldoutLossAfter, _, err = tr.eval(ctx, held); err != nil {
		return nil, err
	}
	res.WeightsSHA256 = WeightsSHA256(tr.p)
	if res.Model, err = base.WithTensors(name, unflatten(t.Config, tr.p, tr.l)); err != nil {
		return nil, err
	}
	return res, nil
}

// trainer holds the parameters, one gradient buffer per sequence of a
// batch and one activation workspace per worker.
type trainer struct {
	s       shape
	l       layout
	p       []float32
	grads   [][]float32
	ws      []*acts
	rt      ropeTab
	seqLen  int
	workers int
}

func newTrainer(c engine.Config, p []float32, seqLen, batch, workers int) *trainer {
	s := shapeOf(c)
	tr := &trainer{s: s, l: layoutOf(s), p: p, rt: newRope(s, seqLen), seqLen: seqLen, workers: min(workers, max(batch, maxEvalWindows))}
	for range batch {
		tr.grads = append(tr.grads, make([]float32, len(p)))
	}
	for range tr.workers {
		tr.ws = append(tr.ws, newActs(s, seqLen))
	}
	return tr
}

// parallel runs f(i, workspace) for i in [0, n), worker w taking i = w,
// w+workers, …; which worker computes an i never changes what it writes.
func (tr *trainer) parallel(n int, f func(i int, a *acts)) {
	w := min(tr.workers, n)
	var wg sync.WaitGroup
	for k := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < n; i += w {
				f(i, tr.ws[k])
			}
		}()
	}
	wg.Wait()
}

// step computes the batch's mean loss and leaves its gradient in
// tr.grads[0]: each sequence's gradient in its own buffer, then the
// buffers added in sequence order, so the sum never depends on the
// number of workers.
func (tr *trainer) step(train []int, starts []int) float64 {
	T := tr.seqLen
	losses := make([]float64, len(starts))
	scale := 1 / float32(len(starts)*T)
	tr.parallel(len(starts), func(b int, a *acts) {
		g := tr.grads[b]
		clear(g)
		st := starts[b]
		in, tg := train[st:st+T], train[st+1:st+T+1]
		losses[b] = forward(tr.p, tr.l, a, tr.rt, in, tg)
		backward(tr.p, g, tr.l, a, tr.rt, in, tg, scale)
	})
	tr.reduce()
	var sum float64
	for _, l := range losses {
		sum += l
	}
	return sum / float64(len(starts)*T)
}

// reduce sets grads[0][i] = ((grads[0][i] + grads[1][i]) + grads[2][i]) + …
// in parallel over ranges of i.
func (tr *trainer) reduce() {
	if len(tr.grads) == 1 {
		return
	}
	const chunk = 1 << 14
	n := len(tr.p)
	tr.parallel((n+chunk-1)/chunk, func(c int, _ *acts) {
		lo, hi := c*chunk, min((c+1)*chunk, n)
		dst := tr.grads[0][lo:hi]
		for _, g := range tr.grads[1:] {
			for i, v := range g[lo:hi] {
				dst[i] += v
			}
		}
	})
}

// eval returns the mean cross-entropy on up to maxEvalWindows of the
// held-out windows, evenly spread, and how many it read.
func (tr *trainer) eval(ctx context.Context, held [][]int) (float64, int, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	T := tr.seqLen
	n := len(held)
	w := min(n, maxEvalWindows)
	losses := make([]float64, w)
	tr.parallel(w, func(i int, a *acts) {
		win := held[i*n/w]
		losses[i] = forward(tr.p, tr.l, a, tr.rt, win[:T], win[1:T+1])
	})
	var sum float64
	for _, l := range losses {
		sum += l
	}
	return sum / float64(w*T), w, nil
}

// adamW is the AdamW optimizer (Loshchilov and Hutter), as llm.c applies
// it: decoupled weight decay on every parameter.
type adamW struct {
	m, v       []float32
	lr, wd     float32
	b1, b2, ep float32
	t          int
}

func newAdamW(n int, lr, wd float64) *adamW {
	return &adamW{m: make([]float32, n), v: make([]float32, n), lr: float32(lr), wd: float32(wd), b1: 0.9, b2: 0.999, ep: 1e-8}
}

// update takes one step; elementwise, so splitting it between workers
// changes nothing.
func (o *adamW) update(p, g []float32, workers int) {
	o.t++
	c1 := float32(1 - math.Pow(float64(o.b1), float64(o.t)))
	c2 := float32(1 - math.Pow(float64(o.b2), float64(o.t)))
	const chunk = 1 << 14
	n := len(p)
	chunks := (n + chunk - 1) / chunk
	var wg sync.WaitGroup
	w := max(1, min(workers, chunks))
	for k := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := k; c < chunks; c += w {
				for i := c * chunk; i < min((c+1)*chunk, n); i++ {
					gi := g[i]
					m := float32(o.b1*o.m[i]) + float32((1-o.b1)*gi)
					v := float32(o.b2*o.v[i]) + float32(float32((1-o.b2)*gi)*gi)
					o.m[i], o.v[i] = m, v
					mh, vh := m/c1, v/c2
					upd := mh/(float32(math.Sqrt(float64(vh)))+o.ep) + float32(o.wd*p[i])
					p[i] -= float32(o.lr * upd)
				}
			}
		}()
	}
	wg.Wait()
}

// rand64 is SplitMix64, whose sequence is fixed by its seed forever
// (math/rand's may change between Go releases).
type rand64 struct{ s uint64 }

func splitmix(seed uint64) rand64 { return rand64{seed} }

func (r *rand64) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn is uniform in [0, n) (Lemire's multiply, without the rare retry:
// deterministic, and biased below 2^-40 for the sizes used here).
func (r *rand64) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// WriteGGUF writes the fine-tuned model as a GGUF file of float32
// tensors, the file aitbc model import reads.
func (r *Result) WriteGGUF(w io.Writer) error { return r.Model.WriteGGUF(w, gguf.F32) }

package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/jobinput"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/train"
	"github.com/aitbc/aitbc/internal/train/lm"
)

// Limits of `ai-submit --input-data`: the coordinator's defaults, checked
// here too so that a file that cannot go is refused before any escrow.
const (
	maxInputFileBytes = 64 << 20 // coordinator.Files.MaxFileBytes
	maxPromptBytes    = 64 << 10 // coordinator.Config.MaxPromptBytes
)

// tokenCounter counts tokens with an engine model's tokenizer, BOS
// included, as the built-in backend counts a prompt.
type tokenCounter struct{ m *engine.Model }

func (c tokenCounter) Count(s string) int { return len(c.m.Tokenizer().Encode(s, true)) }

// inputBudget is what a prompt with input data may take for model: its
// context when this machine knows the model (its tokenizer counts as the
// miner's will), else the coordinator's prompt limit in bytes.
func inputBudget(home, model string, maxTokens int) (jobinput.Budget, func()) {
	b := jobinput.Budget{MaxBytes: maxPromptBytes, MaxFileBytes: maxInputFileBytes}
	m, err := engine.Resolve(home, model)
	if err != nil {
		return b, func() {}
	}
	ctxLen := m.Config().SeqLen
	b.Counter, b.ContextTokens = tokenCounter{m}, ctxLen
	// Keep room for the answer: the tokens asked for, but at most a
	// quarter of the context, so that a small model still sees some of
	// the data (the built-in backend answers in what room is left).
	b.ReserveTokens = min(maxTokens, ctxLen/4)
	return b, func() { _ = m.Close() }
}

// inputPrompt reads the file at path, stores it with the coordinator
// (content-addressed: a second submit of the same file sends nothing),
// and returns the prompt with the file's text in it.
func inputPrompt(ctx context.Context, g *Globals, c *coordinator.Client, path, prompt, model string, maxTokens int) (jobinput.Prompt, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return jobinput.Prompt{}, usagef("--input-data: %v", err)
	}
	if fi.Size() > maxInputFileBytes {
		return jobinput.Prompt{}, usagef("--input-data: %s is %d bytes, the limit is %d", path, fi.Size(), maxInputFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return jobinput.Prompt{}, usagef("--input-data: %v", err)
	}
	budget, done := inputBudget(g.Home, model, maxTokens)
	defer done()
	// Check the text before uploading: a binary file goes nowhere.
	if _, err := jobinput.Build(prompt, data, fi.Name(), "", budget); err != nil {
		return jobinput.Prompt{}, usagef("--input-data: %v", err)
	}
	info, err := c.UploadFile(ctx, path, 0)
	if err != nil {
		return jobinput.Prompt{}, fmt.Errorf("--input-data: upload %s: %w", path, err)
	}
	p, err := jobinput.Build(prompt, data, fi.Name(), info.Hash, budget)
	if err != nil {
		return jobinput.Prompt{}, usagef("--input-data: %v", err)
	}
	return p, nil
}

// kindFlags are ai-submit's flags for data-processing and training jobs.
type kindFlags struct {
	dataset, label, classifier, report string
	epochs, batchSize, hidden          int
	steps, seqLen                      int // fine-tuning
	learningRate, holdout              float64
	seed                               uint64
	filters, groupBy, aggs, columns    []string
	gpus                               int
	memoryMB                           uint64
	gpuModel                           string
	fs                                 *pflag.FlagSet // to tell the flags given from their defaults
}

func (k *kindFlags) register(f *pflag.FlagSet) {
	k.fs = f
	f.IntVar(&k.steps, "steps", 0, "fine-tuning (--type training --model tolstoy-1m): optimizer steps, instead of --epochs")
	f.IntVar(&k.seqLen, "seq-len", 0, "fine-tuning: tokens per sequence (default 64)")
	f.StringVar(&k.dataset, "dataset", "", "training or data-processing: the CSV (or JSON) file, stored with the coordinator by its SHA-256")
	f.StringVar(&k.label, "label", "", "training: the label column (default: the last)")
	f.StringVar(&k.classifier, "classifier", train.KindMLP, "training: mlp or logistic")
	f.IntVar(&k.epochs, "epochs", 20, "training: passes over the training rows")
	f.IntVar(&k.batchSize, "batch-size", 32, "training: rows per gradient step")
	f.Float64Var(&k.learningRate, "learning-rate", 0.1, "training: step size")
	f.IntVar(&k.hidden, "hidden", 0, "training: hidden units of the MLP (default 16)")
	f.Float64Var(&k.holdout, "holdout", 0.2, "training: share of rows held out for evaluation")
	f.Uint64Var(&k.seed, "train-seed", 1, "training: seed of the split, shuffles and initial weights")
	f.StringArrayVar(&k.filters, "filter", nil, "data-processing: keep rows where COLUMN OP VALUE; repeatable")
	f.StringSliceVar(&k.groupBy, "group-by", nil, "data-processing: columns to group by")
	f.StringArrayVar(&k.aggs, "agg", nil, "data-processing: FN:COLUMN (sum, mean, min, max) or count; repeatable")
	f.StringSliceVar(&k.columns, "columns", nil, "data-processing: columns to describe (default: all)")
	f.StringVar(&k.report, "report", "json", "data-processing: report format: json, csv or markdown")
	f.IntVar(&k.gpus, "gpu-allocated", 0, "GPUs the job needs on its miner (matched against the miners' detected hardware)")
	f.Uint64Var(&k.memoryMB, "memory", 0, "MB of GPU memory the job needs (with --gpu-allocated)")
	f.StringVar(&k.gpuModel, "gpu-model", "", "GPU model the job needs, e.g. rtx4090 (with --gpu-allocated)")
}

// needs is the hardware the flags ask for, nil for none.
func (k *kindFlags) needs() (*sched.Resources, error) {
	if k.gpus == 0 && k.memoryMB == 0 && k.gpuModel == "" {
		return nil, nil
	}
	r := &sched.Resources{GPUs: k.gpus, MemoryMB: k.memoryMB, GPUModel: k.gpuModel}
	if err := r.Validate(); err != nil {
		return nil, usagef("--gpu-allocated/--memory/--gpu-model: %v", strings.TrimPrefix(err.Error(), "sched: "))
	}
	return r, nil
}

// minerLister lists the miners connected to the coordinator.
type minerLister interface {
	Miners(ctx context.Context) ([]coordinator.MinerView, error)
}

// checkTextNeeds refuses, before any money is locked, an inference job
// whose hardware no connected miner serving its model has, naming the
// requirement and what the miners have (the coordinator refuses it too,
// and never places it elsewhere).
func checkTextNeeds(ctx context.Context, c minerLister, model string, need *sched.Resources) error {
	miners, err := c.Miners(ctx)
	if err != nil {
		return err
	}
	var serving []*sched.Miner
	for _, m := range miners {
		if !slices.Contains(m.Models, model) {
			continue
		}
		sm := &sched.Miner{GPU: m.GPU, GPUMemoryMB: m.GPUMemoryMB}
		if need.Lacks(sm) == "" {
			return nil
		}
		serving = append(serving, sm)
	}
	if len(serving) == 0 {
		return fmt.Errorf("no miner connected to the coordinator serves %s", model)
	}
	return fmt.Errorf("no miner serving %s has the hardware the job needs: %s", model, need.Explain(serving))
}

// kindJob is a data-processing or training job ready to pay for.
type kindJob struct {
	Model  string       `json:"model"`
	Prompt string       `json:"-"`
	Spec   jobkind.Spec `json:"spec"`
}

// spec builds the job's spec from the flags, reading the file to check
// it: every refusal here comes before any money is locked.
func (k *kindFlags) spec(typ, kmodel, path string) (jobkind.Spec, []byte, error) {
	if path == "" {
		return jobkind.Spec{}, nil, usagef("--type %s needs --dataset FILE (or --input-data FILE)", typ)
	}
	f, err := openLimited(path)
	if err != nil {
		return jobkind.Spec{}, nil, err
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return jobkind.Spec{}, nil, err
	}
	sum := sha256.Sum256(data)
	s := jobkind.Spec{Type: typ, Input: jobkind.FileRef{SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data)), Name: filepath.Base(path)}}
	switch {
	case jobkind.IsFinetuneModel(kmodel):
		fs, err := k.finetune(strings.TrimPrefix(kmodel, jobkind.FinetuneModelPrefix))
		if err != nil {
			return s, nil, err
		}
		s.Finetune = fs
	case typ == jobkind.TypeTraining:
		p, err := train.Params{Kind: k.classifier, Epochs: k.epochs, BatchSize: k.batchSize, LearningRate: k.learningRate,
			Hidden: k.hidden, Holdout: k.holdout, Seed: k.seed}.WithDefaults()
		if err != nil {
			return s, nil, usagef("%v", err)
		}
		p.Workers = 0 // the miner's business: it does not change the weights
		s.Train = &jobkind.TrainSpec{Label: k.label, Params: p}
	default:
		ds := &dataproc.Spec{GroupBy: k.groupBy, Columns: k.columns, Output: k.report}
		for _, v := range k.filters {
			flt, err := dataproc.ParseFilter(v)
			if err != nil {
				return s, nil, usagef("--filter: %v", err)
			}
			ds.Filters = append(ds.Filters, flt)
		}
		for _, v := range k.aggs {
			a, err := dataproc.ParseAggregate(v)
			if err != nil {
				return s, nil, usagef("--agg: %v", err)
			}
			ds.Aggregates = append(ds.Aggregates, a)
		}
		s.Data = ds
	}
	needs, err := k.needs()
	if err != nil {
		return s, nil, err
	}
	if needs != nil {
		r := jobkind.Resources(*needs)
		s.Resources = &r
	}
	return s, data, nil
}

// prepareKindJob checks the file and parameters, checks that some miner
// runs the job within pay, and stores the file with the coordinator.
func prepareKindJob(ctx context.Context, g *Globals, c *coordinator.Client, typ, model, path string, k *kindFlags, pay coin.Amount) (*kindJob, error) {
	kmodel, err := jobkind.ModelFor(typ, model)
	if err != nil {
		return nil, usagef("%v", err)
	}
	s, data, err := k.spec(typ, kmodel, path)
	if err != nil {
		return nil, err
	}
	s, prompt, err := jobkind.Prepare(s, data)
	if err != nil {
		return nil, usagef("%s: %v", path, err)
	}
	miners, err := c.Miners(ctx)
	if err != nil {
		return nil, err
	}
	p, err := jobs.QueryParams(ctx, g.node())
	if err != nil {
		return nil, err
	}
	var cheapest coin.Amount
	found := false
	var serving []*sched.Miner
	for _, m := range miners {
		if !slices.Contains(m.Models, kmodel) {
			continue
		}
		sm := &sched.Miner{GPU: m.GPU, GPUMemoryMB: m.GPUMemoryMB}
		serving = append(serving, sm)
		if s.Resources != nil {
			if need := sched.Resources(*s.Resources); need.Lacks(sm) != "" {
				continue // the coordinator would not place it there either
			}
		}
		if cost := sched.Cost(p, m.PricePer1k, uint64(s.Units)); !found || cost < cheapest {
			cheapest, found = cost, true
		}
	}
	switch {
	case !found && len(serving) > 0:
		need := sched.Resources(*s.Resources)
		return nil, fmt.Errorf("no miner running %s jobs has the hardware the job needs: %s", typ, need.Explain(serving))
	case !found:
		return nil, fmt.Errorf("no miner connected to the coordinator runs %s jobs (miners offer them with job kinds enabled; docs/JOBS.md)", typ)
	case pay < cheapest:
		return nil, usagef("--payment %s is too low: %d work units cost at least %s AITBC with the fee", pay, s.Units, cheapest)
	}
	if _, err := c.UploadFile(ctx, path, 0); err != nil {
		return nil, fmt.Errorf("upload %s: %w", path, err)
	}
	return &kindJob{Model: kmodel, Prompt: prompt, Spec: s}, nil
}

// prepareImageJob checks an image job (size, prompt, model) and that some
// connected miner generates images with that model within pay: no image
// model ships with AITBC, so on a devnet this says there is none before
// any money is locked.
func prepareImageJob(ctx context.Context, g *Globals, c *coordinator.Client, model, prompt, size string, k *kindFlags, pay coin.Amount) (*kindJob, error) {
	// The job's own faults first, whoever might run it.
	check := model
	if check == "" {
		check = "any"
	}
	if _, _, err := jobkind.PrepareImage(check, prompt, size); err != nil {
		return nil, usagef("%v", err)
	}
	miners, err := c.Miners(ctx)
	if err != nil {
		return nil, err
	}
	var offered []string
	for _, m := range miners {
		for _, mm := range m.Models {
			if jobkind.IsImageModel(mm) && !slices.Contains(offered, mm) {
				offered = append(offered, mm)
			}
		}
	}
	if len(offered) == 0 {
		return nil, fmt.Errorf("no miner connected to the coordinator generates images: an image job needs a miner whose images backend (an OpenAI-compatible images server, aitbc miner start --images-endpoint URL) serves an image model; AITBC ships none, so a devnet has none (docs/JOBS.md, \"Images\")")
	}
	if model == "" {
		if len(offered) > 1 {
			return nil, usagef("--model: the miners offer %s", strings.Join(offered, ", "))
		}
		model = offered[0]
	}
	s, text, err := jobkind.PrepareImage(model, prompt, size)
	if err != nil {
		return nil, usagef("%v", err)
	}
	needs, err := k.needs()
	if err != nil {
		return nil, err
	}
	if needs != nil {
		r := jobkind.Resources(*needs)
		s.Resources = &r
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	kmodel := jobkind.ImageModel(s.Image.Model)
	p, err := jobs.QueryParams(ctx, g.node())
	if err != nil {
		return nil, err
	}
	var cheapest coin.Amount
	found := false
	var serving []*sched.Miner
	for _, m := range miners {
		if !slices.Contains(m.Models, kmodel) {
			continue
		}
		sm := &sched.Miner{GPU: m.GPU, GPUMemoryMB: m.GPUMemoryMB}
		serving = append(serving, sm)
		if needs != nil && needs.Lacks(sm) != "" {
			continue
		}
		if cost := sched.Cost(p, m.PricePer1k, uint64(s.Units)); !found || cost < cheapest {
			cheapest, found = cost, true
		}
	}
	switch {
	case !found && len(serving) > 0:
		return nil, fmt.Errorf("no miner generating %s images has the hardware the job needs: %s", s.Image.Model, needs.Explain(serving))
	case !found:
		return nil, fmt.Errorf("no connected miner serves the image model %s (they offer %s)", s.Image.Model, strings.Join(offered, ", "))
	case pay < cheapest:
		return nil, usagef("--payment %s is too low: a %s image is %d work units, at least %s AITBC with the fee", pay, size, s.Units, cheapest)
	}
	return &kindJob{Model: kmodel, Prompt: text, Spec: s}, nil
}

// finetune is the fine-tuning spec of the flags. The classifier's
// defaults (20 epochs, batches of 32, a step of 0.1) would be wrong for a
// language model, so only the flags given count; the rest are
// lm.Params' defaults.
func (k *kindFlags) finetune(base string) (*jobkind.FinetuneSpec, error) {
	var p lm.Params
	given := func(name string) bool { return k.fs != nil && k.fs.Changed(name) }
	if given("epochs") {
		p.Epochs = k.epochs
	}
	if given("batch-size") {
		p.BatchSize = k.batchSize
	}
	if given("learning-rate") {
		p.LearningRate = k.learningRate
	}
	if given("holdout") {
		p.Holdout = k.holdout
	}
	if given("train-seed") {
		p.Seed = k.seed
	}
	p.Steps, p.SeqLen = k.steps, k.seqLen
	if given("label") || given("hidden") || given("classifier") {
		return nil, usagef("--label, --hidden and --classifier are for --model %s; fine-tuning takes --steps or --epochs, --batch-size, --seq-len, --learning-rate, --holdout, --train-seed", jobkind.ModelCustomClassifier)
	}
	p, err := p.WithDefaults(0)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return &jobkind.FinetuneSpec{Base: base, Params: p}, nil
}

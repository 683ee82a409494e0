package jobkind

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/train/lm"
)

// Fine-tuning a language model as a job: `ai-submit --type training
// --model tolstoy-1m --dataset book.txt`. The job's model is
// FinetuneModelPrefix and the base model ("finetune:tolstoy-1m"), its
// prompt the Spec with Finetune set, its input the text, and its result a
// ModelResult naming the GGUF file the miner stored with the coordinator
// (by SHA-256, so the receipt's result hash commits to the weights).
//
// The base models are those embedded in the binary: the same bytes on
// every machine, so that anyone can re-run a job and compare the weights
// hash. An imported model may differ between two machines of one name.

// FinetuneModelPrefix marks a job's model as fine-tuning a base model.
const FinetuneModelPrefix = "finetune:"

// FinetuneBases are the base models a fine-tuning job may name.
var FinetuneBases = []string{engine.DefaultModel}

// tokensPerUnit: one work unit per 64 tokens trained on (steps × batch
// size × sequence length), so MaxUnits is lm.MaxTokens.
const tokensPerUnit = 64

// MaxModelBytes bounds a fine-tuned model file a miner stores (a float32
// GGUF of a base model, about 4 bytes per parameter).
const MaxModelBytes = 64 << 20

// FinetuneSpec is a fine-tuning job's parameters.
type FinetuneSpec struct {
	Base   string    `json:"base"`
	Params lm.Params `json:"params"`
}

// FinetuneModel is the job model of fine-tuning base.
func FinetuneModel(base string) string { return FinetuneModelPrefix + base }

// IsFinetuneModel reports whether a job's model fine-tunes a base model.
func IsFinetuneModel(model string) bool {
	return strings.HasPrefix(model, FinetuneModelPrefix) && slices.Contains(FinetuneBases, strings.TrimPrefix(model, FinetuneModelPrefix))
}

// KindModel is the job model that runs spec s ("" for a spec of no kind).
func (s Spec) KindModel() string {
	switch {
	case s.Type == TypeDataProcessing:
		return ModelDataProcessing
	case s.Type == TypeTraining && s.Finetune != nil:
		return FinetuneModel(s.Finetune.Base)
	case s.Type == TypeTraining:
		return ModelCustomClassifier
	}
	return ""
}

// loadBase loads a base model a job may name.
func loadBase(name string) (*engine.Model, error) {
	if !slices.Contains(FinetuneBases, name) {
		return nil, fmt.Errorf("%w: fine-tuning starts from %s (the models embedded in every binary, so a job can be re-run anywhere); %q is not one", ErrBadSpec, strings.Join(FinetuneBases, ", "), name)
	}
	return engine.LoadDefault()
}

// finetuneWork plans a fine-tuning job: the text and parameters are
// checked against the base model, and the work is the tokens trained on.
func finetuneWork(s Spec, data []byte) (int, error) {
	f := s.Finetune
	if f == nil || s.Train != nil || s.Data != nil {
		return 0, fmt.Errorf("%w: a fine-tuning job needs its base model and parameters only", ErrBadSpec)
	}
	base, err := loadBase(f.Base)
	if err != nil {
		return 0, err
	}
	p, err := f.Params.WithDefaults(base.Config().SeqLen)
	if err != nil {
		return 0, err
	}
	p.Workers = f.Params.Workers
	if p != f.Params {
		return 0, fmt.Errorf("%w: fine-tuning parameters must be given whole (lm.Params.WithDefaults)", ErrBadSpec)
	}
	pl, err := lm.Prepare(base, data, p, MaxUnits*tokensPerUnit)
	if err != nil {
		if errors.Is(err, lm.ErrTooLong) {
			return 0, fmt.Errorf("%w: %v", ErrTooMuchWork, err)
		}
		return 0, err
	}
	return ceilDiv(pl.StepTokens, tokensPerUnit), nil
}

// ModelResult is a fine-tuning job's result text.
type ModelResult struct {
	Type   string `json:"type"` // "finetune"
	Base   string `json:"base"`
	Format string `json:"format"` // "gguf"
	// SHA256 and Bytes are the GGUF file's, stored with the coordinator
	// for the job's customer.
	SHA256        string     `json:"sha256"`
	Bytes         int        `json:"bytes"`
	WeightsSHA256 string     `json:"weights_sha256"`
	Plan          lm.Plan    `json:"plan"`
	Metrics       lm.Metrics `json:"metrics"`
}

// TypeFinetune is ModelResult's type.
const TypeFinetune = "finetune"

// ParseModelResult reads a fine-tuning job's result.
func ParseModelResult(text string) (ModelResult, error) {
	var r ModelResult
	if err := json.Unmarshal([]byte(text), &r); err != nil || r.Type != TypeFinetune || len(r.SHA256) != 64 {
		return r, fmt.Errorf("%w: not a fine-tuning result", ErrBadSpec)
	}
	return r, nil
}

// CheckFile checks a model file against the hash and size the result
// names.
func (r ModelResult) CheckFile(b []byte) error {
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != r.SHA256 || len(b) != r.Bytes {
		return fmt.Errorf("%w: the model file's sha256 is %x (%d bytes), the result says %s (%d bytes)", ErrInput, sum, len(b), r.SHA256, r.Bytes)
	}
	return nil
}

// finetune runs a fine-tuning job (work() has checked it): the result's
// text is the ModelResult, its File the GGUF.
func finetune(ctx context.Context, s Spec, data []byte, workers int, progress Progress) (Result, error) {
	base, err := loadBase(s.Finetune.Base)
	if err != nil {
		return Result{}, err
	}
	p := s.Finetune.Params
	p.Workers = workers
	res, err := lm.Finetune(ctx, base, s.Finetune.Base+"-finetuned", data, p, MaxUnits*tokensPerUnit, func(st lm.Step) error {
		if progress == nil {
			return nil
		}
		return progress(fmt.Sprintf("step %d/%d loss=%.4f\n", st.Step, st.Steps, st.Loss))
	})
	if err != nil {
		return Result{}, err
	}
	var buf bytes.Buffer
	if err := res.WriteGGUF(&buf); err != nil {
		return Result{}, err
	}
	if buf.Len() > MaxModelBytes {
		return Result{}, fmt.Errorf("%w: the model file is %d bytes, the limit is %d", ErrTooMuchWork, buf.Len(), MaxModelBytes)
	}
	if progress != nil {
		m := res.Metrics
		if err := progress(fmt.Sprintf("held-out loss %.4f -> %.4f\n", m.HoldoutLossBefore, m.HoldoutLossAfter)); err != nil {
			return Result{}, err
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	b, err := json.Marshal(ModelResult{Type: TypeFinetune, Base: s.Finetune.Base, Format: "gguf", SHA256: hex.EncodeToString(sum[:]),
		Bytes: buf.Len(), WeightsSHA256: res.WeightsSHA256, Plan: res.Plan, Metrics: res.Metrics})
	if err != nil {
		return Result{}, err
	}
	return Result{Text: string(b), File: buf.Bytes()}, nil
}

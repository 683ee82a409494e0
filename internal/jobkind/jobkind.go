// Package jobkind describes the jobs that are not text generation — data
// processing and classifier training — so that they travel the same path
// as inference jobs: the job's model names the kind ("data-processing",
// "custom-classifier"), its prompt is the canonical JSON Spec (the input
// file's SHA-256 and size, the parameters, the declared work units), and
// its result text is the output file (the report, the model file). The
// prompt hash on chain and in the receipt therefore commits to the input
// and the parameters, the result hash to the output, and the receipt's
// tokens_out are the work units — computed from the input and parameters
// alone, so that a customer knows the price before paying and anyone can
// re-run the job and compare (docs/JOBS.md).
//
// Imported by the CLI (Prepare, before any money is locked) and the
// miner (Execute).
package jobkind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/train"
)

// Types of job and the model names their jobs carry.
const (
	TypeDataProcessing = "data-processing"
	TypeTraining       = "training"

	ModelDataProcessing   = "data-processing"
	ModelCustomClassifier = "custom-classifier"
)

// Models are the model names of the kinds, as a miner that runs them
// offers them.
var Models = []string{ModelDataProcessing, ModelCustomClassifier, FinetuneModel(engine.DefaultModel)}

// MaxUnits is the most work units one job may declare: the chain's limit
// on a job's tokens.
const MaxUnits = 32768

// Work unit sizes: one unit per cellsPerUnit cells read, or per
// samplesPerUnit training samples seen (rows × epochs).
const (
	cellsPerUnit   = 1000
	samplesPerUnit = 100
)

// Errors of the kinds; test them with errors.Is.
var (
	ErrUnknownType = errors.New("jobkind: unknown job type")
	ErrBadSpec     = errors.New("jobkind: invalid job")
	ErrTooMuchWork = errors.New("jobkind: job over the work limit")
	ErrInput       = errors.New("jobkind: input file does not match the job")
)

// FileRef names a file by its hash.
type FileRef struct {
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	Name   string `json:"name,omitempty"`
}

// TrainSpec is a training job's parameters.
type TrainSpec struct {
	Label  string       `json:"label,omitempty"`
	Params train.Params `json:"params"`
}

// Resources is the hardware a job requires of its miner (the scheduler's
// sched.Resources, field for field).
type Resources struct {
	GPUs     int    `json:"gpus,omitempty"`
	MemoryMB uint64 `json:"memory_mb,omitempty"` // GPU memory
	GPUModel string `json:"gpu_model,omitempty"`
}

// Spec is a job of a kind, as its prompt carries it.
type Spec struct {
	Type  string         `json:"type"`
	Input FileRef        `json:"input"`
	Data  *dataproc.Spec `json:"data,omitempty"`
	Train *TrainSpec     `json:"train,omitempty"`
	// Finetune, in a training job instead of Train, fine-tunes a language
	// model on the input text (finetune.go).
	Finetune  *FinetuneSpec `json:"finetune,omitempty"`
	Image     *ImageSpec    `json:"image,omitempty"`
	Resources *Resources    `json:"resources,omitempty"`
	// Units is the work the job declares: its max tokens, and exactly the
	// tokens_out of its receipt.
	Units int `json:"units"`
}

// ModelFor returns the model name of a job type and model the customer
// asked for.
func ModelFor(typ, model string) (string, error) {
	switch typ {
	case TypeDataProcessing:
		return ModelDataProcessing, nil
	case TypeTraining:
		if slices.Contains(FinetuneBases, model) {
			return FinetuneModel(model), nil
		}
		if model != "" && model != ModelCustomClassifier {
			return "", fmt.Errorf("%w: training runs --model %s (a logistic regression or small MLP on a CSV table) or fine-tunes --model %s (on a text); %q is not offered",
				ErrBadSpec, ModelCustomClassifier, strings.Join(FinetuneBases, ", "), model)
		}
		return ModelCustomClassifier, nil
	case TypeImage:
		if model == "" {
			return "", fmt.Errorf("%w: image jobs name the image model: --model (e.g. sd-turbo)", ErrBadSpec)
		}
		return ImageModel(strings.TrimPrefix(model, ImageModelPrefix)), nil
	}
	return "", fmt.Errorf("%w: %q (inference, training, data-processing, image)", ErrUnknownType, typ)
}

// IsKindModel reports whether a job's model names a kind, not a language
// model.
func IsKindModel(model string) bool {
	return model == ModelDataProcessing || model == ModelCustomClassifier || IsFinetuneModel(model)
}

// Prepare checks the input against the spec — a table that reads, the
// columns and parameters it names — fills the work units, and returns the
// prompt (canonical JSON) to submit. Nothing about the job is left to be
// found out by the miner after money is locked.
func Prepare(s Spec, data []byte) (Spec, string, error) {
	if s.Input.Bytes != int64(len(data)) {
		return s, "", fmt.Errorf("%w: %d bytes, spec says %d", ErrInput, len(data), s.Input.Bytes)
	}
	units, err := work(s, data)
	if err != nil {
		return s, "", err
	}
	s.Units = units
	b, err := json.Marshal(s)
	if err != nil {
		return s, "", err
	}
	return s, string(b), nil
}

// ParseSpec reads a job's prompt.
func ParseSpec(prompt string) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(strings.NewReader(prompt))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%w: %v", ErrBadSpec, err)
	}
	return s, nil
}

// work reads data as the job will and returns its work units.
func work(s Spec, data []byte) (int, error) {
	var units int
	switch s.Type {
	case TypeDataProcessing:
		if s.Data == nil || s.Train != nil {
			return 0, fmt.Errorf("%w: a data-processing job needs data parameters", ErrBadSpec)
		}
		t, err := dataproc.Read(data, s.Data.Format, dataproc.Limits{})
		if err != nil {
			return 0, err
		}
		if err := s.Data.Validate(t); err != nil {
			return 0, err
		}
		units = ceilDiv(len(t.Rows)*len(t.Columns), cellsPerUnit)
	case TypeTraining:
		if s.Finetune != nil {
			var err error
			if units, err = finetuneWork(s, data); err != nil {
				return 0, err
			}
			break
		}
		if s.Train == nil || s.Data != nil {
			return 0, fmt.Errorf("%w: a training job needs training parameters", ErrBadSpec)
		}
		p, err := s.Train.Params.WithDefaults()
		if err != nil {
			return 0, err
		}
		p.Workers = s.Train.Params.Workers // not part of the job: it changes nothing
		if p != s.Train.Params {
			return 0, fmt.Errorf("%w: training parameters must be given whole (Params.WithDefaults)", ErrBadSpec)
		}
		d, err := train.ReadCSV(strings.NewReader(string(data)), s.Train.Label, train.Limits{})
		if err != nil {
			return 0, err
		}
		nt, err := train.TrainRows(d.Rows(), p.Holdout)
		if err != nil {
			return 0, err
		}
		units = ceilDiv(nt*p.Epochs, samplesPerUnit)
	default:
		return 0, fmt.Errorf("%w: %q", ErrUnknownType, s.Type)
	}
	units = max(units, 1)
	if units > MaxUnits {
		return 0, fmt.Errorf("%w: %d work units, one job may do %d (fewer rows or epochs)", ErrTooMuchWork, units, MaxUnits)
	}
	return units, nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Progress is called with a line of progress (an epoch's loss and
// accuracy) while a job runs.
type Progress func(line string) error

// Result is what a job produced.
type Result struct {
	Text  string // the output file: the report, or the model file; a fine-tuning job's ModelResult
	Units int    // work done, equal to the spec's Units
	// File is a result too large for the text (a fine-tuned model's
	// GGUF), which the miner stores with the coordinator; Text names its
	// hash.
	File []byte
}

// Execute runs a job on its input file, checking first that the file is
// the one the spec names and that the work is what it declares.
// workers is how many goroutines train (the weights do not depend on it).
func Execute(ctx context.Context, s Spec, data []byte, sha256 string, workers int, progress Progress) (Result, error) {
	if sha256 != s.Input.SHA256 || int64(len(data)) != s.Input.Bytes {
		return Result{}, fmt.Errorf("%w: got %d bytes with sha256 %s", ErrInput, len(data), sha256)
	}
	units, err := work(s, data)
	if err != nil {
		return Result{}, err
	}
	if units != s.Units {
		return Result{}, fmt.Errorf("%w: declares %d work units, the input makes %d", ErrBadSpec, s.Units, units)
	}
	switch s.Type {
	case TypeDataProcessing:
		t, err := dataproc.Read(data, s.Data.Format, dataproc.Limits{})
		if err != nil {
			return Result{}, err
		}
		rep, err := dataproc.Process(t, *s.Data, dataproc.Limits{})
		if err != nil {
			return Result{}, err
		}
		out, err := rep.Render(s.Data.Output)
		if err != nil {
			return Result{}, err
		}
		if progress != nil {
			if err := progress(fmt.Sprintf("processed %d rows, kept %d\n", rep.Rows, rep.Kept)); err != nil {
				return Result{}, err
			}
		}
		return Result{Text: string(out), Units: units}, nil
	case TypeTraining:
		if s.Finetune != nil {
			res, err := finetune(ctx, s, data, workers, progress)
			res.Units = units
			return res, err
		}
		fallthrough
	default: // training: work() accepted only the two types
		d, err := train.ReadCSV(strings.NewReader(string(data)), s.Train.Label, train.Limits{})
		if err != nil {
			return Result{}, err
		}
		var perr error
		p := s.Train.Params
		p.Workers = workers
		m, err := train.Train(ctx, d, p, func(e train.Epoch) {
			if progress != nil && perr == nil {
				perr = progress(fmt.Sprintf("epoch %d/%d train_loss=%.4f holdout_loss=%.4f accuracy=%.4f\n",
					e.Epoch, e.Epochs, e.TrainLoss, e.HoldoutLoss, e.HoldoutAccuracy))
			}
		})
		if err != nil {
			return Result{}, err
		}
		if perr != nil {
			return Result{}, perr
		}
		var sb strings.Builder
		if err := m.Write(&sb); err != nil {
			return Result{}, err
		}
		return Result{Text: sb.String(), Units: units}, nil
	}
}

// OutputName is the file name a job's result is saved under.
func OutputName(model, jobID string, s *Spec) string {
	switch {
	case model == ModelCustomClassifier:
		return jobID + ".model.json"
	case IsFinetuneModel(model):
		return jobID + ".gguf"
	case model == ModelDataProcessing && s != nil && s.Data != nil && s.Data.Output == "csv":
		return jobID + ".report.csv"
	case model == ModelDataProcessing && s != nil && s.Data != nil && (s.Data.Output == "markdown" || s.Data.Output == "md"):
		return jobID + ".report.md"
	case model == ModelDataProcessing:
		return jobID + ".report.json"
	case IsImageModel(model):
		return jobID + ".png"
	}
	return jobID + ".txt"
}

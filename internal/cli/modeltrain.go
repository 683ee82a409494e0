package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/train"
	"github.com/aitbc/aitbc/internal/train/lm"
)

// maxDatasetBytes bounds a dataset read by `model train` (as the
// coordinator bounds an uploaded file).
const maxDatasetBytes = 64 << 20

// newModelTrainCmd is `aitbc model train`: a deterministic classifier on
// this machine, the trainer a miner runs for a training job.
func newModelTrainCmd(g *Globals) *cobra.Command {
	var dataset, label, out, kind string
	var p train.Params
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a classifier (logistic regression or a small MLP) on a CSV table, deterministically",
		Long: `Trains a classifier on --dataset, a CSV file with a header row whose columns
are numeric features and one label column (--label, default the last). A
share of the rows (--holdout) is held out; loss and accuracy are printed for
each epoch. The run is deterministic: the same file, seed and parameters give
the same weights, bit for bit, on any machine and with any --threads, and
the weights hash printed at the end proves it. The model file is JSON; use it
with aitbc model predict.`,
		Example: `  aitbc model train --dataset training_data.csv --label species --model-file clf.json
  aitbc model train --dataset training_data.csv --kind logistic --epochs 50 --learning-rate 0.5
  aitbc model train --dataset training_data.csv --epochs 10 --batch-size 64 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataset == "" {
				return usagef("--dataset is required (a CSV file)")
			}
			p.Kind = kind
			d, err := readDataset(dataset, label)
			if err != nil {
				return err
			}
			if out == "" {
				out = trimExt(filepath.Base(dataset)) + ".model.json"
			}
			m, err := train.Train(cmd.Context(), d, p, func(e train.Epoch) {
				if !g.JSON() {
					fmt.Fprintf(g.Stderr(), "epoch %d/%d  train loss %.4f  held-out loss %.4f  accuracy %.3f\n",
						e.Epoch, e.Epochs, e.TrainLoss, e.HoldoutLoss, e.HoldoutAccuracy)
				}
			})
			if err != nil {
				return usagef("%v", err)
			}
			if err := writeModel(out, m); err != nil {
				return err
			}
			res := struct {
				ModelFile     string        `json:"model_file"`
				WeightsSHA256 string        `json:"weights_sha256"`
				Kind          string        `json:"kind"`
				Classes       []string      `json:"classes"`
				Params        train.Params  `json:"params"`
				Metrics       train.Metrics `json:"metrics"`
			}{out, m.WeightsSHA256, m.Kind, m.Classes, m.Params, m.Metrics}
			return g.Print(res, func(w io.Writer) {
				fmt.Fprintf(w, "%s model of %s (%d classes) written to %s\n", m.Kind, m.Label, len(m.Classes), out)
				fmt.Fprintf(w, "  held-out accuracy %.3f, loss %.4f on %d rows; weights sha256 %s\n",
					m.Metrics.HoldoutAccuracy, m.Metrics.HoldoutLoss, m.Metrics.HoldoutRows, m.WeightsSHA256)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataset, "dataset", "", "CSV file with a header row (required)")
	f.StringVar(&label, "label", "", "label column (default: the last)")
	f.StringVar(&out, "model-file", "", "where to write the model (default: <dataset>.model.json)")
	f.StringVar(&kind, "kind", train.KindMLP, "logistic or mlp")
	f.IntVar(&p.Epochs, "epochs", 20, "passes over the training rows")
	f.IntVar(&p.BatchSize, "batch-size", 32, "rows per gradient step")
	f.Float64Var(&p.LearningRate, "learning-rate", 0.1, "step size")
	f.IntVar(&p.Hidden, "hidden", 0, "hidden units of the MLP (default 16)")
	f.Float64Var(&p.Holdout, "holdout", 0.2, "share of rows held out for evaluation")
	f.Uint64Var(&p.Seed, "seed", 1, "seed of the split, shuffles and initial weights")
	f.IntVar(&p.Workers, "threads", runtime.NumCPU(), "goroutines computing gradients (the result does not depend on it)")
	return cmd
}

// newModelPredictCmd is `aitbc model predict`.
func newModelPredictCmd(g *Globals) *cobra.Command {
	var modelFile, input string
	cmd := &cobra.Command{
		Use:   "predict",
		Short: "Classify the rows of a CSV file with a model from aitbc model train (or a training job)",
		Example: `  aitbc model predict --model-file clf.json --input new_rows.csv
  aitbc model predict --model-file clf.json --input new_rows.csv --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelFile == "" || input == "" {
				return usagef("--model-file and --input are required")
			}
			mf, err := os.Open(modelFile)
			if err != nil {
				return usagef("--model-file: %v", err)
			}
			m, err := train.ReadModel(mf)
			mf.Close()
			if err != nil {
				return usagef("--model-file %s: %v", modelFile, err)
			}
			in, err := openLimited(input)
			if err != nil {
				return err
			}
			defer in.Close()
			x, n, err := train.ReadFeatures(in, m.Features, 1_000_000)
			if err != nil {
				return usagef("--input %s: %v", input, err)
			}
			preds := m.Predict(x, n)
			return g.Print(map[string]any{"classes": m.Classes, "predictions": preds}, func(w io.Writer) {
				fmt.Fprintln(w, "ROW\tCLASS\tPROBABILITY")
				for i, p := range preds {
					best := 0.0
					for _, v := range p.Probs {
						best = max(best, v)
					}
					fmt.Fprintf(w, "%d\t%s\t%.3f\n", i+1, p.Class, best)
				}
			})
		},
	}
	cmd.Flags().StringVar(&modelFile, "model-file", "", "model written by aitbc model train or fetched with ai-results (required)")
	cmd.Flags().StringVar(&input, "input", "", "CSV file with the model's feature columns (required)")
	return cmd
}

func openLimited(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if fi.Size() > maxDatasetBytes {
		return nil, usagef("%s is %d bytes, the limit is %d", path, fi.Size(), maxDatasetBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return f, nil
}

func readDataset(path, label string) (*train.Dataset, error) {
	f, err := openLimited(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, err := train.ReadCSV(f, label, train.Limits{})
	if err != nil {
		return nil, usagef("--dataset %s: %v", path, err)
	}
	return d, nil
}

func writeModel(path string, m *train.Model) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := m.Write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func trimExt(name string) string { return name[:len(name)-len(filepath.Ext(name))] }

// finetuneOutput is what `aitbc model finetune` reports.
type finetuneOutput struct {
	Base          string     `json:"base_model"`
	ModelFile     string     `json:"model_file"`
	GGUFSHA256    string     `json:"gguf_sha256"`
	WeightsSHA256 string     `json:"weights_sha256"`
	Plan          lm.Plan    `json:"plan"`
	Metrics       lm.Metrics `json:"metrics"`
	Seconds       float64    `json:"seconds"`
	TokensPerSec  float64    `json:"tokens_per_second"` // trained tokens / wall time of the steps and evaluations
	Threads       int        `json:"threads"`
	Imported      string     `json:"imported,omitempty"`
}

// newModelFinetuneCmd is `aitbc model finetune`: the fine-tuning a miner
// runs for a `--type training --model tolstoy-1m` job, on this machine.
func newModelFinetuneCmd(g *Globals) *cobra.Command {
	var dataset, model, out, importName, modelsDir string
	var p lm.Params
	cmd := &cobra.Command{
		Use:   "finetune",
		Short: "Fine-tune a language model of the registry (tolstoy-1m by default) on a text file, deterministically",
		Long: `Fine-tunes a LLaMA-architecture model of the built-in engine's registry on
--dataset, a UTF-8 text file (a book), by backpropagation in pure Go with AdamW.
A share of the text (--holdout, whole windows spread through it) is held out:
its loss is printed before and after, and the loss of every step as it runs.
The run is deterministic: the same model, text, seed and parameters give the
same weights, bit for bit, with any --threads; the weights hash printed at the
end proves it. The result is a GGUF file (F32) for aitbc model import and
aitbc model run; --import NAME imports it at once.`,
		Example: `  aitbc model finetune --dataset book.txt --steps 200
  aitbc model finetune --dataset book.txt --epochs 1 --batch-size 8 --seq-len 128 --learning-rate 3e-4 --out austen.gguf
  aitbc model finetune --dataset book.txt --steps 50 --import austen-1m && aitbc model run --model austen-1m --prompt "Mr. Darcy"
  aitbc model finetune --dataset book.txt --steps 20 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataset == "" {
				return usagef("--dataset is required (a text file)")
			}
			text, err := readText(dataset)
			if err != nil {
				return err
			}
			base, err := modelRegistry(g, modelsDir).Open(model)
			if err != nil {
				return err
			}
			defer base.Close()
			if out == "" {
				out = trimExt(filepath.Base(dataset)) + ".gguf"
			}
			name := importName
			if name == "" {
				name = trimExt(filepath.Base(out))
			}
			start := time.Now()
			res, err := lm.Finetune(cmd.Context(), base, name, text, p, 0, func(s lm.Step) error {
				if !g.JSON() {
					fmt.Fprintf(g.Stderr(), "step %d/%d  loss %.4f\n", s.Step, s.Steps, s.Loss)
				}
				return nil
			})
			if err != nil {
				if errors.Is(err, lm.ErrParams) || errors.Is(err, lm.ErrDataset) || errors.Is(err, lm.ErrTooLong) {
					return usagef("%v", err)
				}
				return err
			}
			secs := time.Since(start).Seconds()
			sum, err := writeGGUFFile(out, res)
			if err != nil {
				return err
			}
			o := finetuneOutput{Base: base.Name(), ModelFile: out, GGUFSHA256: sum, WeightsSHA256: res.WeightsSHA256,
				Plan: res.Plan, Metrics: res.Metrics, Seconds: secs, TokensPerSec: float64(res.Plan.StepTokens) / secs, Threads: p.Workers}
			if importName != "" {
				mi, err := engine.NewRegistry(g.Home).Import(out, engine.ImportOptions{Name: importName, Force: true})
				if err != nil {
					return err
				}
				o.Imported = mi.Name
			}
			return g.Print(o, func(w io.Writer) {
				fmt.Fprintf(w, "fine-tuned %s on %s: %d steps of %d×%d tokens (%d trained), %.1f s, %.0f tokens/s on %d threads\n",
					o.Base, dataset, o.Plan.Steps, o.Plan.Params.BatchSize, o.Plan.Params.SeqLen, o.Plan.StepTokens, secs, o.TokensPerSec, o.Threads)
				fmt.Fprintf(w, "  held-out loss %.4f -> %.4f (%d windows of %d tokens)\n",
					o.Metrics.HoldoutLossBefore, o.Metrics.HoldoutLossAfter, o.Metrics.HoldoutWindows, o.Plan.Params.SeqLen)
				fmt.Fprintf(w, "  %s (sha256 %s); weights sha256 %s\n", out, sum, o.WeightsSHA256)
				if o.Imported != "" {
					fmt.Fprintf(w, "  imported as %s: aitbc model run --model %s --prompt \"...\"\n", o.Imported, o.Imported)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataset, "dataset", "", "UTF-8 text file to fine-tune on (required)")
	f.StringVar(&model, "model", engine.DefaultModel, "base model of the registry")
	f.StringVar(&out, "out", "", "GGUF file to write (default: <dataset>.gguf)")
	f.StringVar(&importName, "import", "", "also import the result into the registry under this name")
	f.IntVar(&p.Steps, "steps", 0, "optimizer steps (default: --epochs 1)")
	f.IntVar(&p.Epochs, "epochs", 0, "passes over the training tokens, instead of --steps")
	f.IntVar(&p.BatchSize, "batch-size", 4, "sequences per step")
	f.IntVar(&p.SeqLen, "seq-len", 64, "tokens per sequence")
	f.Float64Var(&p.LearningRate, "learning-rate", 3e-4, "AdamW step size")
	f.Float64Var(&p.WeightDecay, "weight-decay", 0, "AdamW decoupled weight decay")
	f.Float64Var(&p.Holdout, "holdout", 0.1, "share of the text held out for evaluation")
	f.Uint64Var(&p.Seed, "seed", 1, "seed of the batches")
	f.IntVar(&p.Workers, "threads", runtime.NumCPU(), "goroutines computing gradients (the result does not depend on it)")
	modelsDirFlag(cmd, &modelsDir)
	return cmd
}

// readText reads a dataset for fine-tuning, bounded before it is read.
func readText(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if fi.Size() > lm.MaxDatasetBytes {
		return nil, usagef("--dataset %s is %d bytes, the limit is %d", path, fi.Size(), lm.MaxDatasetBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if err := lm.CheckText(b); err != nil {
		return nil, usagef("--dataset %s: %v", path, err)
	}
	return b, nil
}

// writeGGUFFile writes the fine-tuned model to path (through a temporary
// file, so a failed run leaves no half file) and returns its SHA-256.
func writeGGUFFile(path string, res *lm.Result) (string, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if err := res.WriteGGUF(io.MultiWriter(f, h)); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), os.Rename(tmp, path)
}

package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// blobsCSV has two classes a line separates.
func blobsCSV() string {
	var sb strings.Builder
	sb.WriteString("width,height,species\n")
	for i := range 200 {
		w, h := float64(i%17), float64((i*5)%19)
		s := "small"
		if w+h > 17 {
			s = "large"
		}
		fmt.Fprintf(&sb, "%g,%g,%s\n", w, h, s)
	}
	return sb.String()
}

func TestModelTrainThenPredict(t *testing.T) {
	data := writeFile(t, "training_data.csv", blobsCSV())
	model := filepath.Join(t.TempDir(), "clf.json")
	train := func(threads string) (string, float64) {
		out, _, err := runCLI(t, "model", "train", "--dataset", data, "--label", "species", "--kind", "logistic", "--epochs", "30",
			"--learning-rate", "0.5", "--model-file", model, "--threads", threads, "--output", "json")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			WeightsSHA256 string `json:"weights_sha256"`
			Metrics       struct {
				HoldoutAccuracy float64 `json:"holdout_accuracy"`
			} `json:"metrics"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r.WeightsSHA256, r.Metrics.HoldoutAccuracy
	}
	h1, acc := train("1")
	h2, _ := train("2")
	if h1 != h2 || len(h1) != 64 {
		t.Fatalf("weights hash %s with 1 thread, %s with 2", h1, h2)
	}
	if acc < 0.9 {
		t.Fatalf("held-out accuracy %.2f", acc)
	}
	rows := writeFile(t, "new.csv", "height,width\n18,16\n0,1\n")
	out, _, err := runCLI(t, "model", "predict", "--model-file", model, "--input", rows)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1\tlarge\t") || !strings.Contains(out, "2\tsmall\t") {
		t.Fatalf("predictions:\n%s", out)
	}
}

func TestModelTrainRefusesBadDatasets(t *testing.T) {
	for name, c := range map[string]struct {
		file, label, want string
	}{
		"missing label":   {"a,b\n1,2\n3,4\n", "species", "label column not found"},
		"not numeric":     {"a,species\nx,1\n", "species", "not numeric"},
		"not a csv":       {"a,species\n1,2,3\n", "species", "invalid CSV"},
		"no dataset flag": {"", "", "--dataset is required"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"model", "train", "--label", c.label}
			if c.file != "" {
				args = append(args, "--dataset", writeFile(t, "d.csv", c.file))
			}
			_, _, err := runCLI(t, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestDataProcessReportsAndFilters(t *testing.T) {
	in := writeFile(t, "processed_data.csv", "region,units\nnorth,10\nsouth,4\nnorth,7\n")
	out, _, err := runCLI(t, "data", "process", "--input", in, "--filter", "units>=5", "--group-by", "region", "--agg", "sum:units", "--report", "csv")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out, "region,count,sum(units)\nnorth,2,17\n") {
		t.Fatalf("report:\n%s", out)
	}
	if _, _, err := runCLI(t, "data", "process", "--input", in, "--filter", "colour==red"); err == nil || !strings.Contains(err.Error(), "unknown column") {
		t.Fatalf("unknown column: %v", err)
	}
}

// Jobs without their file, or of an unknown type, are refused before any
// wallet or coordinator is touched: no money moves.
func TestAISubmitRefusesJobTypesBeforeMoney(t *testing.T) {
	for typ, want := range map[string]string{
		"training":        "needs --dataset",
		"data-processing": "needs --input-data",
		"rendering":       "unknown --type",
	} {
		_, _, err := runCLI(t, "ai-submit", "--wallet", "w", "--type", typ, "--prompt", "x", "--payment", "1", "--coordinator", "http://127.0.0.1:1")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--type %s: %v, want %q", typ, err, want)
		}
	}
}

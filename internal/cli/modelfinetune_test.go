package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModelFinetuneImportRun fine-tunes tolstoy-1m on a book from the
// CLI, imports the result and runs it: the held-out loss is lower, the
// file's hash is the one reported, and the weights hash does not depend
// on the thread count.
func TestModelFinetuneImportRun(t *testing.T) {
	home := t.TempDir()
	book := filepath.Join("..", "train", "lm", "testdata", "book.txt")
	out := filepath.Join(t.TempDir(), "austen.gguf")
	type result struct {
		ModelFile     string `json:"model_file"`
		GGUFSHA256    string `json:"gguf_sha256"`
		WeightsSHA256 string `json:"weights_sha256"`
		Imported      string `json:"imported"`
		Plan          struct {
			Steps int `json:"steps"`
		} `json:"plan"`
		Metrics struct {
			Before float64 `json:"holdout_loss_before"`
			After  float64 `json:"holdout_loss_after"`
		} `json:"metrics"`
	}
	run := func(threads string, extra ...string) result {
		args := append([]string{"--home", home, "model", "finetune", "--dataset", book, "--steps", "6", "--seq-len", "32",
			"--out", out, "--threads", threads, "--output", "json"}, extra...)
		o, _, err := runCLI(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		var r result
		if err := json.Unmarshal([]byte(o), &r); err != nil {
			t.Fatalf("%v: %s", err, o)
		}
		return r
	}
	r1, r2 := run("1"), run("2")
	if r1.WeightsSHA256 != r2.WeightsSHA256 || r1.GGUFSHA256 != r2.GGUFSHA256 || len(r1.WeightsSHA256) != 64 {
		t.Fatalf("1 thread: %+v\n2 threads: %+v", r1, r2)
	}
	r2 = run("2", "--import", "austen-1m") // the file now names the model austen-1m; the weights are the same
	if r2.WeightsSHA256 != r1.WeightsSHA256 {
		t.Fatalf("weights %s, then %s", r1.WeightsSHA256, r2.WeightsSHA256)
	}
	if r2.Plan.Steps != 6 || !(r2.Metrics.After < r2.Metrics.Before) || r2.Imported != "austen-1m" {
		t.Fatalf("%+v", r2)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	o, _, err := runCLI(t, "--home", home, "model", "run", "--model", "austen-1m", "--prompt", "Mr. Bennet", "--max-tokens", "8", "--temperature", "0")
	if err != nil || !strings.HasPrefix(o, "Mr. Bennet") {
		t.Fatalf("model run: %v\n%s", err, o)
	}
}

func TestModelFinetuneRefusesBadDatasets(t *testing.T) {
	for name, c := range map[string]struct{ file, flags, want string }{
		"empty":     {"  \n", "", "empty"},
		"binary":    {"\x00\x01\x02 binary", "", "NUL"},
		"too short": {"One line of text.", "", "tokens"},
		"no file":   {"", "", "--dataset is required"},
		"bad rate":  {"text", "--learning-rate=7", "learning rate"},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"model", "finetune", "--steps", "1"}
			if c.file != "" {
				args = append(args, "--dataset", writeFile(t, "book.txt", c.file))
			}
			if c.flags != "" {
				args = append(args, c.flags)
			}
			_, _, err := runCLI(t, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

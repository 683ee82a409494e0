package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// TestModelCommandsReadOllamasStore lays out an Ollama store as Ollama
// writes it and uses its model from the CLI by its Ollama name: listed,
// run (the same tokens as the GGUF file itself) and benchmarked; a blob
// that is not GGUF is named on stderr as not served.
func TestModelCommandsReadOllamasStore(t *testing.T) {
	def, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := def.WriteGGUF(&b, gguf.Q8_0); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	if err := engine.PutOllamaModel(store, "llama3.2:latest", b.Bytes(), "{{ .Prompt }}"); err != nil {
		t.Fatal(err)
	}
	if err := engine.PutOllamaModel(store, "old:ggml", []byte("lmgg not a gguf file"), ""); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "same.gguf")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	out, stderr, err := runCLI(t, "model", "list", "--models-dir", store)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "llama3.2:latest") || !strings.Contains(out, "Q8_0") || strings.Contains(out, "old:ggml") {
		t.Errorf("model list:\n%s", out)
	}
	if !strings.Contains(stderr, "not served: old:ggml") || !strings.Contains(stderr, "not a GGUF file") {
		t.Errorf("model list stderr: %q", stderr)
	}
	if out, _, _ := runCLI(t, "model", "list"); strings.Contains(out, "llama3.2") {
		t.Errorf("without --models-dir the list has Ollama's model:\n%s", out)
	}

	tokens := func(model string, extra ...string) (string, []int) {
		t.Helper()
		args := append([]string{"model", "run", "--model", model, "--prompt", "It was", "--temperature", "0", "--max-tokens", "16", "--output", "json"}, extra...)
		out, stderr, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v %s", args, err, stderr)
		}
		var r struct {
			Model  string `json:"model"`
			Tokens []int  `json:"tokens"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r.Model, r.Tokens
	}
	_, want := tokens(file)
	for _, name := range []string{"llama3.2", "llama3.2:latest"} {
		model, got := tokens(name, "--models-dir", store)
		if model != "llama3.2:latest" || !reflect.DeepEqual(got, want) || len(got) == 0 {
			t.Errorf("%s: model %q tokens %v, the GGUF file gives %v", name, model, got, want)
		}
	}
	if _, _, err := runCLI(t, "model", "run", "--model", "old:ggml", "--models-dir", store, "--prompt", "x"); err == nil ||
		!strings.Contains(err.Error(), "not a GGUF file") {
		t.Errorf("running a non-GGUF blob: %v", err)
	}

	out, _, err = runCLI(t, "model", "bench", "--models-dir", store, "--model", "llama3.2:latest", "--tokens", "8", "--reps", "1", "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "llama3.2:latest") || !strings.Contains(out, "PROMPT TOK/S") {
		t.Errorf("model bench:\n%s", out)
	}
}

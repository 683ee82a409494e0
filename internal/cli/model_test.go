package cli_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/cli"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := cli.NewRoot("aitbc", strings.NewReader(""), &out, &errb)
	root.SetArgs(append([]string{"--home", t.TempDir()}, args...))
	err := root.Execute()
	return out.String(), errb.String(), err
}

// TestModelRunReproducesTheReference runs the embedded default model from
// the CLI and checks the model README's greedy reference ids.
func TestModelRunReproducesTheReference(t *testing.T) {
	out, _, err := runCLI(t, "model", "run", "--model", "tolstoy-1m", "--prompt", "It was", "--temperature", "0", "--max-tokens", "45", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Text         string `json:"text"`
		PromptTokens []int  `json:"prompt_tokens"`
		Tokens       []int  `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := []int{261, 958, 967, 687, 284, 263, 576, 965, 13, 305, 983, 444, 962, 353, 969, 293, 531, 283, 263, 724}
	if len(r.Tokens) < len(want) {
		t.Fatalf("got %d tokens", len(r.Tokens))
	}
	for i, id := range want {
		if r.Tokens[i] != id {
			t.Fatalf("token %d = %d, want %d (ids %v)", i, r.Tokens[i], id, r.Tokens[:len(want)])
		}
	}
	if !strings.HasPrefix(r.Text, " awkward of the French.") {
		t.Fatalf("text %q", r.Text)
	}
	list, _, err := runCLI(t, "model", "list")
	if err != nil || !strings.Contains(list, "tolstoy-1m") {
		t.Fatalf("model list: %q %v", list, err)
	}
	for _, bad := range [][]string{
		{"model", "run", "--model", "no-such-model", "--prompt", "x"},
		{"model", "run", "--prompt", "x", "--temperature", "3"},
		{"model", "run", "--prompt", "x", "--top-p", "1.5"},
		{"model", "run", "--prompt", "x", "--max-tokens", "100000"},
	} {
		if _, _, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

// TestModelExportQuantisedRuns exports the default model in a K-quant mix
// and a legacy block type, and runs each file: a user can make the formats
// people use from the CLI, and the engine serves them.
func TestModelExportQuantisedRuns(t *testing.T) {
	dir := t.TempDir()
	for _, typ := range []string{"q4_k_m", "q4_0"} {
		file := filepath.Join(dir, typ+".gguf")
		out, stderr, err := runCLI(t, "model", "export", file, "--type", typ, "--output", "json")
		if err != nil {
			t.Fatalf("export %s: %v %s", typ, err, stderr)
		}
		var e struct {
			Type string `json:"type"`
			Size int64  `json:"size_bytes"`
		}
		if err := json.Unmarshal([]byte(out), &e); err != nil || e.Type != strings.ToUpper(typ) || e.Size == 0 {
			t.Fatalf("export %s: %+v %v: %s", typ, e, err, out)
		}
		out, stderr, err = runCLI(t, "model", "run", "--model", file, "--prompt", "It was", "--temperature", "0", "--max-tokens", "8", "--output", "json")
		if err != nil {
			t.Fatalf("run %s: %v %s", typ, err, stderr)
		}
		var r struct {
			Tokens []int `json:"tokens"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Tokens) == 0 {
			t.Fatalf("run %s: %v: %s", typ, err, out)
		}
	}
	if _, _, err := runCLI(t, "model", "export", filepath.Join(dir, "x.gguf"), "--type", "q9_9"); err == nil {
		t.Fatal("an unknown --type was accepted")
	}
}

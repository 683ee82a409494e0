package cli_test

import (
	"bytes"
	"encoding/json"
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

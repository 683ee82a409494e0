package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// TestModelRunMessages runs a conversation through `model run --messages`
// on a GGUF with a ChatML template: the same tokens as the engine's
// Generate with those messages, from a JSON argument or a file; a model
// without a template and bad flags are refused.
func TestModelRunMessages(t *testing.T) {
	def, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := def.WriteGGUF(&b, gguf.Q8_0); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	w := &gguf.Writer{}
	for _, kv := range f.KVs {
		w.Set(kv.Key, kv.Value)
	}
	w.Set("tokenizer.chat_template", "chatml")
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := w.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "chat.gguf")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	msgs := []engine.ChatMessage{{Role: "system", Content: "Natasha"}, {Role: "user", Content: "It was"}}
	m, err := engine.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want, err := m.Generate(context.Background(), engine.GenerateRequest{Messages: msgs, MaxTokens: 10, Temperature: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	js := `[{"role":"system","content":"Natasha"},{"role":"user","content":"It was"}]`
	chatFile := filepath.Join(dir, "chat.json")
	os.WriteFile(chatFile, []byte(js), 0o644)
	for _, arg := range []string{js, "@" + chatFile} {
		o, stderr, err := runCLI(t, "model", "run", "--model", file, "--messages", arg, "--temperature", "0", "--max-tokens", "10", "--output", "json")
		if err != nil {
			t.Fatalf("%v %s", err, stderr)
		}
		var r struct {
			PromptTokens []int `json:"prompt_tokens"`
			Tokens       []int `json:"tokens"`
			Messages     []struct {
				Role string `json:"role"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(o), &r); err != nil {
			t.Fatalf("%v: %s", err, o)
		}
		if !reflect.DeepEqual(r.Tokens, want.Tokens) || !reflect.DeepEqual(r.PromptTokens, want.PromptTokens) || len(r.Messages) != 2 || r.Messages[1].Role != "user" {
			t.Errorf("--messages %.20s: %+v, Generate gives prompt %v tokens %v", arg, r, want.PromptTokens, want.Tokens)
		}
	}
	if _, _, err := runCLI(t, "model", "run", "--messages", js); !errors.Is(err, engine.ErrNoChatTemplate) {
		t.Errorf("tolstoy-1m (no template): %v, want ErrNoChatTemplate", err)
	}
	for _, bad := range [][]string{
		{"--model", file, "--messages", js, "--prompt", "x"},
		{"--model", file, "--messages", `{"role":"user"}`},
		{"--model", file, "--messages", `[]`},
		{"--model", file, "--messages", `[{"content":"no role"}]`},
		{"--model", file, "--messages", `[{"role":"user","content":"x","extra":1}]`},
		{"--model", file, "--messages", "@" + filepath.Join(dir, "missing.json")},
	} {
		if _, _, err := runCLI(t, append([]string{"model", "run"}, bad...)...); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

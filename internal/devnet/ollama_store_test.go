package devnet_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// TestJobByOllamaNameFromOllamasStore: a devnet whose miner reads an
// Ollama store (laid out as Ollama writes it) serves a job for the
// seeds' model name, llama3.2:latest, on the built-in engine, and the
// customer gets the tokens the GGUF file itself gives.
func TestJobByOllamaNameFromOllamasStore(t *testing.T) {
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
	direct, err := engine.LoadGGUF(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want, err := direct.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 24, Temperature: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}

	e := start(t, devnet.Config{Miners: 1, ModelsDir: store})
	job := e.submit(e.d.APIKey, map[string]any{"model": "llama3.2:latest", "prompt": "It was", "max_tokens": 24, "temperature": 0})
	e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled")
	var res coordinator.JobView
	if err := e.call("GET", "/v1/jobs/"+job.JobID+"/results", e.d.APIKey, nil, &res); err != nil {
		t.Fatal(err)
	}
	if res.Result == nil || *res.Result != want.Text || res.Receipt == nil {
		t.Fatalf("result %q (receipt %v), the GGUF file gives %q", derefS(res.Result), res.Receipt != nil, want.Text)
	}
}

package backend_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/miner/backend"
)

// TestBuiltinServesOllamasStore: with ModelsDir the built-in backend offers
// the store's models by their Ollama names and runs jobs for them, while a
// job still cannot name a file, a path inside the store, or a path out of
// it.
func TestBuiltinServesOllamasStore(t *testing.T) {
	gg, err := os.ReadFile(exportGGUF(t))
	if err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	if err := engine.PutOllamaModel(store, "llama3.2:latest", gg, ""); err != nil {
		t.Fatal(err)
	}
	if err := engine.PutOllamaModel(store, "someone/tolstoy:f32", gg, ""); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	var logMu sync.Mutex
	b := backend.NewBuiltin(t.TempDir(), backend.BuiltinOptions{ModelsDir: store, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))})
	defer b.Close()
	ms, err := b.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{engine.DefaultModel, "llama3.2:latest", "someone/tolstoy:f32"}) {
		t.Fatalf("models %v", names)
	}
	// The F32 export computes what the embedded model does.
	want, err := b.Generate(context.Background(), tolstoyReq(20), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"llama3.2:latest", "llama3.2", "registry.ollama.ai/library/llama3.2:latest", "someone/tolstoy:f32"} {
		req := tolstoyReq(20)
		req.Model = name
		got, err := b.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Text != want.Text || got.TokensOut != want.TokensOut {
			t.Fatalf("%s: %q, embedded model: %q", name, got.Text, want.Text)
		}
	}
	// Three spellings of llama3.2:latest loaded it once (one cache entry,
	// so no second copy of the weights).
	logMu.Lock()
	if n := strings.Count(logs.String(), `msg="model loaded" model=llama3.2:latest `); n != 1 {
		t.Errorf("llama3.2:latest loaded %d times under three names:\n%s", n, logs.String())
	}
	logMu.Unlock()
	blobs, _ := filepath.Glob(filepath.Join(store, "blobs", "*"))
	for _, name := range append(blobs, "llama3.2:8b", "../llama3.2", "someone/../llama3.2",
		filepath.Join(store, "manifests", "registry.ollama.ai", "library", "llama3.2", "latest"), "a/b/c/d:e") {
		req := tolstoyReq(1)
		req.Model = name
		if _, err := b.Generate(context.Background(), req, nil); !errors.Is(err, backend.ErrUnknownModel) {
			t.Errorf("%q: %v, want ErrUnknownModel", name, err)
		}
	}
	// Without ModelsDir none of Ollama's names is known.
	req := tolstoyReq(1)
	req.Model = "llama3.2:latest"
	if _, err := backend.NewBuiltin(t.TempDir(), backend.BuiltinOptions{}).Generate(context.Background(), req, nil); !errors.Is(err, backend.ErrUnknownModel) {
		t.Errorf("without ModelsDir: %v", err)
	}
}

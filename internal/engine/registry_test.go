package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/models"
)

func TestImportListAndResolve(t *testing.T) {
	home := t.TempDir()
	src := t.TempDir()
	reg := engine.NewRegistry(home)

	list, err := reg.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != engine.DefaultModel || !list[0].Builtin || list[0].Params != 984192 {
		t.Fatalf("fresh registry lists %+v", list)
	}

	// A llama2.c checkpoint with its tokenizer, from another folder.
	ckpt := filepath.Join(src, "Stories 15M.bin")
	tokPath := filepath.Join(src, "tok.bin")
	os.WriteFile(ckpt, models.TolstoyModel, 0o644)
	os.WriteFile(tokPath, models.TolstoyTokenizer, 0o644)
	if _, err := reg.Import(ckpt, engine.ImportOptions{}); err == nil {
		t.Fatal("imported a checkpoint without a tokenizer")
	}
	mi, err := reg.Import(ckpt, engine.ImportOptions{Tokenizer: tokPath})
	if err != nil {
		t.Fatal(err)
	}
	if mi.Name != "stories-15m" || mi.Format != engine.FormatLlama2C || mi.TensorType != "F32" {
		t.Fatalf("imported %+v", mi)
	}

	// A Q8_0 GGUF file carries its own tokenizer.
	q8 := filepath.Join(src, "tolstoy-q8.gguf")
	os.WriteFile(q8, tolstoyGGUF(t, gguf.Q8_0), 0o644)
	if _, err := reg.Import(q8, engine.ImportOptions{Tokenizer: tokPath}); !errors.Is(err, engine.ErrUnsupported) {
		t.Fatalf("GGUF with a tokenizer: %v", err)
	}
	if _, err := reg.Import(q8, engine.ImportOptions{Name: "tolstoy-q8"}); err != nil {
		t.Fatal(err)
	}

	list, err = reg.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name+"/"+string(l.Format)+"/"+l.TensorType)
	}
	want := []string{"tolstoy-1m/llama2c/F32", "stories-15m/llama2c/F32", "tolstoy-q8/gguf/Q8_0"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("list %v, want %v", names, want)
	}

	m, err := engine.Resolve(home, "stories-15m")
	if err != nil {
		t.Fatal(err)
	}
	checkReference(t, m, 1)
	m.Close()
	q, err := engine.Resolve(home, "tolstoy-q8")
	if err != nil {
		t.Fatal(err)
	}
	if !q.Quantized() || q.Name() != "tolstoy-q8" {
		t.Fatalf("tolstoy-q8: quantized %v name %q", q.Quantized(), q.Name())
	}
	q.Close()
	// A path works as a model name too.
	p, err := engine.Resolve(home, q8)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()

	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"duplicate", importErr(reg, q8, engine.ImportOptions{Name: "tolstoy-q8"}), engine.ErrModelExists},
		{"built-in name", importErr(reg, q8, engine.ImportOptions{Name: engine.DefaultModel}), engine.ErrModelExists},
		{"invalid name", importErr(reg, q8, engine.ImportOptions{Name: "../evil"}), engine.ErrInvalidName},
		{"upper case", importErr(reg, q8, engine.ImportOptions{Name: "Tolstoy"}), engine.ErrInvalidName},
		{"unknown model", resolveErr(home, "war-and-peace-70b"), engine.ErrUnknownModel},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if _, err := reg.Import(q8, engine.ImportOptions{Name: "tolstoy-q8", Force: true}); err != nil {
		t.Fatalf("--force: %v", err)
	}

	// A corrupt file is refused and leaves nothing behind.
	bad := filepath.Join(src, "bad.gguf")
	os.WriteFile(bad, tolstoyGGUF(t, gguf.F32)[:5000], 0o644)
	if _, err := reg.Import(bad, engine.ImportOptions{}); !errors.Is(err, engine.ErrTruncated) {
		t.Fatalf("truncated import: %v", err)
	}
	entries, _ := os.ReadDir(reg.Dir())
	if len(entries) != 2 {
		var n []string
		for _, e := range entries {
			n = append(n, e.Name())
		}
		t.Fatalf("registry folder holds %v", n)
	}
}

func importErr(r *engine.Registry, src string, o engine.ImportOptions) error {
	_, err := r.Import(src, o)
	return err
}

func resolveErr(home, name string) error {
	_, err := engine.Resolve(home, name)
	return err
}

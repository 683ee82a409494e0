package engine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

func TestParseOllamaName(t *testing.T) {
	for in, want := range map[string]string{
		"llama3.2":                          "registry.ollama.ai/library/llama3.2:latest",
		"llama3.2:latest":                   "registry.ollama.ai/library/llama3.2:latest",
		"qwen2.5:0.5b-instruct-q4_K_M":      "registry.ollama.ai/library/qwen2.5:0.5b-instruct-q4_K_M",
		"someone/tiny:v1":                   "registry.ollama.ai/someone/tiny:v1",
		"hf.co/bartowski/Llama-3.2-1B:Q8_0": "hf.co/bartowski/Llama-3.2-1B:Q8_0",
	} {
		n, err := engine.ParseOllamaName(in)
		if err != nil || n.String() != want {
			t.Errorf("ParseOllamaName(%q) = %v, %v; want %s", in, n, err, want)
		}
	}
	for _, bad := range []string{"", "..", "../x", "a/../../b", "a/b/c/d", ".hidden", "x:..", "x:", "-rf", "name with space",
		"ns.dot/model", "x/y\x00", "a\\b", strings.Repeat("m", 129)} {
		if _, err := engine.ParseOllamaName(bad); !errors.Is(err, engine.ErrInvalidName) {
			t.Errorf("ParseOllamaName(%q): %v, want ErrInvalidName", bad, err)
		}
	}
}

// ollamaStore lays out an Ollama store in a temp dir with two models:
// tolstoy-1m as Q8_0 GGUF under llama3.2:latest and a random-weight qwen2
// model under someone/tiny-qwen:v1.
func ollamaStore(t *testing.T) (dir string, llama, qwen []byte) {
	t.Helper()
	dir = t.TempDir()
	llama = tolstoyGGUF(t, gguf.Q8_0)
	qwen = variantGGUF(t, newTiny(true, 5), "qwen2")
	if err := engine.PutOllamaModel(dir, "llama3.2", llama, "{{ .Prompt }}"); err != nil {
		t.Fatal(err)
	}
	if err := engine.PutOllamaModel(dir, "someone/tiny-qwen:v1", qwen, ""); err != nil {
		t.Fatal(err)
	}
	return dir, llama, qwen
}

func blobOf(dir string, b []byte) string {
	sum := sha256.Sum256(b)
	return filepath.Join(dir, "blobs", "sha256-"+hex.EncodeToString(sum[:]))
}

func greedy(t *testing.T, m *engine.Model) []int {
	t.Helper()
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 12, Temperature: 0, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Tokens
}

func TestOllamaStoreServesModelsByOllamaNames(t *testing.T) {
	dir, llama, qwen := ollamaStore(t)
	// The layout is Ollama's: the manifest where Ollama looks for it, the
	// blob named by the digest of its content.
	if _, err := os.Stat(filepath.Join(dir, "manifests", "registry.ollama.ai", "library", "llama3.2", "latest")); err != nil {
		t.Fatal(err)
	}
	reg := engine.NewRegistry(t.TempDir()).WithOllama(dir)
	list, err := reg.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mi := range list {
		names = append(names, mi.Name)
	}
	if want := []string{engine.DefaultModel, "llama3.2:latest", "someone/tiny-qwen:v1"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("listed %v, want %v", names, want)
	}
	if l := list[1]; l.Source != "ollama" || l.TensorType != "Q8_0" || l.Params != 984192 || l.Size != int64(len(llama)) {
		t.Errorf("llama3.2:latest listed as %+v", l)
	}

	direct, err := engine.LoadGGUF(llama)
	if err != nil {
		t.Fatal(err)
	}
	want := greedy(t, direct)
	for _, name := range []string{"llama3.2", "llama3.2:latest", "library/llama3.2:latest", "registry.ollama.ai/library/llama3.2:latest"} {
		m, err := reg.Open(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Name() != "llama3.2:latest" {
			t.Errorf("%s opened as %q", name, m.Name())
		}
		if got := greedy(t, m); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: greedy tokens %v, the GGUF file gives %v", name, got, want)
		}
		m.Close()
		if !reg.Serves(name) {
			t.Errorf("Serves(%q) = false", name)
		}
	}
	directQ, err := engine.LoadGGUF(qwen)
	if err != nil {
		t.Fatal(err)
	}
	m, err := reg.Open("someone/tiny-qwen:v1")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got, want := greedy(t, m), greedy(t, directQ); !reflect.DeepEqual(got, want) {
		t.Errorf("qwen2: greedy tokens %v, the GGUF file gives %v", got, want)
	}
	for _, name := range []string{"llama3.2:8b", "someone/tiny-qwen", "mistral"} {
		if _, err := reg.Open(name); !errors.Is(err, engine.ErrUnknownModel) {
			t.Errorf("Open(%q): %v, want ErrUnknownModel", name, err)
		}
		if reg.Serves(name) {
			t.Errorf("Serves(%q) = true", name)
		}
	}
	// Without WithOllama the registry knows none of them.
	if _, err := engine.NewRegistry(t.TempDir()).Open("llama3.2"); !errors.Is(err, engine.ErrUnknownModel) {
		t.Errorf("a registry without the store opened llama3.2: %v", err)
	}
}

func TestOllamaStoreVerifiesTheBlobOnce(t *testing.T) {
	dir, llama, _ := ollamaStore(t)
	s := engine.NewOllamaStore(dir)
	blob := blobOf(dir, llama)
	st, err := os.Stat(blob)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Open("llama3.2")
	if err != nil {
		t.Fatal(err)
	}
	m.Close()

	// One weight byte changed, same size and modification time: the blob
	// was verified in this state, so it is not hashed again...
	bad := bytes.Clone(llama)
	bad[len(bad)-1] ^= 0x40
	if err := os.WriteFile(blob, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(blob, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Open("llama3.2"); err != nil {
		t.Fatalf("reopening a verified blob: %v", err)
	} else {
		m.Close()
	}
	// ...but a new store (a new process) hashes it and refuses it, and so
	// does this one once the file's state changes.
	if _, err := engine.NewOllamaStore(dir).Open("llama3.2"); !errors.Is(err, engine.ErrDigestMismatch) {
		t.Errorf("a tampered blob: %v, want ErrDigestMismatch", err)
	}
	later := st.ModTime().Add(time.Second)
	if err := os.Chtimes(blob, later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("llama3.2"); !errors.Is(err, engine.ErrDigestMismatch) {
		t.Errorf("a tampered blob with a new mtime: %v, want ErrDigestMismatch", err)
	}
	// A truncated blob disagrees with the manifest's size.
	if err := os.WriteFile(blob, llama[:len(llama)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.NewOllamaStore(dir).Open("llama3.2"); !errors.Is(err, engine.ErrDigestMismatch) {
		t.Errorf("a truncated blob: %v, want ErrDigestMismatch", err)
	}
}

func TestOllamaStoreRefusals(t *testing.T) {
	dir := t.TempDir()
	// A model Ollama serves but the engine does not: refused by its
	// architecture's name, and left out of the registry's list.
	gemma := rewriteGGUF(t, tolstoyGGUF(t, gguf.F32), func(kvs map[string]any, _ map[string]*gguf.TensorInfo) {
		kvs["general.architecture"] = "gemma"
	})
	if err := engine.PutOllamaModel(dir, "gemma:2b", gemma, ""); err != nil {
		t.Fatal(err)
	}
	// A pre-GGUF (GGML) blob.
	if err := engine.PutOllamaModel(dir, "old:ggml", append([]byte("lmgg"), make([]byte, 64)...), ""); err != nil {
		t.Fatal(err)
	}
	s := engine.NewOllamaStore(dir)
	if _, err := s.Open("gemma:2b"); !errors.Is(err, engine.ErrUnsupported) || !strings.Contains(err.Error(), `"gemma"`) {
		t.Errorf("gemma: %v, want ErrUnsupported naming the architecture", err)
	}
	if _, err := s.Open("old:ggml"); !errors.Is(err, engine.ErrUnsupported) || !strings.Contains(err.Error(), "not a GGUF file") {
		t.Errorf("ggml: %v, want ErrUnsupported (not a GGUF file)", err)
	}
	entries, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name != "gemma:2b" || !errors.Is(entries[0].Err, engine.ErrUnsupported) ||
		entries[1].Name != "old:ggml" || entries[1].Err == nil {
		t.Errorf("store entries %+v", entries)
	}
	list, err := engine.NewRegistry(t.TempDir()).WithOllama(dir).List()
	if err != nil || len(list) != 1 {
		t.Errorf("registry lists %+v, %v; want only the default", list, err)
	}

	// Manifests whose digests could name other paths.
	man := filepath.Join(dir, "manifests", "registry.ollama.ai", "library")
	write := func(name, body string) {
		os.MkdirAll(filepath.Join(man, name), 0o755)
		if err := os.WriteFile(filepath.Join(man, name, "latest"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("escape", `{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:../../../etc/passwd","size":1}]}`)
	write("nomodel", `{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:`+strings.Repeat("0", 64)+`","size":1}]}`)
	write("garbage", `not json`)
	for name, want := range map[string]error{
		"escape": engine.ErrInvalidHeader, "nomodel": engine.ErrUnsupported, "garbage": engine.ErrInvalidHeader,
		"../../../../etc/passwd": engine.ErrInvalidName,
	} {
		if _, err := s.Open(name); !errors.Is(err, want) {
			t.Errorf("Open(%q): %v, want %v", name, err, want)
		}
	}

	// Symbolic links out of the store are not followed, for a manifest or
	// for a blob.
	outside := t.TempDir()
	llama := tolstoyGGUF(t, gguf.Q8_0)
	if err := engine.PutOllamaModel(outside, "llama3.2", llama, ""); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(man, "linked"), 0o755)
	if err := os.Symlink(filepath.Join(outside, "manifests", "registry.ollama.ai", "library", "llama3.2", "latest"),
		filepath.Join(man, "linked", "latest")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("linked"); !errors.Is(err, engine.ErrOutsideStore) {
		t.Errorf("a manifest linked from outside: %v, want ErrOutsideStore", err)
	}
	os.Remove(filepath.Join(man, "linked", "latest"))
	b, err := os.ReadFile(filepath.Join(outside, "manifests", "registry.ollama.ai", "library", "llama3.2", "latest"))
	if err != nil {
		t.Fatal(err)
	}
	write("linked", string(b))
	os.MkdirAll(filepath.Join(dir, "blobs"), 0o755)
	if err := os.Symlink(blobOf(outside, llama), blobOf(dir, llama)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("linked"); !errors.Is(err, engine.ErrOutsideStore) {
		t.Errorf("a blob linked from outside: %v, want ErrOutsideStore", err)
	}
	// A store whose root is itself a link (to another disk) is fine.
	link := filepath.Join(t.TempDir(), "models")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	m, err := engine.NewOllamaStore(link).Open("llama3.2")
	if err != nil {
		t.Fatalf("a store behind a link: %v", err)
	}
	m.Close()
}

package backend_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/miner/backend"
)

// tolstoyItWas is what tolstoy-1m writes greedily after "It was": the
// start of the reference output in models/tolstoy-1m/README.md, produced
// by llama2.c's run.c.
const tolstoyItWas = ` awkward of the French.` + "\n" + ` "Well, you'll go to the Emperor," said the officer`

func tolstoyReq(max int) backend.Request {
	return backend.Request{Model: engine.DefaultModel, Prompt: "It was", MaxTokens: max}
}

func TestBuiltinGreedyMatchesReferenceAndCountsTokens(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{})
	defer b.Close()
	got, res, err := collect(t, b, tolstoyReq(40))
	if err != nil {
		t.Fatal(err)
	}
	if res.Text == "" || !strings.HasPrefix(tolstoyItWas, res.Text) && !strings.HasPrefix(res.Text, tolstoyItWas) {
		t.Fatalf("text %q, want the reference %q", res.Text, tolstoyItWas)
	}
	if res.TokensOut != len(got) || res.TokensOut != 40 {
		t.Fatalf("%d callbacks, TokensOut %d, want 40 of each", len(got), res.TokensOut)
	}
	if strings.Join(got, "") != res.Text {
		t.Fatal("Text differs from the streamed pieces")
	}
	if res.TokensIn != 3 || res.FinishReason != "length" || res.Backend != "builtin" || res.UsageEstimated {
		t.Fatalf("result %+v (prompt ids 1 689 318)", res)
	}
}

func TestBuiltinSeedIsDeterministic(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{})
	defer b.Close()
	run := func(seed uint64) string {
		req := tolstoyReq(30)
		req.Temperature, req.TopP, req.Seed = 1.0, 0.9, seed
		_, res, err := collect(t, b, req)
		if err != nil {
			t.Fatal(err)
		}
		return res.Text
	}
	a := run(42)
	if a == "" || run(42) != a {
		t.Fatal("the same seed gave different text")
	}
	differs := false
	for seed := uint64(1); seed <= 5 && !differs; seed++ {
		differs = run(seed) != a
	}
	if !differs {
		t.Fatal("six seeds gave the same sampled text")
	}
}

func TestBuiltinStopSequence(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{})
	defer b.Close()
	req := tolstoyReq(40)
	req.Stop = []string{"Emperor", "French"}
	got, res, err := collect(t, b, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != " awkward of the " || strings.Join(got, "") != res.Text || res.FinishReason != "stop" {
		t.Fatalf("streamed %q, result %+v", got, res)
	}
	if res.TokensOut < 4 || res.TokensOut >= 40 {
		t.Fatalf("TokensOut %d: the tokens up to the stop sequence", res.TokensOut)
	}
}

func TestBuiltinClampsMaxTokensToContext(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{})
	defer b.Close()
	res, err := b.Generate(context.Background(), tolstoyReq(100000), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.TokensIn+res.TokensOut > 256 || res.TokensOut == 0 {
		t.Fatalf("%+v: beyond tolstoy-1m's 256-token context", res)
	}
	long := backend.Request{Model: engine.DefaultModel, Prompt: strings.Repeat("Natasha ", 300), MaxTokens: 5}
	if _, err := b.Generate(context.Background(), long, nil); !errors.Is(err, backend.ErrInvalidRequest) {
		t.Fatalf("a prompt longer than the context: %v", err)
	}
}

func TestBuiltinChatMessagesAreFlattened(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{})
	defer b.Close()
	msgs := []backend.ChatMessage{{Role: "user", Content: "Who is Natasha?"}}
	chat, err := b.Generate(context.Background(), backend.Request{Model: engine.DefaultModel, Messages: msgs, MaxTokens: 12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	flat, err := b.Generate(context.Background(), backend.Request{Model: engine.DefaultModel, Prompt: "user: Who is Natasha?\nassistant:", MaxTokens: 12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if chat.Text == "" || chat != flat {
		t.Fatalf("chat %+v, flattened prompt %+v", chat, flat)
	}
}

func TestBuiltinUnknownModel(t *testing.T) {
	b := backend.NewBuiltin(t.TempDir(), backend.BuiltinOptions{})
	defer b.Close()
	for _, name := range []string{"llama3:8b", "../../etc/passwd", "."} {
		req := tolstoyReq(5)
		req.Model = name
		if _, err := b.Generate(context.Background(), req, nil); !errors.Is(err, backend.ErrUnknownModel) {
			t.Fatalf("%q: %v", name, err)
		}
	}
}

func TestBuiltinCancelFromCallback(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	res, err := b.Generate(ctx, tolstoyReq(100), func(string) error {
		if n++; n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || res.FinishReason != "canceled" || res.TokensOut != 3 {
		t.Fatalf("%+v, %v", res, err)
	}
	stop := errors.New("client gone")
	res, err = b.Generate(context.Background(), tolstoyReq(100), func(string) error { return stop })
	if !errors.Is(err, stop) || res.FinishReason != "canceled" || res.TokensOut != 1 || res.Text == "" {
		t.Fatalf("%+v, %v", res, err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// exportGGUF writes tolstoy-1m as an F32 GGUF file and returns its path.
func exportGGUF(t *testing.T) string {
	t.Helper()
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tolstoy.gguf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.WriteGGUF(f, gguf.F32); err != nil {
		t.Fatal(err)
	}
	return path
}

// importModel imports the GGUF at path into home's registry as name.
func importModel(t *testing.T, home, path, name string) {
	t.Helper()
	if _, err := engine.NewRegistry(home).Import(path, engine.ImportOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
}

func TestBuiltinServesModelsUnderHome(t *testing.T) {
	home := t.TempDir()
	src := exportGGUF(t)
	importModel(t, home, src, "tolstoy-gguf")
	importModel(t, home, src, "flat")
	// A folder that was not imported (no model.json) is not a model.
	os.MkdirAll(filepath.Join(home, "models", "stray"), 0o755)
	os.WriteFile(filepath.Join(home, "models", "stray", "model.gguf"), []byte("GGUF"), 0o644)
	var logs strings.Builder
	var logMu sync.Mutex
	b := backend.NewBuiltin(home, backend.BuiltinOptions{MaxLoaded: 1, Logger: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))})
	defer b.Close()

	ms, err := b.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "tolstoy-1m,flat,tolstoy-gguf" {
		t.Fatalf("models %v", names)
	}
	if d := ms[0]; d.ContextLength != 256 || d.Format != "llama2c" || d.ParameterSize != "984K" || d.Quantization != "F32" || d.SizeBytes == 0 {
		t.Fatalf("embedded model %+v", d)
	}
	if d := ms[2]; d.Format != "gguf" || d.SizeBytes == 0 || d.ContextLength != 256 || d.ParameterSize != "984K" || d.Quantization != "F32" {
		t.Fatalf("imported GGUF model %+v", d)
	}

	// The F32 GGUF export computes exactly what the embedded model does.
	// MaxLoaded 1 makes the models evict each other as the jobs alternate.
	want, err := b.Generate(context.Background(), tolstoyReq(20), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tolstoy-gguf", "flat", engine.DefaultModel, "tolstoy-gguf"} {
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

	logMu.Lock()
	if n := strings.Count(logs.String(), "model unloaded"); n < 3 {
		t.Fatalf("%d evictions with MaxLoaded 1:\n%s", n, logs.String())
	}
	logMu.Unlock()

	// A job can name only registry models: not a stray folder, not a file.
	for _, name := range []string{"stray", src, "../models/flat", "models/flat"} {
		req := tolstoyReq(1)
		req.Model = name
		if _, err := b.Generate(context.Background(), req, nil); !errors.Is(err, backend.ErrUnknownModel) {
			t.Fatalf("%q: %v, want ErrUnknownModel", name, err)
		}
	}
}

func TestBuiltinConcurrentJobs(t *testing.T) {
	home := t.TempDir()
	importModel(t, home, exportGGUF(t), "copy")
	b := backend.NewBuiltin(home, backend.BuiltinOptions{Threads: 1, MaxLoaded: 1})
	defer b.Close()
	want, err := b.Generate(context.Background(), tolstoyReq(16), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := tolstoyReq(16)
			if i%2 == 1 {
				req.Model = "copy"
			}
			res, err := b.Generate(context.Background(), req, nil)
			if err == nil && res.Text != want.Text {
				err = errors.New("different text: " + res.Text)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuiltinCustomOpen(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{
		List: func() ([]backend.ModelInfo, error) { return []backend.ModelInfo{{Name: "alias"}}, nil },
		Open: func(name string) (*engine.Model, error) {
			if name != "alias" {
				return nil, engine.ErrUnknownModel
			}
			return engine.LoadDefault()
		},
	})
	defer b.Close()
	ms, err := b.Models(context.Background())
	if err != nil || len(ms) != 1 || ms[0].Name != "alias" {
		t.Fatalf("%+v, %v", ms, err)
	}
	req := tolstoyReq(5)
	req.Model = "alias"
	if res, err := b.Generate(context.Background(), req, nil); err != nil || res.TokensOut != 5 {
		t.Fatalf("%+v, %v", res, err)
	}
	req.Model = "other"
	if _, err := b.Generate(context.Background(), req, nil); !errors.Is(err, backend.ErrUnknownModel) {
		t.Fatal(err)
	}
}

// tolstoyWithTemplate is tolstoy-1m as a GGUF model with the chat template
// tmpl in its metadata.
func tolstoyWithTemplate(t *testing.T, tmpl string) *engine.Model {
	t.Helper()
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.WriteGGUF(&b, gguf.F32); err != nil {
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
	w.Set("tokenizer.chat_template", tmpl)
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := w.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	tm, err := engine.LoadGGUF(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// TestBuiltinChatUsesTheModelsTemplate: a model with a chat template gets
// its messages rendered as llama.cpp renders them (ChatML here), not
// flattened; one with a template the engine does not render refuses them
// as an invalid request, and still completes prompts.
func TestBuiltinChatUsesTheModelsTemplate(t *testing.T) {
	models := map[string]*engine.Model{
		"chatml": tolstoyWithTemplate(t, "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
		"gemma":  tolstoyWithTemplate(t, "{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\\n' + message['content'] + '<end_of_turn>\\n' }}{% endfor %}"),
	}
	b := backend.NewBuiltin("", backend.BuiltinOptions{Open: func(name string) (*engine.Model, error) {
		if m, ok := models[name]; ok {
			return m, nil
		}
		return nil, backend.ErrUnknownModel
	}})
	defer b.Close()
	msgs := []backend.ChatMessage{{Role: "system", Content: "Be Tolstoy."}, {Role: "user", Content: "Who is Natasha?"}}
	chat, err := b.Generate(context.Background(), backend.Request{Model: "chatml", Messages: msgs, MaxTokens: 12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rendered := "<|im_start|>system\nBe Tolstoy.<|im_end|>\n<|im_start|>user\nWho is Natasha?<|im_end|>\n<|im_start|>assistant\n"
	want, err := b.Generate(context.Background(), backend.Request{Model: "chatml", Prompt: rendered, MaxTokens: 12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if chat.Text == "" || chat != want {
		t.Fatalf("chat %+v, the rendered prompt %+v", chat, want)
	}
	flat, err := b.Generate(context.Background(), backend.Request{Model: "chatml", Prompt: backend.FlattenMessages(msgs), MaxTokens: 12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if flat.TokensIn == chat.TokensIn {
		t.Fatalf("the flattened prompt has as many tokens (%d) as the template's", flat.TokensIn)
	}

	_, err = b.Generate(context.Background(), backend.Request{Model: "gemma", Messages: msgs, MaxTokens: 2}, nil)
	if !errors.Is(err, backend.ErrInvalidRequest) || !errors.Is(err, engine.ErrChatTemplate) {
		t.Fatalf("a template the engine does not render: %v", err)
	}
	if _, err := b.Generate(context.Background(), backend.Request{Model: "gemma", Prompt: "It was", MaxTokens: 2}, nil); err != nil {
		t.Fatalf("a prompt to that model: %v", err)
	}
}

package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/verify"
)

// BuiltinOptions configure the built-in backend. The zero value is usable.
type BuiltinOptions struct {
	// Threads per generation for the engine's matrix products; 0 means
	// runtime.GOMAXPROCS(0).
	Threads int
	// MaxLoaded is how many models stay loaded when idle (least recently
	// used ones are closed first); 0 means 2. A model in use is never
	// closed.
	MaxLoaded int
	// Logger receives model loads and evictions; nil discards them.
	Logger *slog.Logger
	// ModelsDir is Ollama's model store (e.g. ~/.ollama/models), whose
	// GGUF models are then served by their Ollama names
	// ("llama3.2:latest"; see engine.OllamaStore). Used with a home only.
	ModelsDir string
	// Open and List, when set, replace the engine's registry (for tests,
	// or to serve models from elsewhere). Open returns an error wrapping
	// ErrUnknownModel or engine.ErrUnknownModel for a name it does not
	// know.
	Open func(name string) (*engine.Model, error)
	List func() ([]ModelInfo, error)
}

// Builtin runs jobs in process on the built-in engine (package engine).
//
// It serves the models of the engine's registry under home:
// engine.DefaultModel (tolstoy-1m), embedded in the binary, and the
// models imported into <home>/models (`aitbc model import`), and those of
// Ollama's store when BuiltinOptions.ModelsDir is set. A job can name only
// those: never a file path. Loaded models are cached (see
// BuiltinOptions.MaxLoaded).
//
// Messages are rendered with the model's chat template (GGUF
// tokenizer.chat_template, as llama.cpp renders it: see
// engine.RenderChat); a model without one (tolstoy-1m, llama2.c
// checkpoints) gets them flattened into a prompt by FlattenMessages, and a
// model whose template the engine does not render refuses them
// (ErrInvalidRequest). Stop sequences are applied here, on the decoded
// text. MaxTokens is clamped to what the model's context leaves after the
// prompt (the result then ends with FinishLength). TokensIn counts the
// prompt's tokens including BOS; TokensOut the generated tokens, excluding
// the final end-of-sequence token.
type Builtin struct {
	reg  *engine.Registry
	opts BuiltinOptions
	log  *slog.Logger

	mu    sync.Mutex
	cache map[string]*loadedModel
	tick  uint64

	hashes sync.Map // model name → SHA-256 of its file (attest.go)
}

// loadedModel is a cache entry; ready is closed once m or err is set.
type loadedModel struct {
	ready chan struct{}
	m     *engine.Model
	err   error
	refs  int    // generations using m
	used  uint64 // last acquisition, for LRU
}

var _ Backend = (*Builtin)(nil)

// NewBuiltin returns the built-in backend for the model registry of home
// (the AITBC state directory; with "" only the embedded model is found).
func NewBuiltin(home string, opts BuiltinOptions) *Builtin {
	if opts.MaxLoaded <= 0 {
		opts.MaxLoaded = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Builtin{opts: opts, log: log, cache: map[string]*loadedModel{}}
	if home != "" {
		b.reg = engine.NewRegistry(home).WithOllama(opts.ModelsDir)
	}
	return b
}

// Name implements Backend.
func (b *Builtin) Name() string { return "builtin" }

// Models implements Backend: the registry's models, described from their
// manifests without loading them.
func (b *Builtin) Models(ctx context.Context) ([]ModelInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("backend: builtin: %w", err)
	}
	if b.opts.List != nil {
		ms, err := b.opts.List()
		if err != nil {
			return nil, fmt.Errorf("%w: builtin: listing models: %w", ErrBackendFailed, err)
		}
		return ms, nil
	}
	if b.reg == nil {
		m, release, err := b.acquire(ctx, engine.DefaultModel)
		if err != nil {
			return nil, err
		}
		defer release()
		return []ModelInfo{modelInfo(m.Info())}, nil
	}
	list, err := b.reg.List()
	if err != nil {
		return nil, fmt.Errorf("%w: builtin: listing models: %w", ErrBackendFailed, err)
	}
	out := make([]ModelInfo, 0, len(list))
	for _, mi := range list {
		out = append(out, modelInfo(mi))
	}
	return out, nil
}

// modelInfo translates the engine's description of a model.
func modelInfo(mi engine.ModelInfo) ModelInfo {
	return ModelInfo{
		Name: mi.Name, SizeBytes: mi.Size, Family: "llama", Format: string(mi.Format),
		ParameterSize: paramSize(mi.Params), Quantization: mi.TensorType, ContextLength: mi.Config.SeqLen,
	}
}

// paramSize writes a parameter count the way Ollama does ("984K", "1.1B").
func paramSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// open loads a model by name.
func (b *Builtin) open(name string) (*engine.Model, error) {
	var (
		m   *engine.Model
		err error
	)
	switch {
	case b.opts.Open != nil:
		m, err = b.opts.Open(name)
	case name == engine.DefaultModel:
		m, err = engine.LoadDefault()
	case b.reg == nil || !b.imported(name):
		where := "only " + engine.DefaultModel + " is served without a home"
		if b.reg != nil {
			where = "not imported into " + b.reg.Dir()
			if s := b.reg.Ollama(); s != nil {
				where += " and not in the Ollama store " + s.Dir()
			}
		}
		return nil, fmt.Errorf("%w: builtin: %q (%s)", ErrUnknownModel, name, where)
	default:
		m, err = b.reg.Open(name)
	}
	switch {
	case err == nil:
		return m, nil
	case errors.Is(err, ErrUnknownModel):
		return nil, err
	case errors.Is(err, engine.ErrUnknownModel):
		return nil, fmt.Errorf("%w: builtin: %w", ErrUnknownModel, err)
	}
	return nil, fmt.Errorf("%w: builtin: loading %q: %w", ErrBackendFailed, name, err)
}

// imported reports whether name is a model imported into the registry or
// one of its Ollama store. It is checked before the registry opens a name,
// because the registry also accepts the path of any file, which a job must
// not be able to name.
func (b *Builtin) imported(name string) bool {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `\`) || strings.ContainsRune(name, 0) {
		return false
	}
	if !strings.Contains(name, "/") {
		if st, err := os.Stat(filepath.Join(b.reg.Dir(), name, "model.json")); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	// Ollama names ("someone/model:tag") may hold '/': the store parses
	// them into parts that cannot leave its manifests folder.
	return b.reg.Ollama() != nil && b.reg.Ollama().Has(name)
}

// canonical is the name a model is cached under: an Ollama name in its
// listed form ("llama3.2" and "registry.ollama.ai/library/llama3.2" are
// "llama3.2:latest"), so that two spellings do not load a model twice. An
// imported model of the same name comes first, as in the registry.
func (b *Builtin) canonical(name string) string {
	if b.reg == nil || b.reg.Ollama() == nil || b.opts.Open != nil || name == engine.DefaultModel {
		return name
	}
	if !strings.Contains(name, "/") {
		if _, err := os.Stat(filepath.Join(b.reg.Dir(), name, "model.json")); err == nil {
			return name
		}
	}
	if n, err := engine.ParseOllamaName(name); err == nil && b.reg.Ollama().Has(name) {
		return n.Short()
	}
	return name
}

// acquire returns a loaded model and the function that releases it,
// loading it on first use. Concurrent first uses share one load.
func (b *Builtin) acquire(ctx context.Context, name string) (*engine.Model, func(), error) {
	for {
		b.mu.Lock()
		e, ok := b.cache[name]
		if !ok {
			e = &loadedModel{ready: make(chan struct{})}
			b.cache[name] = e
			b.mu.Unlock()
			m, err := b.open(name)
			b.mu.Lock()
			e.m, e.err = m, err
			close(e.ready)
			if err != nil {
				delete(b.cache, name) // the next job tries again
				b.mu.Unlock()
				return nil, nil, err
			}
			b.log.Info("model loaded", "model", name, "format", m.Format(), "tensors", m.TensorType(), "bytes", m.Size())
			// Still holding b.mu: no eviction can come between.
		} else {
			b.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("backend: builtin: waiting for %q to load: %w", name, ctx.Err())
			}
			if e.err != nil {
				return nil, nil, e.err
			}
			b.mu.Lock()
			if b.cache[name] != e { // evicted between load and use: start over
				b.mu.Unlock()
				continue
			}
		}
		e.refs++
		b.tick++
		e.used = b.tick
		evicted := b.evictLocked()
		b.mu.Unlock()
		b.closeAll(evicted)
		var once sync.Once
		return e.m, func() { once.Do(func() { b.release(e) }) }, nil
	}
}

func (b *Builtin) release(e *loadedModel) {
	b.mu.Lock()
	e.refs--
	evicted := b.evictLocked()
	b.mu.Unlock()
	b.closeAll(evicted)
}

// evictLocked removes idle models, least recently used first, until at
// most MaxLoaded remain, and returns them for closing outside the lock.
func (b *Builtin) evictLocked() map[string]*engine.Model {
	var out map[string]*engine.Model
	for len(b.cache) > b.opts.MaxLoaded {
		victim, oldest := "", uint64(0)
		for name, e := range b.cache {
			select {
			case <-e.ready:
			default:
				continue // loading
			}
			if e.refs == 0 && (victim == "" || e.used < oldest) {
				victim, oldest = name, e.used
			}
		}
		if victim == "" {
			break
		}
		if out == nil {
			out = map[string]*engine.Model{}
		}
		out[victim] = b.cache[victim].m
		delete(b.cache, victim)
	}
	return out
}

func (b *Builtin) closeAll(models map[string]*engine.Model) {
	for name, m := range models {
		if err := m.Close(); err != nil {
			b.log.Warn("closing model", "model", name, "err", err)
		} else {
			b.log.Info("model unloaded", "model", name)
		}
	}
}

// Close unloads every model. It must not be called while a Generate is
// running.
func (b *Builtin) Close() error {
	b.mu.Lock()
	all := map[string]*engine.Model{}
	for name, e := range b.cache {
		select {
		case <-e.ready:
			if e.m != nil {
				all[name] = e.m
			}
			delete(b.cache, name)
		default:
		}
	}
	b.mu.Unlock()
	b.closeAll(all)
	return nil
}

// errStopSequence ends an engine generation when a stop sequence matched.
// It wraps verify.ErrStopString, so that the attestation records the stop.
var errStopSequence = fmt.Errorf("backend: stop sequence: %w", verify.ErrStopString)

// Generate implements Backend.
func (b *Builtin) Generate(ctx context.Context, req Request, onToken func(string) error) (Result, error) {
	res := Result{Backend: b.Name()}
	if err := req.Validate(); err != nil {
		return res, err
	}
	if hasImages(req.Messages) { // vision.go: the engine reads text only
		return res, noVision("built-in", req.Model)
	}
	m, release, err := b.acquire(ctx, b.canonical(req.Model))
	if err != nil {
		if isCtxErr(err) {
			return canceled(res, err)
		}
		return res, err
	}
	defer release()

	var (
		prompt string
		msgs   []engine.ChatMessage
		n      int
	)
	switch {
	case len(req.Messages) > 0 && m.ChatTemplate() != "":
		msgs = make([]engine.ChatMessage, len(req.Messages))
		for i, cm := range req.Messages {
			msgs[i] = engine.ChatMessage{Role: cm.Role, Content: cm.Content}
		}
		ids, err := m.EncodeChat(msgs)
		if err != nil {
			return res, fmt.Errorf("%w: builtin: %s: %w", ErrInvalidRequest, req.Model, err)
		}
		n = len(ids)
	case len(req.Messages) > 0:
		prompt = FlattenMessages(req.Messages)
	default:
		prompt = req.Prompt
	}
	if msgs == nil {
		n = len(m.Tokenizer().Encode(prompt, true)) // an upper bound: with BOS
	}
	seqLen := m.Config().SeqLen
	room := seqLen - n
	if room < 1 {
		return res, fmt.Errorf("%w: builtin: the prompt is %d tokens, %s's context is %d", ErrInvalidRequest, n, req.Model, seqLen)
	}
	em := newEmitter(req.Stop, onToken)
	out, att, err := b.generate(ctx, req.Model, m, engine.GenerateRequest{
		Prompt: prompt, Messages: msgs, MaxTokens: min(req.MaxTokens, room), Temperature: req.Temperature,
		TopP: req.TopP, Seed: req.Seed, Threads: b.opts.Threads,
	}, req.Stop, func(t engine.Token) error {
		stopped, err := em.write(t.Text)
		if err != nil {
			return err
		}
		if stopped {
			return errStopSequence
		}
		return nil
	})
	res.TokensIn, res.TokensOut = len(out.PromptTokens), len(out.Tokens)
	switch {
	case errors.Is(err, errStopSequence) && em.cbErr == nil:
		res.Text, res.FinishReason = em.text(), FinishStop
		res.Attestation = string(att) // the tokens up to the one that completed the stop
		return res, nil
	case em.cbErr != nil:
		res.Text = em.text()
		return canceled(res, errCallback("builtin", em.cbErr))
	case err != nil && (ctx.Err() != nil || isCtxErr(err)):
		res.Text = em.text()
		return canceled(res, fmt.Errorf("backend: builtin: %w", err))
	case err != nil:
		res.Text = em.text()
		if errors.Is(err, engine.ErrPromptTooLong) || errors.Is(err, engine.ErrMaxTokens) ||
			errors.Is(err, engine.ErrTemperature) || errors.Is(err, engine.ErrTopP) {
			return res, fmt.Errorf("%w: builtin: %w", ErrInvalidRequest, err)
		}
		return res, fmt.Errorf("%w: builtin: %w", ErrBackendFailed, err)
	}
	if err := em.flush(); err != nil {
		res.Text = em.text()
		return canceled(res, errCallback("builtin", err))
	}
	res.Text, res.FinishReason = em.text(), FinishStop
	if out.Stop == engine.StopMaxTokens {
		res.FinishReason = FinishLength
	}
	res.Attestation = string(att)
	return res, nil
}

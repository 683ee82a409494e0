package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/aitbc/aitbc/internal/engine"
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
	// Open, when set, replaces how a model name is found and loaded (for
	// instance by an on-disk registry); it returns an error wrapping
	// ErrUnknownModel or engine.ErrUnknownModel for a name it does not
	// know. List, when set, replaces how the names are listed.
	Open func(name string) (*engine.Model, error)
	List func() ([]string, error)
}

// Builtin runs jobs in process on the built-in engine (package engine).
//
// Models are found by name: engine.DefaultModel (tolstoy-1m) is the model
// embedded in the binary; any other name N is looked up under
// <home>/models as N/model.gguf, then N/model.bin (a llama2.c checkpoint
// with N/tokenizer.bin beside it), then N.gguf. Loaded models are cached
// (see BuiltinOptions.MaxLoaded).
//
// The engine has no chat template, so Messages are flattened into a prompt
// by FlattenMessages. Stop sequences are applied here, on the decoded
// text. MaxTokens is clamped to what the model's context leaves after the
// prompt (the result then ends with FinishLength). TokensIn counts the
// prompt's tokens including BOS; TokensOut the generated tokens, excluding
// the final end-of-sequence token.
type Builtin struct {
	home string
	opts BuiltinOptions
	log  *slog.Logger

	mu    sync.Mutex
	cache map[string]*loadedModel
	tick  uint64
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

// NewBuiltin returns the built-in backend for the models under home
// (the AITBC state directory; "" serves only the embedded model).
func NewBuiltin(home string, opts BuiltinOptions) *Builtin {
	if opts.MaxLoaded <= 0 {
		opts.MaxLoaded = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Builtin{home: home, opts: opts, log: log, cache: map[string]*loadedModel{}}
}

// Name implements Backend.
func (b *Builtin) Name() string { return "builtin" }

// ModelsDir is where models other than the embedded one are looked up
// ("" when there is no home).
func (b *Builtin) ModelsDir() string {
	if b.home == "" {
		return ""
	}
	return filepath.Join(b.home, "models")
}

// Models implements Backend: the embedded model and those found under
// ModelsDir. Details come from the loaded model for models already loaded
// (the embedded one is always loaded here, which is cheap); for the others
// only the file's size and format are known without loading it.
func (b *Builtin) Models(ctx context.Context) ([]ModelInfo, error) {
	names, err := b.names()
	if err != nil {
		return nil, err
	}
	out := make([]ModelInfo, 0, len(names))
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("backend: builtin: %w", err)
		}
		if name == engine.DefaultModel {
			m, release, err := b.acquire(ctx, name)
			if err != nil {
				return nil, err
			}
			out = append(out, modelInfo(name, m))
			release()
			continue
		}
		if info, ok := b.peekInfo(name); ok {
			out = append(out, info)
			continue
		}
		info := ModelInfo{Name: name, Family: "llama"}
		if path, format, ok := b.find(name); ok {
			if st, err := os.Stat(path); err == nil {
				info.SizeBytes = st.Size()
			}
			info.Format = string(format)
		}
		out = append(out, info)
	}
	return out, nil
}

// modelInfo describes a loaded model.
func modelInfo(name string, m *engine.Model) ModelInfo {
	cfg := m.Config()
	q := "F32"
	if m.Quantized() {
		q = "Q8_0"
	}
	return ModelInfo{
		Name: name, SizeBytes: m.Size(), Family: "llama", Format: string(m.Format()),
		ParameterSize: paramSize(cfg.Params()), Quantization: q, ContextLength: cfg.SeqLen,
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

// names lists the model names, the embedded one first.
func (b *Builtin) names() ([]string, error) {
	if b.opts.List != nil {
		names, err := b.opts.List()
		if err != nil {
			return nil, fmt.Errorf("backend: builtin: listing models: %w", err)
		}
		return names, nil
	}
	seen := map[string]bool{engine.DefaultModel: true}
	var found []string
	dir := b.ModelsDir()
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("backend: builtin: listing models: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if !e.IsDir() {
				if !strings.HasSuffix(name, ".gguf") {
					continue
				}
				name = strings.TrimSuffix(name, ".gguf")
			}
			if seen[name] || !validName(name) {
				continue
			}
			if _, _, ok := b.find(name); ok {
				seen[name] = true
				found = append(found, name)
			}
		}
	}
	sort.Strings(found)
	return append([]string{engine.DefaultModel}, found...), nil
}

// validName refuses names that could leave the models directory.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`) && !strings.ContainsRune(name, 0)
}

// find locates the file of a model under ModelsDir.
func (b *Builtin) find(name string) (path string, format engine.Format, ok bool) {
	dir := b.ModelsDir()
	if dir == "" || !validName(name) {
		return "", "", false
	}
	for _, c := range []struct {
		path   string
		format engine.Format
	}{
		{filepath.Join(dir, name, "model.gguf"), engine.FormatGGUF},
		{filepath.Join(dir, name, "model.bin"), engine.FormatLlama2C},
		{filepath.Join(dir, name+".gguf"), engine.FormatGGUF},
	} {
		if st, err := os.Stat(c.path); err == nil && st.Mode().IsRegular() {
			return c.path, c.format, true
		}
	}
	return "", "", false
}

// open loads a model by name.
func (b *Builtin) open(name string) (*engine.Model, error) {
	if b.opts.Open != nil {
		m, err := b.opts.Open(name)
		if err != nil {
			if errors.Is(err, engine.ErrUnknownModel) && !errors.Is(err, ErrUnknownModel) {
				return nil, fmt.Errorf("%w: builtin: %w", ErrUnknownModel, err)
			}
			if !errors.Is(err, ErrUnknownModel) {
				return nil, fmt.Errorf("%w: builtin: loading %q: %w", ErrBackendFailed, name, err)
			}
			return nil, err
		}
		return m, nil
	}
	if name == engine.DefaultModel {
		m, err := engine.LoadDefault()
		if err != nil {
			return nil, fmt.Errorf("%w: builtin: %w", ErrBackendFailed, err)
		}
		return m, nil
	}
	path, _, ok := b.find(name)
	if !ok {
		where := "no models directory"
		if dir := b.ModelsDir(); dir != "" {
			where = "not found under " + dir
		}
		return nil, fmt.Errorf("%w: builtin: %q (%s)", ErrUnknownModel, name, where)
	}
	m, err := engine.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: builtin: loading %q: %w", ErrBackendFailed, name, err)
	}
	return m, nil
}

// peekInfo describes a model if it is loaded, without acquiring it. It
// reads the model under b.mu, while no eviction can close it.
func (b *Builtin) peekInfo(name string) (ModelInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.cache[name]; ok {
		select {
		case <-e.ready:
			if e.m != nil {
				return modelInfo(name, e.m), true
			}
		default:
		}
	}
	return ModelInfo{}, false
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
			b.log.Info("model loaded", "model", name, "format", m.Format(), "bytes", m.Size())
			b.mu.Unlock()
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
		}
		b.mu.Lock()
		if b.cache[name] != e { // evicted between load and use: start over
			b.mu.Unlock()
			continue
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
var errStopSequence = errors.New("backend: stop sequence")

// Generate implements Backend.
func (b *Builtin) Generate(ctx context.Context, req Request, onToken func(string) error) (Result, error) {
	res := Result{Backend: b.Name()}
	if err := req.Validate(); err != nil {
		return res, err
	}
	m, release, err := b.acquire(ctx, req.Model)
	if err != nil {
		if isCtxErr(err) {
			return canceled(res, err)
		}
		return res, err
	}
	defer release()

	prompt := req.Prompt
	if len(req.Messages) > 0 {
		prompt = FlattenMessages(req.Messages)
	}
	seqLen := m.Config().SeqLen
	n := len(m.Tokenizer().Encode(prompt, true)) // an upper bound: with BOS
	room := seqLen - n
	if room < 1 {
		return res, fmt.Errorf("%w: builtin: the prompt is %d tokens, %s's context is %d", ErrInvalidRequest, n, req.Model, seqLen)
	}
	em := newEmitter(req.Stop, onToken)
	out, err := m.Generate(ctx, engine.GenerateRequest{
		Prompt: prompt, MaxTokens: min(req.MaxTokens, room), Temperature: req.Temperature,
		TopP: req.TopP, Seed: req.Seed, Threads: b.opts.Threads,
	}, func(t engine.Token) error {
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
	return res, nil
}

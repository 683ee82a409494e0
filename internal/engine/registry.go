package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Registry is the set of models known to a machine: the embedded default
// plus the models imported under <home>/models/<name>/. An imported model's
// folder holds model.gguf, or model.bin and tokenizer.bin, and model.json
// describing it.
type Registry struct {
	dir    string
	ollama *OllamaStore // nil unless WithOllama
}

// NewRegistry returns the registry of the AITBC state directory home.
func NewRegistry(home string) *Registry { return &Registry{dir: filepath.Join(home, "models")} }

// WithOllama returns the registry that also serves the models of
// Ollama's store at dir (e.g. ~/.ollama/models) by their Ollama names; an
// empty dir returns r unchanged. Imported models and the default keep
// their names: "llama3.2" is an imported model if one has that name.
func (r *Registry) WithOllama(dir string) *Registry {
	if dir == "" {
		return r
	}
	c := *r
	c.ollama = NewOllamaStore(dir)
	return &c
}

// Ollama is the Ollama store the registry reads, or nil.
func (r *Registry) Ollama() *OllamaStore { return r.ollama }

// Serves reports whether name is a model name the registry knows (the
// default, an imported model, or a model of its Ollama store), as opposed
// to a file path, which Open also accepts but a job must never name.
func (r *Registry) Serves(name string) bool {
	if name == DefaultModel {
		return true
	}
	if validName.MatchString(name) {
		if st, err := os.Stat(filepath.Join(r.dir, name, manifestFile)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return r.ollama != nil && r.ollama.Has(name)
}

// Dir is the folder holding imported models.
func (r *Registry) Dir() string { return r.dir }

// ModelInfo describes a model in the registry (and is its model.json).
type ModelInfo struct {
	Name       string    `json:"name"`
	Format     Format    `json:"format"`
	TensorType string    `json:"tensor_type"` // F32, F16 or Q8_0
	Size       int64     `json:"size_bytes"`  // model file(s)
	Params     int64     `json:"params"`
	Config     Config    `json:"config"`
	Builtin    bool      `json:"builtin,omitempty"`
	Source     string    `json:"source,omitempty"` // the imported file
	Imported   time.Time `json:"imported,omitzero"`
	Path       string    `json:"path,omitempty"` // folder of an imported model
}

// Info describes a loaded model.
func (m *Model) Info() ModelInfo {
	return ModelInfo{Name: m.name, Format: m.format, TensorType: m.dtype, Size: m.size, Params: m.cfg.Params(), Config: m.cfg}
}

const (
	manifestFile  = "model.json"
	ggufFile      = "model.gguf"
	llama2cFile   = "model.bin"
	tokenizerFile = "tokenizer.bin"
)

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// List returns the embedded default model and every imported model, by
// name. Folders without a readable model.json are skipped.
func (r *Registry) List() ([]ModelInfo, error) {
	def, err := LoadDefault()
	if err != nil {
		return nil, err
	}
	info := def.Info()
	info.Builtin = true
	info.Source = "embedded"
	out := []ModelInfo{info}
	entries, err := os.ReadDir(r.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("engine: %w", err)
	}
	var imported []ModelInfo
	for _, e := range entries {
		if !e.IsDir() || !validName.MatchString(e.Name()) {
			continue
		}
		mi, err := r.manifest(e.Name())
		if err != nil {
			continue
		}
		imported = append(imported, mi)
	}
	sort.Slice(imported, func(i, j int) bool { return imported[i].Name < imported[j].Name })
	out = append(out, imported...)
	if r.ollama != nil {
		// Models the engine cannot serve (another architecture, no GGUF)
		// are left out; OllamaStore.List says why.
		entries, err := r.ollama.List()
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Err == nil {
				out = append(out, e.Info)
			}
		}
	}
	return out, nil
}

func (r *Registry) manifest(name string) (ModelInfo, error) {
	var mi ModelInfo
	b, err := os.ReadFile(filepath.Join(r.dir, name, manifestFile))
	if err != nil {
		return mi, err
	}
	if err := json.Unmarshal(b, &mi); err != nil {
		return mi, fmt.Errorf("engine: %s: %w", filepath.Join(r.dir, name, manifestFile), err)
	}
	mi.Name = name
	mi.Path = filepath.Join(r.dir, name)
	return mi, nil
}

// Open loads a model by name: the embedded default (DefaultModel, or an
// empty name), an imported model, a model of the Ollama store (see
// WithOllama) or, when name is the path of an existing file, that file
// (see Open).
func (r *Registry) Open(name string) (*Model, error) {
	if name == "" || name == DefaultModel {
		return LoadDefault()
	}
	if validName.MatchString(name) {
		mi, err := r.manifest(name)
		if err == nil {
			var m *Model
			switch mi.Format {
			case FormatGGUF:
				m, err = Open(filepath.Join(mi.Path, ggufFile))
			default:
				m, err = OpenLlama2C(filepath.Join(mi.Path, llama2cFile), filepath.Join(mi.Path, tokenizerFile))
			}
			if err != nil {
				return nil, err
			}
			m.name = name
			return m, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if r.ollama != nil && r.ollama.Has(name) {
		return r.ollama.Open(name)
	}
	if st, err := os.Stat(name); err == nil && st.Mode().IsRegular() {
		return Open(name)
	}
	where := r.dir
	if r.ollama != nil {
		where += " or the Ollama store " + r.ollama.Dir()
	}
	return nil, fmt.Errorf("%w: %q (not built in, not in %s, not a file)", ErrUnknownModel, name, where)
}

// Resolve loads the model called name from the registry of home.
func Resolve(home, name string) (*Model, error) { return NewRegistry(home).Open(name) }

// ImportOptions configure Registry.Import.
type ImportOptions struct {
	Name      string // registry name; default: derived from the file name
	Tokenizer string // tokenizer.bin of a llama2.c checkpoint
	Force     bool   // replace an imported model of the same name
}

// Import validates a model file (fully loading it) and copies it into the
// registry. A llama2.c checkpoint needs Tokenizer (or a tokenizer.bin in
// its folder); a GGUF file carries its own tokenizer.
func (r *Registry) Import(src string, opts ImportOptions) (ModelInfo, error) {
	var mi ModelInfo
	name := opts.Name
	if name == "" {
		name = nameFromPath(src)
	}
	if !validName.MatchString(name) {
		return mi, fmt.Errorf("%w: %q (lower-case letters, digits, '.', '_', '-'; at most 64)", ErrInvalidName, name)
	}
	if name == DefaultModel {
		return mi, fmt.Errorf("%w: %q is the built-in model", ErrModelExists, name)
	}
	final := filepath.Join(r.dir, name)
	if _, err := os.Stat(final); err == nil && !opts.Force {
		return mi, fmt.Errorf("%w: %q in %s (use --force to replace it)", ErrModelExists, name, r.dir)
	}

	data, release, err := mapFile(src)
	if err != nil {
		return mi, fmt.Errorf("engine: %w", err)
	}
	format := detect(data)
	release()
	tok := opts.Tokenizer
	switch {
	case format == FormatGGUF && tok != "":
		return mi, fmt.Errorf("%w: a GGUF file carries its own tokenizer; import it without one", ErrUnsupported)
	case format == FormatLlama2C && tok == "":
		tok = filepath.Join(filepath.Dir(src), tokenizerFile)
	}
	var m *Model
	if format == FormatGGUF {
		m, err = Open(src)
	} else {
		m, err = OpenLlama2C(src, tok)
	}
	if err != nil {
		return mi, err
	}
	m.Close()

	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return mi, fmt.Errorf("engine: %w", err)
	}
	tmp, err := os.MkdirTemp(r.dir, ".import-"+name+"-")
	if err != nil {
		return mi, fmt.Errorf("engine: %w", err)
	}
	defer os.RemoveAll(tmp)
	files := map[string]string{ggufFile: src}
	if format == FormatLlama2C {
		files = map[string]string{llama2cFile: src, tokenizerFile: tok}
	}
	for dst, from := range files {
		if err := copyFile(filepath.Join(tmp, dst), from); err != nil {
			return mi, err
		}
	}
	// Load the copy: the registry must never hold a model that fails.
	if format == FormatGGUF {
		m, err = Open(filepath.Join(tmp, ggufFile))
	} else {
		m, err = OpenLlama2C(filepath.Join(tmp, llama2cFile), filepath.Join(tmp, tokenizerFile))
	}
	if err != nil {
		return mi, fmt.Errorf("engine: the copied model does not load: %w", err)
	}
	mi = m.Info()
	m.Close()
	mi.Name = name
	mi.Source, _ = filepath.Abs(src)
	mi.Imported = time.Now().UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(mi, "", "  ")
	if err != nil {
		return mi, fmt.Errorf("engine: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, manifestFile), append(b, '\n'), 0o644); err != nil {
		return mi, fmt.Errorf("engine: %w", err)
	}
	if opts.Force {
		if err := os.RemoveAll(final); err != nil {
			return mi, fmt.Errorf("engine: %w", err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return mi, fmt.Errorf("engine: %w", err)
	}
	mi.Path = final
	return mi, nil
}

// nameFromPath derives a registry name from a file name: lower case, other
// characters replaced by '-'.
func nameFromPath(p string) string {
	base := strings.ToLower(baseName(p))
	var b strings.Builder
	for _, c := range base {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-._")
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("engine: copying %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("engine: %w", err)
	}
	return out.Close()
}

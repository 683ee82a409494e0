package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Ollama's model store (what `ollama pull` writes under ~/.ollama/models,
// or $OLLAMA_MODELS), as Ollama's server/modelpath.go and
// types/model/name.go lay it out:
//
//	manifests/<host>/<namespace>/<model>/<tag>   JSON: {"schemaVersion":2, "mediaType":..., "config":{...}, "layers":[{"mediaType","digest","size"}, ...]}
//	blobs/sha256-<64 hex>                        content-addressed layers
//
// A name is [host/][namespace/]model[:tag], filled with
// registry.ollama.ai, library and latest: "llama3.2" is
// registry.ollama.ai/library/llama3.2:latest. The weights are the layer of
// media type application/vnd.ollama.image.model, a GGUF file.
const (
	OllamaHost      = "registry.ollama.ai"
	OllamaNamespace = "library"
	OllamaTag       = "latest"
	// OllamaModelMediaType is the media type of the GGUF layer.
	OllamaModelMediaType = "application/vnd.ollama.image.model"

	ollamaMaxManifest = 1 << 20 // bytes; Ollama's manifests are a few hundred
	ollamaMaxPart     = 128     // characters per name part (Ollama's MaxNamePartLen)
	ollamaMaxModels   = 10000   // manifests listed at most
)

var (
	// ErrDigestMismatch means a blob's content does not hash to the digest
	// its manifest names (a corrupt or tampered store).
	ErrDigestMismatch = errors.New("engine: blob does not match its sha256 digest")
	// ErrOutsideStore means a manifest or blob resolves (through symbolic
	// links) to a path outside the model store.
	ErrOutsideStore = errors.New("engine: path outside the model store")
)

// OllamaName is a parsed Ollama model name with defaults filled in.
type OllamaName struct {
	Host, Namespace, Model, Tag string
}

// String is the full name, host/namespace/model:tag.
func (n OllamaName) String() string {
	return n.Host + "/" + n.Namespace + "/" + n.Model + ":" + n.Tag
}

// Short is the name as `ollama list` shows it: host and namespace left out
// when they are the defaults, the tag always written ("llama3.2:latest").
func (n OllamaName) Short() string {
	switch {
	case n.Host != OllamaHost:
		return n.String()
	case n.Namespace != OllamaNamespace:
		return n.Namespace + "/" + n.Model + ":" + n.Tag
	}
	return n.Model + ":" + n.Tag
}

// ParseOllamaName parses [host/][namespace/]model[:tag]. Each part is
// letters, digits, '_', '-' and '.' (no '.' in a namespace), starts with a
// letter, digit or '_', has no "..", and is at most 128 characters: so a
// name can never climb out of the store's manifests folder.
func ParseOllamaName(s string) (OllamaName, error) {
	n := OllamaName{Host: OllamaHost, Namespace: OllamaNamespace, Tag: OllamaTag}
	rest := s
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i:], "/") {
		n.Tag, rest = rest[i+1:], rest[:i]
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		n.Model = parts[0]
	case 2:
		n.Namespace, n.Model = parts[0], parts[1]
	case 3:
		n.Host, n.Namespace, n.Model = parts[0], parts[1], parts[2]
	default:
		return n, fmt.Errorf("%w: %q (an Ollama name is [host/][namespace/]model[:tag])", ErrInvalidName, s)
	}
	for _, p := range []struct{ kind, v string }{{"host", n.Host}, {"namespace", n.Namespace}, {"model", n.Model}, {"tag", n.Tag}} {
		if !validOllamaPart(p.v, p.kind != "namespace") {
			return n, fmt.Errorf("%w: %q: bad %s %q (letters, digits, '_', '-', '.'; at most %d)", ErrInvalidName, s, p.kind, p.v, ollamaMaxPart)
		}
	}
	return n, nil
}

func validOllamaPart(s string, dots bool) bool {
	if s == "" || len(s) > ollamaMaxPart || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
		switch {
		case alnum:
		case i == 0: // no leading '.' or '-': no "." part, no flag look-alike
			return false
		case c == '-', c == '.' && dots:
		default:
			return false
		}
	}
	return true
}

// ollamaManifest is the part of Ollama's manifest the engine reads.
type ollamaManifest struct {
	SchemaVersion int           `json:"schemaVersion"`
	MediaType     string        `json:"mediaType"`
	Config        ollamaLayer   `json:"config"`
	Layers        []ollamaLayer `json:"layers"`
}

type ollamaLayer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// OllamaStore reads Ollama's model store. It never writes to it. It is safe
// for concurrent use.
type OllamaStore struct {
	dir string

	mu       sync.Mutex
	verified map[string]blobStamp // blob path -> the file state whose hash matched
}

// blobStamp identifies a blob file's state: a blob whose size and
// modification time are unchanged since its hash matched is not hashed
// again (hashing a 4 GB blob takes seconds).
type blobStamp struct {
	size int64
	mod  time.Time
}

// NewOllamaStore returns the store rooted at dir (e.g. ~/.ollama/models).
func NewOllamaStore(dir string) *OllamaStore {
	return &OllamaStore{dir: dir, verified: map[string]blobStamp{}}
}

// Dir is the store's root folder.
func (s *OllamaStore) Dir() string { return s.dir }

// within resolves p's symbolic links and checks that it stays inside the
// store (whose root may itself be a link, e.g. to another disk).
func (s *OllamaStore) within(p string) (string, error) {
	root, err := filepath.EvalSymlinks(s.dir)
	if err != nil {
		return "", fmt.Errorf("engine: ollama store: %w", err)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("engine: ollama store: %w", err)
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%w: %s resolves to %s, outside %s", ErrOutsideStore, p, real, root)
	}
	return real, nil
}

// manifest reads the manifest of n and returns its GGUF layer.
func (s *OllamaStore) manifest(n OllamaName) (ollamaLayer, string, error) {
	p := filepath.Join(s.dir, "manifests", n.Host, n.Namespace, n.Model, n.Tag)
	if _, err := os.Lstat(p); err != nil {
		return ollamaLayer{}, p, fmt.Errorf("%w: %q (no manifest %s)", ErrUnknownModel, n.Short(), p)
	}
	real, err := s.within(p)
	if err != nil {
		return ollamaLayer{}, p, err
	}
	f, err := os.Open(real)
	if err != nil {
		return ollamaLayer{}, p, fmt.Errorf("engine: ollama store: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, ollamaMaxManifest+1))
	if err != nil {
		return ollamaLayer{}, p, fmt.Errorf("engine: ollama store: %w", err)
	}
	if len(b) > ollamaMaxManifest {
		return ollamaLayer{}, p, fmt.Errorf("%w: manifest %s is over %d bytes", ErrInvalidHeader, p, ollamaMaxManifest)
	}
	var m ollamaManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return ollamaLayer{}, p, fmt.Errorf("%w: manifest %s: %w", ErrInvalidHeader, p, err)
	}
	if m.SchemaVersion != 2 {
		return ollamaLayer{}, p, fmt.Errorf("%w: manifest %s: schema version %d (2 is read)", ErrUnsupported, p, m.SchemaVersion)
	}
	var found []ollamaLayer
	for _, l := range m.Layers {
		if l.MediaType == OllamaModelMediaType {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		return ollamaLayer{}, p, fmt.Errorf("%w: %q has no %s layer (not a language model)", ErrUnsupported, n.Short(), OllamaModelMediaType)
	case 1:
	default:
		return ollamaLayer{}, p, fmt.Errorf("%w: %q has %d model layers", ErrUnsupported, n.Short(), len(found))
	}
	return found[0], p, nil
}

// blobPath maps a digest "sha256:<64 hex>" to blobs/sha256-<64 hex>; any
// other digest is refused (it could name a path).
func (s *OllamaStore) blobPath(digest string) (string, string, error) {
	hexs, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexs) != 64 || strings.ToLower(hexs) != hexs {
		return "", "", fmt.Errorf("%w: digest %q (sha256:<64 lower-case hex digits> is read)", ErrInvalidHeader, digest)
	}
	if _, err := hex.DecodeString(hexs); err != nil {
		return "", "", fmt.Errorf("%w: digest %q", ErrInvalidHeader, digest)
	}
	return filepath.Join(s.dir, "blobs", "sha256-"+hexs), hexs, nil
}

// verify hashes the blob at real unless it was verified in this state.
func (s *OllamaStore) verify(real, want string, layerSize int64) error {
	st, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("engine: ollama store: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%w: blob %s is not a regular file", ErrInvalidHeader, real)
	}
	if st.Size() != layerSize {
		return fmt.Errorf("%w: blob %s is %d bytes, its manifest says %d", ErrDigestMismatch, real, st.Size(), layerSize)
	}
	stamp := blobStamp{size: st.Size(), mod: st.ModTime()}
	s.mu.Lock()
	ok := s.verified[real] == stamp
	s.mu.Unlock()
	if ok {
		return nil
	}
	// Hashed without the lock: two first opens of one blob may both hash
	// it, which is only wasted time.
	f, err := os.Open(real)
	if err != nil {
		return fmt.Errorf("engine: ollama store: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("engine: ollama store: hashing %s: %w", real, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: %s hashes to sha256:%s", ErrDigestMismatch, real, got)
	}
	s.mu.Lock()
	s.verified[real] = stamp
	s.mu.Unlock()
	return nil
}

// Has reports whether name parses as an Ollama name with a manifest in the
// store (without reading the manifest or the blob).
func (s *OllamaStore) Has(name string) bool {
	n, err := ParseOllamaName(name)
	if err != nil {
		return false
	}
	st, err := os.Lstat(filepath.Join(s.dir, "manifests", n.Host, n.Namespace, n.Model, n.Tag))
	return err == nil && (st.Mode().IsRegular() || st.Mode()&os.ModeSymlink != 0)
}

// Open loads the model called name ("llama3.2", "llama3.2:latest",
// "namespace/model:tag", ...) from the store: it reads the manifest, checks
// that the model layer's blob is a GGUF file inside the store whose sha256
// is the manifest's digest (hashed once per blob state, see verify), and
// loads it (refusing unsupported architectures by name, as Open does). The
// model is named by its short name ("llama3.2:latest").
func (s *OllamaStore) Open(name string) (*Model, error) {
	n, err := ParseOllamaName(name)
	if err != nil {
		return nil, err
	}
	layer, _, err := s.manifest(n)
	if err != nil {
		return nil, err
	}
	p, want, err := s.blobPath(layer.Digest)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", n.Short(), err)
	}
	real, err := s.within(p)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", n.Short(), err)
	}
	// The magic first: a GGML-era or safetensors blob is refused by name
	// before seconds of hashing.
	if err := checkGGUFMagic(real); err != nil {
		return nil, fmt.Errorf("%q: %w", n.Short(), err)
	}
	if err := s.verify(real, want, layer.Size); err != nil {
		return nil, fmt.Errorf("%q: %w", n.Short(), err)
	}
	data, release, err := mapFile(real)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	m, err := LoadGGUF(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("%q (%s): %w", n.Short(), p, err)
	}
	m.release = release
	m.name = n.Short()
	return m, nil
}

func checkGGUFMagic(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("engine: ollama store: %w", err)
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:]) != "GGUF" {
		return fmt.Errorf("%w: blob %s is not a GGUF file", ErrUnsupported, p)
	}
	return nil
}

// OllamaEntry is one manifest of the store: the model's description, or
// why it cannot be served.
type OllamaEntry struct {
	Name string    // short name, "llama3.2:latest"
	Info ModelInfo // when Err is nil
	Err  error
}

// List reads every manifest of the store and describes each model from
// its GGUF header (the weights are memory-mapped, not read, and not
// hashed: a corrupt blob is found by Open). Entries are sorted by name.
// A store without a manifests folder is empty.
func (s *OllamaStore) List() ([]OllamaEntry, error) {
	root := filepath.Join(s.dir, "manifests")
	var names []OllamaName
	// Exactly four levels, host/namespace/model/tag, as Ollama writes them;
	// folders are not followed through links (a listing must not wander).
	hosts, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("engine: ollama store: %w", err)
	}
	for _, h := range hosts {
		for _, ns := range subdirs(filepath.Join(root, h.Name()), h) {
			for _, mo := range subdirs(filepath.Join(root, h.Name(), ns.Name()), ns) {
				for _, tag := range subdirs(filepath.Join(root, h.Name(), ns.Name(), mo.Name()), mo) {
					if tag.IsDir() || len(names) >= ollamaMaxModels {
						continue
					}
					n := OllamaName{Host: h.Name(), Namespace: ns.Name(), Model: mo.Name(), Tag: tag.Name()}
					if _, err := ParseOllamaName(n.String()); err == nil {
						names = append(names, n)
					}
				}
			}
		}
	}
	out := make([]OllamaEntry, 0, len(names))
	for _, n := range names {
		e := OllamaEntry{Name: n.Short()}
		e.Info, e.Err = s.describe(n)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// subdirs lists the folders in dir (nothing when e is not a folder).
func subdirs(dir string, e os.DirEntry) []os.DirEntry {
	if !e.IsDir() {
		return nil
	}
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	return es
}

func (s *OllamaStore) describe(n OllamaName) (ModelInfo, error) {
	layer, mpath, err := s.manifest(n)
	if err != nil {
		return ModelInfo{}, err
	}
	p, _, err := s.blobPath(layer.Digest)
	if err != nil {
		return ModelInfo{}, err
	}
	real, err := s.within(p)
	if err != nil {
		return ModelInfo{}, err
	}
	if err := checkGGUFMagic(real); err != nil {
		return ModelInfo{}, err
	}
	data, release, err := mapFile(real)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("engine: %w", err)
	}
	defer release()
	m, err := LoadGGUF(data)
	if err != nil {
		return ModelInfo{}, err
	}
	mi := m.Info()
	mi.Name = n.Short()
	mi.Source = "ollama"
	mi.Path = mpath
	return mi, nil
}

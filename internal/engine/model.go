package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/engine/tokenizer"
	"github.com/aitbc/aitbc/models"
)

// Format names a model file format.
type Format string

// Model file formats.
const (
	FormatLlama2C Format = "llama2c" // llama2.c checkpoint + tokenizer.bin
	FormatGGUF    Format = "gguf"
)

// DefaultModel is the name of the model embedded in the binary.
const DefaultModel = models.DefaultName

// Model is a loaded model: configuration, read-only weights and tokenizer.
// It is safe for concurrent use; each Generate call or Session has its own
// mutable state.
type Model struct {
	name   string
	format Format
	cfg    Config
	tok    *tokenizer.Tokenizer
	addBOS bool
	// endTurn are further ids that end generation like EOS: GGUF's
	// tokenizer.ggml.eot_token_id and eom_token_id (Llama 3's <|eot_id|>
	// and <|eom_id|>, which chat models emit at the end of a reply).
	endTurn []int
	// chatTemplate is GGUF's tokenizer.chat_template ("" when none).
	chatTemplate string
	w            weights
	dtype        string       // storage type of the matrices in the file: F32, Q8_0, "Q4_K+Q6_K" for a mix
	size         int64        // bytes of the model file(s)
	release      func() error // unmaps the file, if mapped
}

// weights are the model's tensors. Matrices are row-major [out][in].
type weights struct {
	tokEmb    matrix // VocabSize × Dim
	layers    []layerWeights
	finalNorm []float32 // Dim
	cls       matrix    // VocabSize × Dim (the embedding when shared)
	// ropeFactors divide the rotary angle of each frequency (GGUF
	// rope_freqs.weight, Llama 3.1's long-context scaling); nil when none.
	ropeFactors []float32 // HeadSize/2
}

type layerWeights struct {
	attnNorm, ffnNorm []float32 // Dim
	wq                matrix    // Dim × Dim
	wk, wv            matrix    // KVDim × Dim
	wo                matrix    // Dim × Dim
	w1, w3            matrix    // HiddenDim × Dim (gate, up)
	w2                matrix    // Dim × HiddenDim (down)
	bq, bk, bv, bo    []float32 // optional biases of wq, wk, wv, wo (qwen2 has the first three); nil when absent
}

// Name is the model's name (registry name, or the file's base name).
func (m *Model) Name() string { return m.name }

// Format is the format the model was loaded from.
func (m *Model) Format() Format { return m.format }

// Config returns the architecture.
func (m *Model) Config() Config { return m.cfg }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Size is the size in bytes of the file(s) the model was loaded from.
func (m *Model) Size() int64 { return m.size }

// Quantized reports whether the model's matrices are stored as Q8_0.
func (m *Model) Quantized() bool { return m.w.layers[0].wq.quantized() }

// TensorType is the storage type of the matrices in the model's file
// ("F32", "F16" or "Q8_0"). F16 is widened to float32 when loaded.
func (m *Model) TensorType() string { return m.dtype }

// Close releases the memory-mapped file, if any. The model and its
// sessions must not be used afterwards.
func (m *Model) Close() error {
	if m.release == nil {
		return nil
	}
	err := m.release()
	m.release = nil
	return err
}

// LoadDefault loads tolstoy-1m, the model embedded in the binary.
func LoadDefault() (*Model, error) {
	m, err := LoadLlama2C(models.TolstoyModel, models.TolstoyTokenizer)
	if err != nil {
		return nil, fmt.Errorf("engine: embedded %s: %w", DefaultModel, err)
	}
	m.name = DefaultModel
	return m, nil
}

// Open loads a model file, detecting its format. A llama2.c checkpoint
// needs its tokenizer: Open looks for tokenizer.bin in the same directory
// (use OpenLlama2C to name it). Weights are memory-mapped where the
// platform allows.
func Open(path string) (*Model, error) {
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	m, err := func() (*Model, error) {
		switch detect(data) {
		case FormatGGUF:
			return LoadGGUF(data)
		default:
			tokPath := filepath.Join(filepath.Dir(path), "tokenizer.bin")
			tok, err := os.ReadFile(tokPath)
			if err != nil {
				if _, herr := parseLlama2CHeader(data); herr != nil {
					return nil, herr // not a checkpoint at all: say so first
				}
				return nil, fmt.Errorf("engine: llama2.c checkpoint needs a tokenizer: %w", err)
			}
			return LoadLlama2C(data, tok)
		}
	}()
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.release = release
	m.name = baseName(path)
	return m, nil
}

// OpenLlama2C loads a llama2.c checkpoint with the given tokenizer.bin.
func OpenLlama2C(modelPath, tokenizerPath string) (*Model, error) {
	tok, err := os.ReadFile(tokenizerPath)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	data, release, err := mapFile(modelPath)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	m, err := LoadLlama2C(data, tok)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", modelPath, err)
	}
	m.release = release
	m.name = baseName(modelPath)
	return m, nil
}

func baseName(path string) string {
	b := filepath.Base(path)
	return b[:len(b)-len(filepath.Ext(b))]
}

// detect tells the format from the first bytes.
func detect(b []byte) Format {
	if len(b) >= 4 && string(b[:4]) == gguf.Magic {
		return FormatGGUF
	}
	return FormatLlama2C
}

// tokenizerError maps the tokenizer package's errors onto the engine's.
func tokenizerError(err error) error {
	if errors.Is(err, tokenizer.ErrTruncated) {
		return fmt.Errorf("%w: %w: %w", ErrTokenizer, ErrTruncated, err)
	}
	if errors.Is(err, tokenizer.ErrUnsupportedPre) {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return fmt.Errorf("%w: %w", ErrTokenizer, err)
}

// checkVocab ties the tokenizer to the model's vocabulary size.
func checkVocab(cfg Config, tok *tokenizer.Tokenizer) error {
	if tok.VocabSize() != cfg.VocabSize {
		return fmt.Errorf("%w: model %d, tokenizer %d", ErrVocabMismatch, cfg.VocabSize, tok.VocabSize())
	}
	return nil
}

package verify

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Scheme parameters (docs/VERIFICATION.md).
const (
	// Version is the attestation format.
	Version = 1
	// ChunkTokens generated tokens share one commitment.
	ChunkTokens = 32
	// TopK activations of a chunk are committed: 2 + 2·128 = 258 bytes.
	TopK = 128
	// MaxTopK bounds k in a commitment a verifier will decode.
	MaxTopK = 1024
	// MaxTokens bounds the prompt plus output tokens of an attestation
	// (the chain codec also refuses lists of more than 4,096).
	MaxTokens = 8192
)

// Attestation is what a miner on the built-in engine commits to for one
// text job. It travels with the result (off chain); the receipt signs its
// SHA-256 (Hash), so changing any field breaks the receipt's signature.
type Attestation struct {
	_       struct{} `cbor:",toarray"`
	Version uint8
	Engine  string // engine version (the aitbc build)
	// ModelSHA256 is the SHA-256 of the model file as loaded (the GGUF or
	// llama2.c checkpoint), Quant its tensor type (F32, Q8_0, Q4_K, ...).
	ModelSHA256 []byte
	Quant       string
	// PromptTokens and OutputTokens are the ids the engine processed and
	// generated: re-tokenising text is not always the identity, so the
	// verifier prefills these and checks they match the prompt and result.
	PromptTokens []uint32
	OutputTokens []uint32
	Stop         string // the engine's stop reason: eos or max_tokens
	ChunkTokens  uint16
	Commits      [][]byte // one ChunkCommitment per ChunkTokens output tokens
}

// Encode is the canonical CBOR of the attestation.
func (a *Attestation) Encode() ([]byte, error) { return tx.Marshal(a) }

// Hash is the SHA-256 of Encode: what the receipt signs.
func (a *Attestation) Hash() ([]byte, error) {
	b, err := a.Encode()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// DecodeAttestation parses and checks an attestation.
func DecodeAttestation(b []byte) (*Attestation, error) {
	var a Attestation
	if err := tx.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCommitment, err)
	}
	return &a, a.Check()
}

// Check validates the attestation's shape.
func (a *Attestation) Check() error {
	switch {
	case a.Version != Version:
		return fmt.Errorf("%w: version %d", ErrCommitment, a.Version)
	case len(a.ModelSHA256) != sha256.Size:
		return fmt.Errorf("%w: model hash of %d bytes", ErrCommitment, len(a.ModelSHA256))
	case a.ChunkTokens == 0:
		return fmt.Errorf("%w: chunk of 0 tokens", ErrCommitment)
	case len(a.PromptTokens) == 0 || len(a.PromptTokens)+len(a.OutputTokens) > MaxTokens:
		return fmt.Errorf("%w: %d prompt and %d output tokens", ErrCommitment, len(a.PromptTokens), len(a.OutputTokens))
	}
	want := (len(a.OutputTokens) + int(a.ChunkTokens) - 1) / int(a.ChunkTokens)
	if len(a.Commits) != want {
		return fmt.Errorf("%w: %d commitments for %d tokens", ErrCommitment, len(a.Commits), len(a.OutputTokens))
	}
	for i, c := range a.Commits {
		if _, _, err := ChunkCommitment(c).decode(); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return nil
}

// HashFile is the SHA-256 of the file at path (a model file).
func HashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("verify: hashing %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// Recorder builds the commitments during generation: pass Hidden as
// engine.GenerateRequest.Hidden, then call Finish. It copies each hidden
// state into the current chunk and commits when the chunk is full, so it
// holds ChunkTokens × Dim floats at most.
type Recorder struct {
	k       int
	buf     []float32
	n       int
	commits [][]byte
	err     error
}

// NewRecorder returns a recorder committing to the top k of each chunk.
func NewRecorder(k int) *Recorder { return &Recorder{k: k} }

// Hidden records the hidden state of one generated token.
func (r *Recorder) Hidden(_ int, h []float32) {
	r.buf = append(r.buf, h...)
	r.n++
	if r.n == ChunkTokens {
		r.flush()
	}
}

func (r *Recorder) flush() {
	if r.n == 0 || r.err != nil {
		return
	}
	c, err := CommitChunk(r.buf, min(r.k, len(r.buf)))
	if err != nil {
		r.err = err
		return
	}
	r.commits = append(r.commits, c)
	r.buf, r.n = r.buf[:0], 0
}

// Finish commits the last, partial chunk and returns all commitments.
func (r *Recorder) Finish() ([][]byte, error) {
	r.flush()
	return r.commits, r.err
}

package verify

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/engine"
)

// Scheme parameters (docs/VERIFICATION.md).
const (
	// Version is the first format of the engine's attestation, without
	// the sampling parameters: still decoded and verified as before, by
	// the commitments and probability checks, without the sampler's
	// replay.
	Version = 1
	// VersionSampling is the format the engine writes now ("v2" in
	// docs/VERIFICATION.md): Version's fields plus Sampling. Its number is
	// 3 because 2 is LogprobVersion: the first field tells the kinds apart.
	VersionSampling = 3
	// ChunkTokens generated tokens share one commitment.
	ChunkTokens = 32
	// TopK activations of a chunk are committed: 2 + 2·128 = 258 bytes.
	TopK = 128
	// MaxTopK bounds k in a commitment a verifier will decode.
	MaxTopK = 1024
	// MaxTokens bounds the prompt plus output tokens of an attestation
	// (the chain codec also refuses lists of more than 4,096).
	MaxTokens = 8192
	// MaxStopStrings and MaxStopString bound the stop strings a v2
	// attestation carries (the coordinator accepts fewer and shorter).
	MaxStopStrings = 16
	MaxStopString  = 256
)

// Attestation is what a miner on the built-in engine commits to for one
// text job. It travels with the result (off chain); the receipt signs its
// SHA-256 (Hash), so changing any field breaks the receipt's signature.
// It is encoded as a CBOR array whose length depends on the version: a
// version 1 attestation keeps exactly its bytes (Encode of a decoded v1
// attestation gives them back), version 2 appends Sampling.
type Attestation struct {
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
	Stop         string // the engine's stop reason: eos, max_tokens, or (version 3) stop: a stop string
	ChunkTokens  uint16
	Commits      [][]byte // one ChunkCommitment per ChunkTokens output tokens
	// Sampling is what the engine's sampler ran with (version 2; nil in
	// version 1): the verifier checks it against the job's request and
	// replays the sampler from it.
	Sampling *Sampling
}

// Sampling is the part of a version 2 attestation that lets a verifier
// replay the engine's sampler (engine.Sampler, run.c's): the settings
// after the engine's defaults, the token limit it ran with, and the
// job's stop strings.
type Sampling struct {
	_           struct{} `cbor:",toarray"`
	Temperature float32
	TopP        float32 // in (0, 1]: a request's 0 is 1
	Seed        uint64  // never 0: a request's 0 is engine.DefaultSeed
	// MaxTokens is the limit the engine generated under: the job's, or
	// less when the prompt left less room in the model's context.
	MaxTokens uint32
	// StopStrings are the job's stop sequences. A job that one of them
	// cut carries no attestation, so its text must contain none of them.
	StopStrings []string
}

// attestationV1 and attestationV2 are the wire forms (canonical CBOR
// arrays, field order fixed).
type attestationV1 struct {
	_            struct{} `cbor:",toarray"`
	Version      uint8
	Engine       string
	ModelSHA256  []byte
	Quant        string
	PromptTokens []uint32
	OutputTokens []uint32
	Stop         string
	ChunkTokens  uint16
	Commits      [][]byte
}

type attestationV2 struct {
	_            struct{} `cbor:",toarray"`
	Version      uint8
	Engine       string
	ModelSHA256  []byte
	Quant        string
	PromptTokens []uint32
	OutputTokens []uint32
	Stop         string
	ChunkTokens  uint16
	Commits      [][]byte
	Sampling     Sampling
}

// Encode is the canonical CBOR of the attestation, in its version's form.
func (a *Attestation) Encode() ([]byte, error) {
	if a.Version == Version {
		if a.Sampling != nil {
			return nil, fmt.Errorf("%w: a version 1 attestation carries no sampling parameters", ErrCommitment)
		}
		return tx.Marshal(attestationV1{Version: a.Version, Engine: a.Engine, ModelSHA256: a.ModelSHA256, Quant: a.Quant,
			PromptTokens: a.PromptTokens, OutputTokens: a.OutputTokens, Stop: a.Stop, ChunkTokens: a.ChunkTokens, Commits: a.Commits})
	}
	if a.Version != VersionSampling || a.Sampling == nil {
		return nil, fmt.Errorf("%w: version %d, sampling parameters %v", ErrCommitment, a.Version, a.Sampling != nil)
	}
	return tx.Marshal(attestationV2{Version: a.Version, Engine: a.Engine, ModelSHA256: a.ModelSHA256, Quant: a.Quant,
		PromptTokens: a.PromptTokens, OutputTokens: a.OutputTokens, Stop: a.Stop, ChunkTokens: a.ChunkTokens, Commits: a.Commits,
		Sampling: *a.Sampling})
}

// Hash is the SHA-256 of Encode: what the receipt signs.
func (a *Attestation) Hash() ([]byte, error) {
	b, err := a.Encode()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// DecodeAttestation parses and checks an attestation of version 1 or 2.
func DecodeAttestation(b []byte) (*Attestation, error) {
	v, err := AttestationVersion(b)
	if err != nil {
		return nil, err
	}
	var a Attestation
	switch v {
	case Version:
		var w attestationV1
		if err := tx.Unmarshal(b, &w); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCommitment, err)
		}
		a = Attestation{Version: w.Version, Engine: w.Engine, ModelSHA256: w.ModelSHA256, Quant: w.Quant,
			PromptTokens: w.PromptTokens, OutputTokens: w.OutputTokens, Stop: w.Stop, ChunkTokens: w.ChunkTokens, Commits: w.Commits}
	case VersionSampling:
		var w attestationV2
		if err := tx.Unmarshal(b, &w); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCommitment, err)
		}
		a = Attestation{Version: w.Version, Engine: w.Engine, ModelSHA256: w.ModelSHA256, Quant: w.Quant,
			PromptTokens: w.PromptTokens, OutputTokens: w.OutputTokens, Stop: w.Stop, ChunkTokens: w.ChunkTokens, Commits: w.Commits,
			Sampling: &w.Sampling}
	default:
		return nil, fmt.Errorf("%w: version %d", ErrCommitment, v)
	}
	return &a, a.Check()
}

// Check validates the attestation's shape.
func (a *Attestation) Check() error {
	switch {
	case a.Version != Version && a.Version != VersionSampling:
		return fmt.Errorf("%w: version %d", ErrCommitment, a.Version)
	case (a.Version == VersionSampling) != (a.Sampling != nil):
		return fmt.Errorf("%w: version %d with sampling parameters %v", ErrCommitment, a.Version, a.Sampling != nil)
	case len(a.ModelSHA256) != sha256.Size:
		return fmt.Errorf("%w: model hash of %d bytes", ErrCommitment, len(a.ModelSHA256))
	case a.ChunkTokens == 0:
		return fmt.Errorf("%w: chunk of 0 tokens", ErrCommitment)
	case len(a.PromptTokens) == 0 || len(a.PromptTokens)+len(a.OutputTokens) > MaxTokens:
		return fmt.Errorf("%w: %d prompt and %d output tokens", ErrCommitment, len(a.PromptTokens), len(a.OutputTokens))
	}
	if s := a.Sampling; s != nil {
		switch {
		case !(s.Temperature >= 0 && s.Temperature <= engine.MaxTemperature): // also NaN
			return fmt.Errorf("%w: temperature %v", ErrCommitment, s.Temperature)
		case !(s.TopP > 0 && s.TopP <= 1):
			return fmt.Errorf("%w: top-p %v", ErrCommitment, s.TopP)
		case s.Seed == 0:
			return fmt.Errorf("%w: seed 0 (the engine makes it %#x)", ErrCommitment, engine.DefaultSeed)
		case s.MaxTokens == 0 || int(s.MaxTokens) < len(a.OutputTokens):
			return fmt.Errorf("%w: %d output tokens under a limit of %d", ErrCommitment, len(a.OutputTokens), s.MaxTokens)
		case !StopsFit(s.StopStrings):
			return fmt.Errorf("%w: %d stop strings, at most %d of 1 to %d bytes", ErrCommitment, len(s.StopStrings), MaxStopStrings, MaxStopString)
		}
	}
	if a.Stop == StopString && (a.Sampling == nil || len(a.Sampling.StopStrings) == 0 || len(a.OutputTokens) == 0) {
		return fmt.Errorf("%w: stopped by a stop string without one", ErrCommitment)
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

// StopsFit says whether stop strings fit a version 3 attestation
// (MaxStopStrings of 1 to MaxStopString bytes each).
func StopsFit(stops []string) bool {
	if len(stops) > MaxStopStrings {
		return false
	}
	for _, st := range stops {
		if st == "" || len(st) > MaxStopString {
			return false
		}
	}
	return true
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

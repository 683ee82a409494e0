//go:build aitbc_cheat

package backend

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/verify"
)

// Cheat is a dishonest miner's backend, for measuring verification
// against real cheats (docs/VERIFICATION.md). It exists only in binaries
// built with the aitbc_cheat tag, never in a release: no flag or genesis
// setting can turn it on in a normal build.
//
// It wraps an honest backend (the built-in engine) and, depending on its
// mode, serves another model under the requested model's name, truncates
// the output, or replays its previous answer; in every case it rewrites
// the attestation to claim the requested model (file hash and
// quantisation), as a cheat would.
type Cheat struct {
	Inner Backend
	Mode  CheatMode
	// Substitute is the model really run in CheatModel mode.
	Substitute string
	// ClaimHash and ClaimQuant are the attested model's file hash and
	// quantisation that the cheat claims.
	ClaimHash  []byte
	ClaimQuant string

	mu   sync.Mutex
	last *Result
}

// CheatMode is what Cheat does.
type CheatMode string

// Cheat modes.
const (
	CheatModel    CheatMode = "model"    // run Substitute instead
	CheatTruncate CheatMode = "truncate" // generate half the tokens and say it stopped
	CheatReplay   CheatMode = "replay"   // answer with the previous job's result
)

// Name implements Backend.
func (c *Cheat) Name() string { return c.Inner.Name() }

// Models implements Backend. The substitute is not advertised: the cheat
// serves it only under the listed model's name.
func (c *Cheat) Models(ctx context.Context) ([]ModelInfo, error) {
	ms, err := c.Inner.Models(ctx)
	if c.Substitute == "" {
		return ms, err
	}
	return slices.DeleteFunc(ms, func(m ModelInfo) bool { return m.Name == c.Substitute }), err
}

// SubstituteScale is what WriteSubstitute multiplies one layer's weights
// by: a model that differs from the listed one in a single tensor, the
// smallest change a cheat could make to the weights and still call the
// result "the same model".
const SubstituteScale = 0.9

// WriteSubstitute makes the model a CheatModel miner serves instead of
// listed: a copy of listed (from reg) written as an F32 GGUF with the last
// layer's feed-forward output weights (blk.N.ffn_down) scaled by
// SubstituteScale, imported into reg as listed+"-cheat" (replacing one
// already there), whose name it returns. The copy is written to a
// temporary file, imported and removed.
func WriteSubstitute(reg *engine.Registry, listed string) (string, error) {
	m, err := reg.Open(listed)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = m.WriteGGUF(&b, gguf.F32)
	m.Close()
	if err != nil {
		return "", fmt.Errorf("cheat: writing %s: %w", listed, err)
	}
	f, err := gguf.Parse(b.Bytes())
	if err != nil {
		return "", err
	}
	arch, _ := f.String("general.architecture")
	n, _ := f.Uint(arch + ".block_count")
	target := fmt.Sprintf("blk.%d.ffn_down.weight", max(n, 1)-1)
	w := &gguf.Writer{}
	for _, kv := range f.KVs {
		w.Set(kv.Key, kv.Value)
	}
	scaled := false
	for _, ti := range f.Tensors {
		data := f.TensorData(ti)
		if ti.Name == target && ti.Type == gguf.F32 {
			data = slices.Clone(data)
			for i := 0; i+4 <= len(data); i += 4 {
				v := math.Float32frombits(binary.LittleEndian.Uint32(data[i:]))
				binary.LittleEndian.PutUint32(data[i:], math.Float32bits(v*SubstituteScale))
			}
			scaled = true
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, data); err != nil {
			return "", err
		}
	}
	if !scaled {
		return "", fmt.Errorf("cheat: %s has no F32 tensor %s to perturb", listed, target)
	}
	dir, err := os.MkdirTemp("", "aitbc-cheat-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "substitute.gguf")
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := w.WriteTo(out); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	name := strings.TrimSuffix(listed, "-cheat") + "-cheat"
	if _, err := reg.Import(path, engine.ImportOptions{Name: name, Force: true}); err != nil {
		return "", fmt.Errorf("cheat: importing the substitute: %w", err)
	}
	return name, nil
}

// Generate implements Backend, dishonestly.
func (c *Cheat) Generate(ctx context.Context, req Request, onToken func(string) error) (Result, error) {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if c.Mode == CheatReplay && last != nil {
		return *last, nil
	}
	asked := req.MaxTokens
	switch c.Mode {
	case CheatModel:
		req.Model = c.Substitute
	case CheatTruncate:
		req.MaxTokens = max(1, req.MaxTokens/2)
	}
	res, err := c.Inner.Generate(ctx, req, onToken)
	if err != nil || res.Attestation == "" {
		return res, err
	}
	a, err := verify.DecodeAttestation([]byte(res.Attestation))
	if err != nil {
		return res, fmt.Errorf("cheat: %w", err)
	}
	a.ModelSHA256, a.Quant = c.ClaimHash, c.ClaimQuant
	if c.Mode == CheatTruncate && a.Stop == "max_tokens" {
		a.Stop, res.FinishReason = "eos", FinishStop
		if a.Sampling != nil && int(a.Sampling.MaxTokens) == req.MaxTokens {
			// Claim the job's limit, as a cheat would: the verifier's
			// replay of the stop, not the parameters, must catch it.
			a.Sampling.MaxTokens = uint32(asked)
		}
	}
	enc, err := a.Encode()
	if err != nil {
		return res, err
	}
	res.Attestation = string(enc)
	c.mu.Lock()
	c.last = &res
	c.mu.Unlock()
	return res, nil
}

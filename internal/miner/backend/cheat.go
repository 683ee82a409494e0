//go:build aitbc_cheat

package backend

import (
	"context"
	"fmt"
	"sync"

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

// Models implements Backend.
func (c *Cheat) Models(ctx context.Context) ([]ModelInfo, error) { return c.Inner.Models(ctx) }

// Generate implements Backend, dishonestly.
func (c *Cheat) Generate(ctx context.Context, req Request, onToken func(string) error) (Result, error) {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if c.Mode == CheatReplay && last != nil {
		return *last, nil
	}
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

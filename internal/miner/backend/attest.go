package backend

import (
	"context"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/verify"
	"github.com/aitbc/aitbc/internal/version"
)

// generate runs req on m, recording the commitments of verifiable
// inference (internal/verify) when the model's file hash is known, and
// returns the encoded attestation (nil when there is none). A model
// loaded by BuiltinOptions.Open (tests) has no file to hash. stops are
// the job's stop strings, which the attestation records with the
// sampling parameters; a job with more or longer ones than an
// attestation holds goes without.
func (b *Builtin) generate(ctx context.Context, name string, m *engine.Model, req engine.GenerateRequest, stops []string, onToken func(engine.Token) error) (engine.Result, []byte, error) {
	hash := b.modelHash(name)
	if hash != nil && !verify.StopsFit(stops) {
		b.log.Warn("stop strings beyond an attestation's limits: the receipt goes without", "model", name, "stops", len(stops))
		hash = nil
	}
	if hash == nil {
		out, err := m.Generate(ctx, req, onToken)
		return out, nil, err
	}
	// err may be the callback's stop at a stop string, with an attestation.
	out, a, err := verify.GenerateStops(ctx, m, req, stops, hash, version.Get().Version, onToken)
	if a == nil {
		return out, nil, err
	}
	enc, eerr := a.Encode()
	if eerr != nil {
		b.log.Warn("attestation not encoded", "model", name, "err", eerr)
		return out, nil, err // the job still stands; its receipt goes without
	}
	return out, enc, err
}

// modelHash is the SHA-256 of name's model file, computed once per model
// (a large file takes seconds to hash; it is read outside b.mu).
func (b *Builtin) modelHash(name string) []byte {
	if b.opts.Open != nil || (b.reg == nil && name != engine.DefaultModel) {
		return nil
	}
	if h, ok := b.hashes.Load(name); ok {
		return h.([]byte)
	}
	reg := b.reg
	if reg == nil {
		reg = engine.NewRegistry("")
	}
	h, err := verify.ModelFileHash(reg, name)
	if err != nil {
		b.log.Warn("model file not hashed: receipts go without attestation", "model", name, "err", err)
		return nil
	}
	b.hashes.Store(name, h)
	return h
}

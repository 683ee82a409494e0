package engine

import (
	"context"
	"fmt"
)

// Hooks for verifiable inference (internal/verify): a miner commits to the
// last hidden states of the tokens it generates, and a verifier recomputes
// them for the prompt and the output in one batched pass. Both see the
// state after the final norm, the input of the classifier (what TOPLOC
// commits to, HF's hidden_states[-1]), computed by the same rmsnorm on the
// same residual, so an honest prefill reproduces generation bit for bit.

// finalHidden is the final-normed hidden state Head just computed.
func (s *Session) finalHidden() []float32 { return s.LastHidden() }

// emitHidden calls f with the final-normed hidden state of each token of
// the batch just processed.
func (s *Session) emitHidden(b *batch, f func(pos int, hidden []float32)) {
	for i := range b.n {
		rmsnorm(s.xb, b.x[i], s.m.w.finalNorm, s.cfg.NormEps)
		f(s.pos+i, s.xb)
	}
}

// PrefillHidden is Prefill that also calls onHidden with the final-normed
// hidden state of every token, in order of position. The slice is reused:
// copy what is kept. The values are bit for bit those that Generate's
// Hidden hook sees for the same tokens at the same positions.
func (s *Session) PrefillHidden(ctx context.Context, tokens []int, pos0 int, onHidden func(pos int, hidden []float32)) error {
	if onHidden == nil {
		return fmt.Errorf("%w: PrefillHidden needs a callback", ErrBuffer)
	}
	return s.prefill(ctx, tokens, pos0, 0, onHidden, nil)
}

// PrefillLogits is Prefill that also calls onLogits with the logits of
// every token, in order of position: what a verifier compares with the
// log-probabilities a remote backend reported (verify.RecomputeLogprobs).
// The slice is reused: copy what is kept. Each token's logits are Head's
// for the hidden state the batch computed, so they are bit for bit those
// Forward returns for the same tokens at the same positions.
func (s *Session) PrefillLogits(ctx context.Context, tokens []int, pos0 int, onLogits func(pos int, logits []float32)) error {
	if onLogits == nil {
		return fmt.Errorf("%w: PrefillLogits needs a callback", ErrBuffer)
	}
	return s.prefill(ctx, tokens, pos0, 0, nil, onLogits)
}

// PrefillHiddenLogits is PrefillHidden and PrefillLogits in one pass:
// for each batch of tokens, onHidden is called with every token's
// final-normed hidden state, then onLogits with every token's logits. A
// verifier that replays the sampler needs both for each output position,
// and one pass saves running the layers twice.
func (s *Session) PrefillHiddenLogits(ctx context.Context, tokens []int, pos0 int, onHidden, onLogits func(pos int, v []float32)) error {
	if onHidden == nil || onLogits == nil {
		return fmt.Errorf("%w: PrefillHiddenLogits needs both callbacks", ErrBuffer)
	}
	return s.prefill(ctx, tokens, pos0, 0, onHidden, onLogits)
}

// PrefillHiddenLogitsFrom is PrefillHiddenLogits with logits only for the
// positions from logitsFrom on (pos0 ≤ logitsFrom < pos0+len(tokens)):
// onHidden still sees every token. A verifier replaying a job's sampler
// needs the logits of the prompt's last position and of the output's, and
// one pass over the whole sequence keeps the batches full (a session sizes
// them by its first prefill) while the prompt's positions skip the
// classifier.
func (s *Session) PrefillHiddenLogitsFrom(ctx context.Context, tokens []int, pos0, logitsFrom int, onHidden, onLogits func(pos int, v []float32)) error {
	if onHidden == nil || onLogits == nil {
		return fmt.Errorf("%w: PrefillHiddenLogitsFrom needs both callbacks", ErrBuffer)
	}
	if logitsFrom < pos0 || logitsFrom >= pos0+len(tokens) {
		return fmt.Errorf("%w: logits from position %d of %d..%d", ErrPosition, logitsFrom, pos0, pos0+len(tokens)-1)
	}
	return s.prefill(ctx, tokens, pos0, logitsFrom, onHidden, onLogits)
}

// LastHidden returns the final-normed hidden state that the last Forward
// (or Head) computed: the one whose logits it returned. The slice belongs
// to the session and is overwritten by the next step.
func (s *Session) LastHidden() []float32 { return s.xb }

// StopTokens are the ids that end generation: BOS, EOS and the model's
// end-of-turn tokens. A verifier checks that a job that says it stopped
// did reach one.
func (m *Model) StopTokens() []int {
	return append([]int{m.tok.BOS(), m.tok.EOS()}, m.endTurn...)
}

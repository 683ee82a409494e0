package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/models"
)

// ModelFileHash is the SHA-256 of the file a model is loaded from: the
// embedded checkpoint for the default model, the imported GGUF or llama2.c
// file in reg, or the file at name when name is a path.
func ModelFileHash(reg *engine.Registry, name string) ([]byte, error) {
	if name == "" || name == engine.DefaultModel {
		h := sha256.Sum256(models.TolstoyModel)
		return h[:], nil
	}
	dir := filepath.Join(reg.Dir(), name)
	for _, f := range []string{"model.gguf", "model.bin"} {
		p := filepath.Join(dir, f)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return HashFile(p)
		}
	}
	return HashFile(name)
}

// ReceiptClaim is what a receipt and its result say about a job, as the
// verifier has them: the receipt's attestation hash, prompt hash and
// result text.
type ReceiptClaim struct {
	AttestHash []byte
	PromptHash []byte
	Prompt     *string // the prompt text, when the verifier has it
	// Messages are a chat job's conversation, instead of Prompt: the
	// receipt's prompt hash is minerproto.PromptHash of them, and the
	// verifier rebuilds the prompt tokens the miner's engine ran from
	// them (ChatPromptTokens).
	Messages  []minerproto.ChatMessage
	Result    *string
	MaxTokens int
	// Sampling is the job's sampling request, when the verifier has it:
	// an engine attestation (version 3) must claim it.
	Sampling *JobSampling
	// Counts are the receipt's token counts, what the customer pays for
	// (tokens out × price): an engine attestation must hold exactly as
	// many prompt and output tokens. Nil: not checked.
	Counts *TokenCounts
}

// TokenCounts are a receipt's signed token counts.
type TokenCounts struct{ In, Out uint64 }

// VerifyReceipt checks that attestation is the one the receipt signs and
// recomputes it with the model called model (loaded from home's registry),
// returning the report. It is `aitbc receipt verify --recompute`.
func VerifyReceipt(ctx context.Context, home, model string, claim ReceiptClaim, attestation []byte, threads int, tol Tolerance) (Report, error) {
	h := sha256.Sum256(attestation)
	if len(claim.AttestHash) == 0 {
		return Report{}, fmt.Errorf("%w: the receipt carries no attestation (an old receipt, or a backend that cannot commit)", ErrCommitment)
	}
	if !bytes.Equal(h[:], claim.AttestHash) {
		return Report{}, fmt.Errorf("%w: the attestation is not the one the receipt signs", ErrCommitment)
	}
	if v, err := AttestationVersion(attestation); err == nil && v == LogprobVersion {
		return verifyLogprobReceipt(ctx, home, model, claim, attestation, threads)
	}
	a, err := DecodeAttestation(attestation)
	if err != nil {
		return Report{}, err
	}
	// The miner reports the counts it is paid for; the engine's
	// attestation lists the tokens it ran. A receipt that counts more
	// than the attestation holds charges for work not done.
	if c := claim.Counts; c != nil && !c.Fit(a) {
		return Report{}, fmt.Errorf("%w: the receipt counts %d prompt and %d output tokens, the attestation holds %d and %d",
			ErrTokens, c.In, c.Out, len(a.PromptTokens), len(a.OutputTokens))
	}
	mh, err := ModelFileHash(engine.NewRegistry(home), model)
	if err != nil {
		return Report{}, err
	}
	m, err := engine.Resolve(home, model)
	if err != nil {
		return Report{}, err
	}
	defer m.Close()
	exp := Expected{ModelSHA256: mh, Result: claim.Result, MaxTokens: claim.MaxTokens, Sampling: claim.Sampling}
	if exp.PromptTokens, err = promptTokens(m, claim, len(a.PromptTokens)); err != nil {
		return Report{}, err
	}
	return Recompute(ctx, m, a, exp, threads, tol)
}

// verifyLogprobReceipt is VerifyReceipt for a remote backend's
// log-probability attestation: the output must be the result the receipt
// signs, and the prompt is needed (the verifier encodes it with the
// model's tokenizer, with BOS, as a completion prompt).
func verifyLogprobReceipt(ctx context.Context, home, model string, claim ReceiptClaim, attestation []byte, threads int) (Report, error) {
	a, err := DecodeLogprobAttestation(attestation)
	if err != nil {
		return Report{}, err
	}
	if c := claim.Counts; c != nil && !c.FitLogprobs(a) {
		return Report{}, fmt.Errorf("%w: the receipt counts %d output tokens, the attestation reports %d", ErrTokens, c.Out, len(a.Positions))
	}
	if claim.Result != nil && a.Text() != *claim.Result {
		return Report{}, fmt.Errorf("%w: the attested tokens do not make the result", ErrTokens)
	}
	if claim.Prompt == nil && claim.Messages == nil {
		return Report{}, fmt.Errorf("%w: a log-probability attestation is checked against the prompt, and there is none", ErrTokens)
	}
	m, err := engine.Resolve(home, model)
	if err != nil {
		return Report{}, err
	}
	defer m.Close()
	// A server renders a chat job's messages with the model's template
	// (llama-server from the GGUF's, ChatML for a GGUF without one:
	// ServerChatPromptTokens); the prompt tokens are taken with BOS, as a
	// completion prompt's.
	prompt, err := promptTokensFor(m, claim, -1, func(m *engine.Model, msgs []minerproto.ChatMessage) ([]int, []int, error) {
		return ServerChatPromptTokens(m, a.Backend, msgs)
	})
	if err != nil {
		return Report{}, err
	}
	return RecomputeLogprobs(ctx, m, a, prompt, threads, DefaultLogprobTolerance)
}

// Fit says whether an engine attestation lists exactly the counted prompt
// and output tokens: the customer pays for the counts, which are otherwise
// the miner's own word.
func (c TokenCounts) Fit(a *Attestation) bool {
	return c.In == uint64(len(a.PromptTokens)) && c.Out == uint64(len(a.OutputTokens))
}

// FitLogprobs says whether the output count fits a log-probability
// attestation: at most one more than its positions, the stop token a
// server may count (its usage's completion_tokens) without reporting
// log-probabilities for it. The prompt count is the server's own (its
// template's tokens) and is not checked.
func (c TokenCounts) FitLogprobs(a *LogprobAttestation) bool {
	return c.Out <= uint64(len(a.Positions))+1
}

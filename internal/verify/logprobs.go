package verify

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/tokenizer"
)

// Commitments for miners whose backend cannot expose hidden states (Ollama,
// OpenAI-compatible servers such as llama-server or vLLM): the miner
// commits to what such a backend does expose, the log-probability of each
// sampled token and of the most likely alternatives at its position, and
// signs the encoding into the receipt like the built-in engine's
// attestation. A verifier re-runs prompt and output through the built-in
// engine on the same GGUF in one batched prefill and compares the
// distributions (RecomputeLogprobs). docs/VERIFICATION.md says what this
// catches and what it misses.

const (
	// LogprobVersion is the format of a LogprobAttestation; the first
	// field of every attestation is its version, so one byte tells the
	// two kinds apart (AttestationVersion).
	LogprobVersion = 2
	// MaxTopLogprobs bounds the alternatives per position (OpenAI's
	// top_logprobs allows 20).
	MaxTopLogprobs = 20
	// MaxTokenBytes bounds the text of one token.
	MaxTokenBytes = 256
	// LogprobScale: log-probabilities are stored as integers, natural
	// log × 10^6 (canonical CBOR then holds no floats, and a micro-nat is
	// far below any difference the check looks at).
	LogprobScale = 1e6
	// TopLogprobs is how many alternatives the backends ask for.
	TopLogprobs = 5
	// BackendOpenAI and BackendOllama are a LogprobAttestation's backends
	// (the miner's client names, backend.OpenAI.Name and Ollama.Name).
	BackendOpenAI = "openai"
	BackendOllama = "ollama"
)

// TopLogprob is one alternative at a position: a token's bytes and its
// log-probability × LogprobScale. Tokens are bytes, not text: a token may
// be part of a UTF-8 character, which a CBOR text string cannot hold.
type TopLogprob struct {
	_       struct{} `cbor:",toarray"`
	Token   []byte
	Logprob int32
}

// PositionLogprobs is what a backend reported for one generated token: its
// text, its log-probability × LogprobScale, and the alternatives.
type PositionLogprobs struct {
	_       struct{} `cbor:",toarray"`
	Token   []byte
	Logprob int32
	Top     []TopLogprob
}

// LogprobAttestation is a miner's commitment for a job run on a remote
// backend. It travels with the result; the receipt signs its SHA-256.
type LogprobAttestation struct {
	_         struct{} `cbor:",toarray"`
	Version   uint8    // LogprobVersion
	Backend   string   // "openai" or "ollama"
	Model     string   // the backend's name for the model
	Positions []PositionLogprobs
}

// MicroLogprob converts a log-probability to the stored integer, clamped
// to [-2000, 0] nats (a backend may report -inf or, by rounding, +0.0001).
func MicroLogprob(lp float64) int32 {
	if lp != lp || lp < -2000 {
		lp = -2000
	}
	return int32(math.Round(min(lp, 0) * LogprobScale))
}

// Text is the concatenation of the positions' tokens: the generated text.
func (a *LogprobAttestation) Text() string {
	var b strings.Builder
	for _, p := range a.Positions {
		b.Write(p.Token)
	}
	return b.String()
}

// Encode is the canonical CBOR of the attestation.
func (a *LogprobAttestation) Encode() ([]byte, error) { return tx.Marshal(a) }

// Hash is the SHA-256 of Encode: what the receipt signs.
func (a *LogprobAttestation) Hash() ([]byte, error) {
	b, err := a.Encode()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// DecodeLogprobAttestation parses and checks a log-probability attestation.
func DecodeLogprobAttestation(b []byte) (*LogprobAttestation, error) {
	var a LogprobAttestation
	if err := tx.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCommitment, err)
	}
	return &a, a.Check()
}

// Check validates the attestation's shape and sizes.
func (a *LogprobAttestation) Check() error {
	switch {
	case a.Version != LogprobVersion:
		return fmt.Errorf("%w: version %d", ErrCommitment, a.Version)
	case len(a.Backend) > MaxTokenBytes || len(a.Model) > MaxTokenBytes:
		return fmt.Errorf("%w: backend or model name too long", ErrCommitment)
	case len(a.Positions) == 0 || len(a.Positions) > MaxTokens:
		return fmt.Errorf("%w: %d positions", ErrCommitment, len(a.Positions))
	}
	for i, p := range a.Positions {
		if len(p.Token) > MaxTokenBytes || len(p.Top) > MaxTopLogprobs || p.Logprob > 0 {
			return fmt.Errorf("%w: position %d: token of %d bytes, %d alternatives, log-probability %d", ErrCommitment, i, len(p.Token), len(p.Top), p.Logprob)
		}
		for _, t := range p.Top {
			if len(t.Token) > MaxTokenBytes || t.Logprob > 0 {
				return fmt.Errorf("%w: position %d: an alternative of %d bytes, log-probability %d", ErrCommitment, i, len(t.Token), t.Logprob)
			}
		}
	}
	return nil
}

// AttestationVersion returns the version of an encoded attestation (its
// first field): Version for the built-in engine's hidden-state
// commitments, LogprobVersion for a remote backend's log-probabilities.
func AttestationVersion(b []byte) (uint8, error) {
	// A canonical CBOR array of fewer than 24 fields is one byte 0x80+n;
	// a version below 24 is one byte too.
	if len(b) < 2 || b[0] < 0x81 || b[0] > 0x97 || b[1] > 0x17 {
		return 0, fmt.Errorf("%w: not an attestation", ErrCommitment)
	}
	return b[1], nil
}

// LogprobTolerance says how far a recomputation may stray from a backend's
// reported log-probabilities (natural logs). Honest differences come from
// another engine's arithmetic on the same GGUF (llama.cpp's kernels and
// summation order against the built-in engine's); a different model or
// quantisation moves the whole distribution.
type LogprobTolerance struct {
	// MaxMeanDiff bounds the mean |Δ| over the sampled tokens.
	MaxMeanDiff float64 `json:"max_mean_diff"`
	// MaxDiff bounds |Δ| of any one sampled token.
	MaxDiff float64 `json:"max_diff"`
	// MinTopOverlap is the least fraction of the reported alternatives
	// that must be among the recomputation's 2k most likely tokens.
	MinTopOverlap float64 `json:"min_top_overlap"`
}

// DefaultLogprobTolerance is the tolerance `aitbc receipt verify
// --recompute` applies to a log-probability attestation.
var DefaultLogprobTolerance = LogprobTolerance{MaxMeanDiff: 0.05, MaxDiff: 1, MinTopOverlap: 0.8}

// LogprobResult is the comparison of a LogprobAttestation with a
// recomputation.
type LogprobResult struct {
	Positions int `json:"positions"`
	// EmptyTokens counts the positions whose token had no bytes (a
	// control token, placed by emptyCandidates); they are not in MeanDiff.
	EmptyTokens int     `json:"empty_tokens,omitempty"`
	MeanDiff    float64 `json:"mean_diff"`
	MaxDiff     float64 `json:"max_diff"`
	TopOverlap  float64 `json:"top_overlap"`
}

// RecomputeLogprobs re-runs promptTokens (the verifier's encoding of the
// job's prompt as the backend saw it) and the attested output through m in
// one batched prefill and compares each position's log-probabilities with
// the attested ones. The output's tokens are found by their text in m's
// vocabulary: a token m does not have is ErrTokens (another tokenizer, so
// another model). A report with Pass false and an error wrapping
// ErrMismatch means the distributions differ beyond tol.
func RecomputeLogprobs(ctx context.Context, m *engine.Model, a *LogprobAttestation, promptTokens []int, threads int, tol LogprobTolerance) (Report, error) {
	start := time.Now()
	var rep Report
	if err := a.Check(); err != nil {
		return rep, err
	}
	if len(promptTokens) == 0 {
		return rep, fmt.Errorf("%w: no prompt tokens", ErrTokens)
	}
	out, err := alignTokens(m.Tokenizer(), a.Positions)
	if err != nil {
		return rep, err
	}
	var empty []int       // indexes into out of the tokens without bytes
	var implausible []int // empty tokens below minEmptyProb
	for i, id := range out {
		if id == emptyToken {
			empty = append(empty, i)
		}
	}
	var cands []int
	if len(empty) > 0 {
		if len(empty) > maxEmptyTokens(len(out)) {
			return rep, fmt.Errorf("%w: %d of %d output tokens have no bytes (at most %d)", ErrTokens, len(empty), len(out), maxEmptyTokens(len(out)))
		}
		if cands = emptyCandidates(m.Tokenizer()); len(cands) == 0 {
			return rep, fmt.Errorf("%w: output token %d has no bytes, and the model has no control token", ErrTokens, empty[0])
		}
	}
	seq := append(slices.Clone(promptTokens), out...)
	if len(seq) > m.Config().SeqLen {
		return rep, fmt.Errorf("%w: %d tokens, context %d", ErrTokens, len(seq), m.Config().SeqLen)
	}
	for _, t := range promptTokens {
		if t < 0 || t >= m.Config().VocabSize {
			return rep, fmt.Errorf("%w: prompt token %d", ErrTokens, t)
		}
	}
	rep.Tokens = len(seq)
	s, err := m.NewSession(engine.SessionOptions{Threads: threads, MaxPos: len(seq)})
	if err != nil {
		return rep, err
	}
	defer s.Close()
	tok := m.Tokenizer()
	p := len(promptTokens)
	res := LogprobResult{Positions: len(out)}
	var sumDiff float64
	var found, total int
	lsm := make([]float64, m.Config().VocabSize)
	// The prompt but its last token needs no logits: a plain prefill skips
	// the classifier for it. Only for a long prompt, though: the session
	// sizes its batches by its first prefill, and a short first one would
	// make every later batch short.
	from := 0
	if p-1 >= 32 {
		if err := s.Prefill(ctx, promptTokens[:p-1], 0); err != nil {
			return rep, err
		}
		from = p - 1
	}
	onLogits := func(pos int, logits []float32) {
		if pos < p-1 {
			return
		}
		i := pos - (p - 1)
		logSoftmax(lsm, logits)
		att := a.Positions[i]
		want := float64(att.Logprob) / LogprobScale
		if out[i] == emptyToken {
			// The prefill stopped before this token: pick the control
			// token whose log-probability is nearest the reported one
			// (the lowest id on a tie), and the next prefill runs on it.
			best := cands[0]
			for _, c := range cands[1:] {
				if math.Abs(lsm[c]-want) < math.Abs(lsm[best]-want) {
					best = c
				}
			}
			out[i], seq[pos+1] = best, best
			res.EmptyTokens++
			if math.Exp(lsm[best]) < minEmptyProb {
				implausible = append(implausible, i)
			}
		}
		d := math.Abs(lsm[out[i]] - want)
		if len(att.Token) > 0 {
			sumDiff += d
		}
		res.MaxDiff = max(res.MaxDiff, d)
		if len(att.Top) == 0 {
			return
		}
		mine := make(map[string]bool, 2*len(att.Top))
		prev := seq[pos]
		if pos >= p {
			// A server renders each generated token on its own: after a
			// control token placed mid-output (BOS) a piece keeps its
			// leading space, as alignTokens reads the sampled token.
			prev = -1
		}
		for _, id := range topIDs(lsm, 2*len(att.Top)) {
			mine[tok.Piece(prev, id)] = true
		}
		for _, t := range att.Top {
			total++
			if mine[string(t.Token)] {
				found++
			}
		}
	}
	// One prefill, cut before each token without bytes: which control
	// token it was is known only from the logits of the position before.
	for _, i := range append(empty, len(out)-1) {
		k := p + i // the token's index in seq
		if k <= from {
			continue
		}
		if err := s.PrefillLogits(ctx, seq[from:k], from, onLogits); err != nil {
			return rep, err
		}
		from = k
	}
	if n := len(out) - len(empty); n > 0 {
		res.MeanDiff = sumDiff / float64(n)
	}
	res.TopOverlap = 1
	if total > 0 {
		res.TopOverlap = float64(found) / float64(total)
	}
	rep.Logprobs = &res
	if len(implausible) > 0 {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%d tokens without bytes are implausible (below %.0e in the recomputed logits), the first at output token %d", len(implausible), minEmptyProb, implausible[0]))
	}
	if res.MeanDiff > tol.MaxMeanDiff {
		rep.Failures = append(rep.Failures, fmt.Sprintf("sampled tokens' log-probabilities differ by %.3f on average (at most %.3f)", res.MeanDiff, tol.MaxMeanDiff))
	}
	if res.MaxDiff > tol.MaxDiff {
		rep.Failures = append(rep.Failures, fmt.Sprintf("a sampled token's log-probability differs by %.3f (at most %.3f)", res.MaxDiff, tol.MaxDiff))
	}
	if res.TopOverlap < tol.MinTopOverlap {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%.0f%% of the reported alternatives are among the recomputation's likeliest tokens (at least %.0f%%)", 100*res.TopOverlap, 100*tol.MinTopOverlap))
	}
	rep.Duration = time.Since(start)
	rep.Pass = len(rep.Failures) == 0
	if !rep.Pass {
		return rep, fmt.Errorf("%w: %s", ErrMismatch, rep.Failures[0])
	}
	return rep, nil
}

// emptyToken is alignTokens' id for a token reported without bytes.
const emptyToken = -1

// minEmptyProb is the least probability a token without bytes may have
// in the recomputed logits. Such a token adds nothing to the result but
// counts as a generated token, which the customer pays for: without a
// floor a miner could pad an output with control tokens reported at
// their true (tiny) log-probabilities. An honest sampler draws a control
// token below 1e-4 at most that often per position and control token;
// the one measured through llama-server had 0.15 (docs/VERIFICATION.md).
const minEmptyProb = 1e-4

// maxEmptyTokens bounds the tokens without bytes in an attestation of n
// positions: one in eight, at least one. Such a token adds nothing to the
// result, and the verifier picks it among the control tokens by its
// reported log-probability, so a miner gains nothing by inserting them;
// the bound keeps them from being most of what is checked (they are out of
// the mean |Δ|, which is over the tokens that make the text).
func maxEmptyTokens(n int) int { return max(1, (n+7)/8) }

// emptyCandidates are the tokens a backend reports without bytes: those
// whose text is empty, which llama.cpp renders as nothing unless asked for
// special text (llama_vocab::token_to_piece: control, unknown and unused
// tokens), so BOS, EOS, end-of-turn markers and the reserved tokens of a
// vocabulary such as Llama 3's. In id order.
func emptyCandidates(tok *tokenizer.Tokenizer) []int {
	var ids []int
	for id := range tok.VocabSize() {
		if tok.Piece(-1, id) == "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// alignTokens finds the id of each attested token by its text: the
// vocabulary's text pieces first, then byte tokens (a backend reports a
// token that is part of a UTF-8 sequence as that byte). A token without
// bytes is emptyToken: which control token it is, RecomputeLogprobs
// decides from the logits.
func alignTokens(tok *tokenizer.Tokenizer, pos []PositionLogprobs) ([]int, error) {
	byText := make(map[string]int, tok.VocabSize())
	for _, pass := range []func(tokenizer.Kind) bool{
		func(k tokenizer.Kind) bool { return k == tokenizer.Normal || k == tokenizer.UserDefined },
		func(k tokenizer.Kind) bool { return k == tokenizer.Byte },
	} {
		for id := range tok.VocabSize() {
			text, _, kind := tok.Token(id)
			if !pass(kind) {
				continue
			}
			text = tok.Piece(-1, id)
			if _, dup := byText[text]; !dup && text != "" {
				byText[text] = id
			}
		}
	}
	out := make([]int, len(pos))
	for i, p := range pos {
		if len(p.Token) == 0 {
			out[i] = emptyToken
			continue
		}
		id, ok := byText[string(p.Token)]
		if !ok {
			shown := string(p.Token)
			if !utf8.ValidString(shown) {
				shown = fmt.Sprintf("% x", p.Token)
			}
			return nil, fmt.Errorf("%w: output token %d (%q) is not in the model's vocabulary", ErrTokens, i, shown)
		}
		out[i] = id
	}
	return out, nil
}

// logSoftmax sets dst to the natural log-probabilities of logits.
func logSoftmax(dst []float64, logits []float32) {
	hi := float64(slices.Max(logits))
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v) - hi)
	}
	lz := hi + math.Log(z)
	for i, v := range logits {
		dst[i] = float64(v) - lz
	}
}

// topIDs returns the ids of the n largest values of lp, largest first.
func topIDs(lp []float64, n int) []int {
	n = min(n, len(lp))
	best := make([]int, 0, n+1)
	for id, v := range lp {
		if len(best) == n && v <= lp[best[n-1]] {
			continue
		}
		j, _ := slices.BinarySearchFunc(best, v, func(b int, v float64) int {
			if lp[b] >= v {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, j, id)
		if len(best) > n {
			best = best[:n]
		}
	}
	return best
}

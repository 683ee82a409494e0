package verify

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/aitbc/aitbc/internal/engine"
)

// Tolerance says how far a recomputation may stray from the commitments
// and still count as the same computation. The statistics are TOPLOC's
// (per chunk, over the recomputation's top k: values whose sign or
// exponent differ from the committed bf16 value, and the mean and median
// distance of the 7-bit mantissas of the others); the thresholds are ours,
// far tighter than TOPLOC's GPU ones because the engine is deterministic
// across thread counts and kernels (0 mismatches in every honest run
// measured), yet loose enough for last-bit differences of another f32
// engine. docs/VERIFICATION.md gives the measured rates.
type Tolerance struct {
	MaxExpMismatches int     `json:"max_exp_mismatches"`
	MaxMantMean      float64 `json:"max_mant_err_mean"`
	MaxMantMedian    float64 `json:"max_mant_err_median"`
	// MinProb is the least probability (softmax of the recomputed logits,
	// temperature 1) that the output's last token, and a stop token for a
	// job that says it stopped, may have. The commitments cover the hidden
	// states that produced each token, not the last token itself nor the
	// decision to stop, so those are checked on the logits instead. An
	// honest sampler (temperature ≤ 1) practically never picks a token
	// below it; a truncation at a random place usually falls below it.
	MinProb float64 `json:"min_prob"`
	// MinStopProb is MinProb for the stop of a job that says it stopped
	// before its limit: stricter, since truncating is the cheat it meets.
	MinStopProb float64 `json:"min_stop_prob"`
}

// DefaultTolerance is the tolerance of `aitbc receipt verify --recompute`.
var DefaultTolerance = Tolerance{MaxExpMismatches: 4, MaxMantMean: 1, MaxMantMedian: 1, MinProb: 1e-6, MinStopProb: 1e-3}

// Report is the outcome of Recompute.
type Report struct {
	Pass     bool          `json:"pass"`
	Chunks   []ChunkResult `json:"chunks"`
	Failures []string      `json:"failures,omitempty"`
	Tokens   int           `json:"tokens"` // prompt plus output, prefilled
	Duration time.Duration `json:"duration_ns"`
	// Logprobs is the comparison of a remote backend's log-probabilities
	// (RecomputeLogprobs); Chunks is empty then.
	Logprobs *LogprobResult `json:"logprobs,omitempty"`
}

// Expected is what the verifier knows independently of the attestation:
// the model it loaded (its file's hash), and optionally the prompt tokens
// (engine encoding of the job's prompt) and the result text the receipt
// signs. Nil fields are not checked.
type Expected struct {
	ModelSHA256  []byte
	PromptTokens []int
	Result       *string
	// MaxTokens is the job's limit: a job that says it stopped at the
	// limit must have produced exactly that many tokens.
	MaxTokens int
}

// Recompute re-runs the attested prompt and output through m in one
// batched prefill and compares each chunk's hidden states with its
// commitment. It returns ErrModelMismatch or ErrTokens when the inputs do
// not fit together, and a report (Pass false, and an error wrapping
// ErrMismatch) when the commitments are not reproduced.
func Recompute(ctx context.Context, m *engine.Model, a *Attestation, exp Expected, threads int, tol Tolerance) (Report, error) {
	start := time.Now()
	var rep Report
	if err := a.Check(); err != nil {
		return rep, err
	}
	if exp.ModelSHA256 != nil && !bytes.Equal(exp.ModelSHA256, a.ModelSHA256) {
		return rep, fmt.Errorf("%w: model file hash", ErrModelMismatch)
	}
	if q := m.TensorType(); q != a.Quant {
		return rep, fmt.Errorf("%w: quantisation %s, attested %s", ErrModelMismatch, q, a.Quant)
	}
	vocab := m.Config().VocabSize
	toInts := func(v []uint32) ([]int, error) {
		out := make([]int, len(v))
		for i, t := range v {
			if int(t) >= vocab {
				return nil, fmt.Errorf("%w: token %d of a %d-token vocabulary", ErrTokens, t, vocab)
			}
			out[i] = int(t)
		}
		return out, nil
	}
	prompt, err := toInts(a.PromptTokens)
	if err != nil {
		return rep, err
	}
	out, err := toInts(a.OutputTokens)
	if err != nil {
		return rep, err
	}
	if exp.PromptTokens != nil && !slices.Equal(exp.PromptTokens, prompt) {
		return rep, fmt.Errorf("%w: the prompt encodes to other tokens", ErrTokens)
	}
	if exp.Result != nil && DecodeOutput(m, prompt, out) != *exp.Result {
		return rep, fmt.Errorf("%w: the output tokens do not decode to the result", ErrTokens)
	}
	seq := append(slices.Clone(prompt), out...)
	p, n := len(prompt), len(out)
	if len(seq) > m.Config().SeqLen {
		return rep, fmt.Errorf("%w: %d tokens, context %d", ErrTokens, len(seq), m.Config().SeqLen)
	}
	rep.Tokens = len(seq)
	s, err := m.NewSession(engine.SessionOptions{Threads: threads, MaxPos: len(seq)})
	if err != nil {
		return rep, err
	}
	defer s.Close()

	// The hidden state at position p-1+i produced output token i. All but
	// the last go through the batched prefill; the last through Forward,
	// whose logits also check the last token.
	chunk := int(a.ChunkTokens)
	var buf []float32
	var got int
	fail := func(f string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(f, args...)) }
	take := func(h []float32) error {
		buf = append(buf, h...)
		got++
		if got%chunk != 0 && got != n {
			return nil
		}
		i := (got - 1) / chunk
		r, err := CheckChunk(a.Commits[i], buf)
		if err != nil {
			return err
		}
		rep.Chunks = append(rep.Chunks, r)
		if r.ExpMismatches > tol.MaxExpMismatches || r.MantMean > tol.MaxMantMean || r.MantMedian > tol.MaxMantMedian {
			fail("chunk %d: %d exponent mismatches, mantissa error mean %.2f median %.1f", i, r.ExpMismatches, r.MantMean, r.MantMedian)
		}
		buf = buf[:0]
		return nil
	}
	var cbErr error
	last := p + n - 2
	if n == 0 {
		last = p - 1 // only the stop is checked, at position p-1
	}
	if last > 0 {
		err = s.PrefillHidden(ctx, seq[:last], 0, func(pos int, h []float32) {
			if pos >= p-1 && cbErr == nil {
				cbErr = take(h)
			}
		})
		if err != nil {
			return rep, err
		}
		if cbErr != nil {
			return rep, cbErr
		}
	}
	prob := func(logits []float32, t int) float64 {
		hi := float64(slices.Max(logits))
		var z float64
		for _, v := range logits {
			z += math.Exp(float64(v) - hi)
		}
		return math.Exp(float64(logits[t])-hi) / z
	}
	if n > 0 {
		logits, err := s.Forward(seq[p+n-2], p+n-2)
		if err != nil {
			return rep, err
		}
		if pr := prob(logits, out[n-1]); pr < tol.MinProb {
			fail("the last output token has probability %.2g in the recomputed logits", pr)
		}
		if err := take(s.LastHidden()); err != nil {
			return rep, err
		}
	}
	switch a.Stop {
	case string(engine.StopEOS):
		logits, err := s.Forward(seq[p+n-1], p+n-1)
		if err != nil {
			return rep, err
		}
		var best float64
		for _, t := range m.StopTokens() {
			if t >= 0 && t < len(logits) {
				best = max(best, prob(logits, t))
			}
		}
		if best < tol.MinStopProb {
			fail("the job says it stopped, but stopping has probability %.2g in the recomputed logits", best)
		}
	case string(engine.StopMaxTokens):
		if exp.MaxTokens > 0 && n != exp.MaxTokens {
			fail("the job says it reached its limit of %d tokens with %d", exp.MaxTokens, n)
		}
	default:
		fail("stop reason %q", a.Stop)
	}
	rep.Duration = time.Since(start)
	rep.Pass = len(rep.Failures) == 0
	if !rep.Pass {
		return rep, fmt.Errorf("%w: %s", ErrMismatch, rep.Failures[0])
	}
	return rep, nil
}

// DecodeOutput is the text the engine streams for out after prompt (as
// engine.Generate builds Result.Text).
func DecodeOutput(m *engine.Model, prompt, out []int) string {
	var b bytes.Buffer
	prev := prompt[len(prompt)-1]
	tok := m.Tokenizer()
	for _, id := range out {
		b.WriteString(tok.Piece(prev, id))
		prev = id
	}
	return b.String()
}

// Generate runs req on m and returns the result with its attestation.
// modelSHA256 is the hash of m's file (HashFile), engineVersion the
// engine build's version.
func Generate(ctx context.Context, m *engine.Model, req engine.GenerateRequest, modelSHA256 []byte, engineVersion string, onToken func(engine.Token) error) (engine.Result, *Attestation, error) {
	rec := NewRecorder(TopK)
	req.Hidden = rec.Hidden
	res, err := m.Generate(ctx, req, onToken)
	if err != nil {
		return res, nil, err
	}
	commits, err := rec.Finish()
	if err != nil {
		return res, nil, err
	}
	a := &Attestation{
		Version: Version, Engine: engineVersion, ModelSHA256: modelSHA256, Quant: m.TensorType(),
		PromptTokens: toU32(res.PromptTokens), OutputTokens: toU32(res.Tokens),
		Stop: string(res.Stop), ChunkTokens: ChunkTokens, Commits: commits,
	}
	return res, a, nil
}

func toU32(v []int) []uint32 {
	out := make([]uint32, len(v))
	for i, t := range v {
		out[i] = uint32(t)
	}
	return out
}

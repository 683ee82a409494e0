package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/engine"
)

// Tolerance says how far a recomputation may stray from the commitments
// and still count as the same computation. Per chunk it bounds
// ChunkResult.Mismatches (values off the top-k boundary that are more
// than FarSteps bf16 steps from the committed ones) and TOPLOC's mantissa
// statistics; the exponent count (ExpMismatches) is reported, not bounded,
// because it counts another engine's honest near-misses. The engine is
// deterministic across thread counts and kernels (0 of everything in
// every honest run measured); the bounds leave room for another engine:
// llama.cpp on the same GGUF, whose 8-bit activations (Q8_0) move values
// by a few steps. docs/VERIFICATION.md gives the measured rates.
type Tolerance struct {
	MaxMismatches int     `json:"max_mismatches"`
	MaxMantMean   float64 `json:"max_mant_err_mean"`
	MaxMantMedian float64 `json:"max_mant_err_median"`
	// MinTokenProb is the least probability (softmax of the recomputed
	// logits, temperature 1) that each output token may have when the
	// recomputation is not exact. The commitments cover the hidden states
	// that produced each token, not the token itself: a token changed near
	// the end of the output moves few committed states (only the later
	// ones see it), little enough to hide in another engine's rounding, so
	// each token is also checked against the logits of the state that
	// produced it. Measured on tolstoy-1m: the least likely of 18,879
	// tokens sampled at temperature 0.8 had 8.5e-7, and a token drawn
	// uniformly from the vocabulary falls below 1e-7 27% of the time
	// (docs/VERIFICATION.md).
	MinTokenProb float64 `json:"min_token_prob"`
	// MinProb is the least probability that the output's last token, and
	// a stop token for a job that says it stopped, may have; always
	// checked: no committed state sees the last token. An honest sampler
	// (temperature ≤ 1) practically never picks a token below it; a
	// truncation at a random place usually falls below it.
	MinProb float64 `json:"min_prob"`
	// MinStopProb is MinProb for the stop of a job that says it stopped
	// before its limit: stricter, since truncating is the cheat it meets.
	MinStopProb float64 `json:"min_stop_prob"`
	// ReplayStopOnly limits the sampler's replay of a version 3
	// attestation to the last output token and the stop, which need no
	// logits beyond the ones already computed; false (the default)
	// replays every output token, which needs the logits of every output
	// position (the vocabulary projection per token) in the one prefill.
	// The stop alone catches truncation with certainty; every token
	// catches an altered token whose later commitments were recomputed
	// (docs/VERIFICATION.md, "Replaying the sampler").
	ReplayStopOnly bool `json:"replay_stop_only,omitempty"`
	// StopCoinSlack is how far (probability mass, on the sampler's walk)
	// the coin of a version 3 job's stop may lie outside the stop tokens'
	// intervals when the recomputation is not exact: the tolerant replay
	// of the stop (another engine's logits move the intervals a little,
	// a truncation's stop lies where the coin fell on the token the
	// engine went on with). Zero means DefaultStopCoinSlack.
	StopCoinSlack float64 `json:"stop_coin_slack,omitempty"`
	// StopLogitSlack is the same for a greedy job (temperature 0): how
	// far below the largest logit a stop token's may be. Zero means
	// DefaultStopLogitSlack.
	StopLogitSlack float64 `json:"stop_logit_slack,omitempty"`
}

// The tolerant replay's slacks, twice the largest shift measured between
// llama.cpp's logits and the engine's on the same file
// (engine.TestStopDrawShiftAgainstLlamaCpp: 0.0106 of probability mass
// and 0.254 in a logit margin, Q4_K_M on a random model that amplifies
// the 8-bit activations' rounding; F32 moved them by 9.2e-6 and 4.2e-5).
// docs/VERIFICATION.md, "Replaying the sampler", gives what they leave
// to a truncation.
const (
	DefaultStopCoinSlack  = 0.02
	DefaultStopLogitSlack = 0.5
)

func (t Tolerance) stopCoinSlack() float64 {
	if t.StopCoinSlack == 0 {
		return DefaultStopCoinSlack
	}
	return t.StopCoinSlack
}

func (t Tolerance) stopLogitSlack() float64 {
	if t.StopLogitSlack == 0 {
		return DefaultStopLogitSlack
	}
	return t.StopLogitSlack
}

// DefaultTolerance is the tolerance of `aitbc receipt verify --recompute`.
var DefaultTolerance = Tolerance{MaxMismatches: 0, MaxMantMean: 1.25, MaxMantMedian: 2, MinTokenProb: 1e-7, MinProb: 1e-6, MinStopProb: 1e-3}

// Report.StopCheck's values.
const (
	StopReplayed            = "replayed"
	StopReplayedWithinSlack = "replayed within slack"
	StopByProbability       = "probability only"
)

// Report is the outcome of Recompute.
type Report struct {
	Pass     bool          `json:"pass"`
	Chunks   []ChunkResult `json:"chunks"`
	Failures []string      `json:"failures,omitempty"`
	Tokens   int           `json:"tokens"` // prompt plus output, prefilled
	// TokensChecked is how many output tokens were checked against the
	// recomputed logits: the last only when every chunk matched exactly,
	// all of them otherwise (Tolerance.MinTokenProb).
	TokensChecked int `json:"tokens_checked"`
	// Replayed is how many draws of the engine's sampler were replayed
	// (output tokens, and the stop of a job that stopped at eos) on an
	// exact recomputation of a version 3 attestation; 0 otherwise.
	Replayed int           `json:"replayed"`
	Duration time.Duration `json:"duration_ns"`
	// StopCheck says how the stop of a job that says it stopped at eos
	// was judged: StopReplayed, StopReplayedWithinSlack or
	// StopByProbability (a version 1 attestation: no sampling parameters,
	// so no replay); empty for other stops.
	StopCheck string `json:"stop_check,omitempty"`
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
	// Sampling is what the job asked for (temperature, top-p, seed, stop
	// strings, as the customer sent them): a version 3 attestation must
	// claim exactly these, after the engine's defaults (ErrParams). Nil:
	// not checked (the verifier does not know the job's request).
	Sampling *JobSampling
}

// JobSampling is a job's sampling request as the coordinator stores it
// and hands it to the miner: zero TopP and Seed mean the engine's
// defaults.
type JobSampling struct {
	Temperature float32
	TopP        float32
	Seed        uint64
	Stop        []string
}

// checkSampling compares a version 3 attestation's sampling parameters
// with the job's request and limit. The engine may run under a lower
// limit than the job's when the prompt leaves less room in the context
// (the built-in backend counts the room with BOS, so one less for a model
// that adds none): seqLen is the model's context.
func checkSampling(a *Attestation, exp Expected, seqLen int) error {
	sp := a.Sampling
	if js := exp.Sampling; js != nil {
		want := engine.NormalizeSampling(js.Temperature, js.TopP, js.Seed)
		switch {
		case sp.Temperature != want.Temperature:
			return fmt.Errorf("%w: temperature %v, the job asked %v", ErrParams, sp.Temperature, want.Temperature)
		case sp.TopP != want.TopP:
			return fmt.Errorf("%w: top-p %v, the job asked %v", ErrParams, sp.TopP, want.TopP)
		case sp.Seed != want.Seed:
			return fmt.Errorf("%w: seed %d, the job asked %d", ErrParams, sp.Seed, want.Seed)
		case !slices.Equal(sp.StopStrings, js.Stop) && (len(sp.StopStrings) > 0 || len(js.Stop) > 0):
			return fmt.Errorf("%w: stop strings %q, the job asked %q", ErrParams, sp.StopStrings, js.Stop)
		}
	}
	if exp.MaxTokens > 0 {
		room := seqLen - len(a.PromptTokens)
		got := int(sp.MaxTokens)
		if got != min(exp.MaxTokens, room) && !(exp.MaxTokens >= room-1 && got == room-1) {
			return fmt.Errorf("%w: a limit of %d tokens, the job asked %d (context room %d)", ErrParams, got, exp.MaxTokens, room)
		}
	}
	return nil
}

// replayer draws the engine's sampler in order along the output and
// remembers the first draw that differs from the attested token.
type replayer struct {
	s       *engine.Sampler
	scratch []float32
	next    int // the index of the next draw
	drawn   int // draws replayed (the others skipped)
	// first is the first output index whose draw differs (-1: none);
	// drew is what the sampler drew there.
	first, drew int
}

func (r *replayer) draw(logits []float32) int {
	copy(r.scratch, logits)
	r.next++
	r.drawn++
	return r.s.Sample(r.scratch)
}

// skip advances the stream past a draw that is not replayed.
func (r *replayer) skip() {
	r.s.Skip()
	r.next++
}

// token replays output token i (which must be the next draw).
func (r *replayer) token(logits []float32, want int) {
	if got := r.draw(logits); got != want && r.first < 0 {
		r.first, r.drew = r.next-1, got
	}
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
	if exp.Result != nil && ResultText(m, a, prompt, out) != *exp.Result {
		return rep, fmt.Errorf("%w: the output tokens do not decode to the result", ErrTokens)
	}
	seq := append(slices.Clone(prompt), out...)
	p, n := len(prompt), len(out)
	if len(seq) > m.Config().SeqLen {
		return rep, fmt.Errorf("%w: %d tokens, context %d", ErrTokens, len(seq), m.Config().SeqLen)
	}
	// A version 3 attestation says how the engine sampled: the claim must
	// be the job's (checked before any computation), and the engine never
	// emits a stop token nor runs past a stop string.
	sp := a.Sampling
	var rp *replayer
	if sp != nil {
		if err := checkSampling(a, exp, m.Config().SeqLen); err != nil {
			return rep, err
		}
		smp, err := engine.NewSampler(vocab, sp.Temperature, sp.TopP, sp.Seed)
		if err != nil {
			return rep, fmt.Errorf("%w: %v", ErrCommitment, err)
		}
		rp = &replayer{s: smp, scratch: make([]float32, vocab), first: -1}
	}
	rep.Tokens = len(seq)
	s, err := m.NewSession(engine.SessionOptions{Threads: threads, MaxPos: len(seq)})
	if err != nil {
		return rep, err
	}
	defer s.Close()

	// The hidden state at position p-1+i produced output token i. All but
	// the last go through the batched prefill; the last through Forward,
	// whose logits also check the last token (and the stop, below).
	chunk := int(a.ChunkTokens)
	var buf []float32
	var got int
	exact := true
	var verdict error = ErrMismatch // the sentinel of the first failure
	fail := func(f string, args ...any) { rep.Failures = append(rep.Failures, fmt.Sprintf(f, args...)) }
	failWith := func(e error, f string, args ...any) {
		if len(rep.Failures) == 0 {
			verdict = e
		}
		fail(f, args...)
	}
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
		exact = exact && r == (ChunkResult{Boundary: r.Boundary})
		if r.Mismatches > tol.MaxMismatches || r.MantMean > tol.MaxMantMean || r.MantMedian > tol.MaxMantMedian {
			fail("chunk %d: %d mismatches, %d exponent mismatches, mantissa error mean %.2f median %.1f", i, r.Mismatches, r.ExpMismatches, r.MantMean, r.MantMedian)
		}
		buf = buf[:0]
		return nil
	}
	var cbErr error
	last := p + n - 2
	if n == 0 {
		last = p - 1 // only the stop is checked, at position p-1
	}
	// Replaying every draw needs the logits of every output position: one
	// prefill over the whole sequence (full batches) projects only the
	// positions from the prompt's last on onto the vocabulary, a batch's
	// positions together.
	// Only the draws are made there: whether the recomputation is exact is
	// known at the end, and a job that is not (rare for the engine's own)
	// has its tokens' plausibility checked by a second pass, as before,
	// rather than every job paying a softmax per position for it.
	full := rp != nil && !tol.ReplayStopOnly && n > 1
	switch {
	case full:
		err = s.PrefillHiddenLogitsFrom(ctx, seq[:last], 0, p-1, func(pos int, h []float32) {
			if pos >= p-1 && cbErr == nil {
				cbErr = take(h)
			}
		}, func(pos int, logits []float32) {
			rp.token(logits, out[pos-(p-1)])
		})
	case last > 0:
		err = s.PrefillHidden(ctx, seq[:last], 0, func(pos int, h []float32) {
			if pos >= p-1 && cbErr == nil {
				cbErr = take(h)
			}
		})
	}
	if err != nil {
		return rep, err
	}
	if cbErr != nil {
		return rep, cbErr
	}
	if rp != nil && !full {
		for range max(n-1, 0) { // the draws not replayed: advance the stream
			rp.skip()
		}
	}
	var lastProb float64
	if n > 0 {
		logits, err := s.Forward(seq[p+n-2], p+n-2)
		if err != nil {
			return rep, err
		}
		rep.TokensChecked = 1
		lastProb = prob(logits, out[n-1])
		if rp != nil {
			rp.token(logits, out[n-1])
		}
		if err := take(s.LastHidden()); err != nil {
			return rep, err
		}
	}
	// The sampler's replay is exact only on an exact recomputation: the
	// engine's own job, whose logits are then bit for bit the ones it
	// sampled from. Otherwise (another engine's rounding, or a cheat
	// within the bounds) the probability checks judge the tokens.
	replay := rp != nil && exact
	if !replay && lastProb < tol.MinProb && n > 0 {
		fail("the last output token has probability %.2g in the recomputed logits", lastProb)
	}
	// A changed output token moves every later hidden state: a
	// recomputation that reproduces every committed value exactly (the
	// engine's own jobs; no altered output measured ever did) leaves
	// practically no room for one. Any other (another engine's rounding,
	// or a cheat within the bounds) has each output token checked against
	// the logits that produced it, in a second prefill that computes them
	// (docs/VERIFICATION.md).
	if !exact && n > 1 {
		k, err := checkTokens(ctx, m, seq, p, threads, tol.MinTokenProb)
		if err != nil {
			return rep, err
		}
		rep.TokensChecked = n
		if k.count > 0 {
			fail("%d output tokens implausible in the recomputed logits, the first (%d) with probability %.2g", k.count, k.first, k.prob)
		}
	}
	if replay {
		rep.Replayed = rp.drawn
		if rp.first >= 0 {
			failWith(ErrReplay, "output token %d is %d, but the sampler draws %d there (temperature %v, top-p %v, seed %d)",
				rp.first, out[rp.first], rp.drew, sp.Temperature, sp.TopP, sp.Seed)
		}
	}
	if sp != nil {
		stops := m.StopTokens()
		for i, t := range out {
			if slices.Contains(stops, t) {
				failWith(ErrReplay, "output token %d is a stop token (%d): the engine would have stopped there", i, t)
				break
			}
		}
		// The engine's text reaches a stop string only with its last
		// token, and then exactly when the job says it stopped there.
		if len(sp.StopStrings) > 0 && n > 0 {
			before := DecodeOutput(m, prompt, out[:n-1])
			if _, ok := firstStop(before, sp.StopStrings); ok {
				failWith(ErrReplay, "the output reaches a stop string before its last token: the job should have ended there")
			} else if _, ok := firstStop(DecodeOutput(m, prompt, out), sp.StopStrings); ok != (a.Stop == StopString) {
				failWith(ErrReplay, "the output's last token completes a stop string %v, the job says it stopped by %s", ok, a.Stop)
			}
		}
	}
	switch a.Stop {
	case string(engine.StopEOS):
		logits, err := s.Forward(seq[p+n-1], p+n-1)
		if err != nil {
			return rep, err
		}
		if replay {
			// The draw after the last token must be a stop: a job cut
			// anywhere else draws the token the engine went on with.
			t := rp.draw(logits)
			rep.Replayed = rp.drawn
			rep.StopCheck = StopReplayed
			if !slices.Contains(m.StopTokens(), t) {
				failWith(ErrReplay, "the job says it stopped after %d tokens, but the sampler draws token %d there, not a stop", n, t)
			}
			break
		}
		if rp != nil {
			// Not exact (another engine, or a commitment moved within the
			// tolerance): the stop is replayed up to a slack. The stream
			// is at this draw whatever was replayed before (one coin per
			// draw at a positive temperature).
			rep.StopCheck = StopReplayedWithinSlack
			if msg := tolerantStop(rp, logits, m.StopTokens(), tol); msg != "" {
				failWith(ErrReplay, "the job says it stopped after %d tokens, but %s", n, msg)
			}
		} else {
			rep.StopCheck = StopByProbability
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
	case StopString:
		// Checked above: the last token completes a stop string, and the
		// result is the text before it.
	case string(engine.StopMaxTokens):
		switch {
		case sp != nil && n != int(sp.MaxTokens):
			failWith(ErrReplay, "the job says it reached its limit of %d tokens with %d", sp.MaxTokens, n)
		case sp == nil && exp.MaxTokens > 0 && n != exp.MaxTokens:
			fail("the job says it reached its limit of %d tokens with %d", exp.MaxTokens, n)
		}
	default:
		fail("stop reason %q", a.Stop)
	}
	rep.Duration = time.Since(start)
	rep.Pass = len(rep.Failures) == 0
	if !rep.Pass {
		return rep, fmt.Errorf("%w: %s", verdict, rep.Failures[0])
	}
	return rep, nil
}

// tolerantStop draws the stop's coin and says why it is not a stop's
// ("" when it is, within the tolerance's slack): the coin must lie within
// StopCoinSlack of a stop token's interval on the sampler's walk, or,
// greedy, a stop token's logit within StopLogitSlack of the largest.
func tolerantStop(rp *replayer, logits []float32, stops []int, tol Tolerance) string {
	copy(rp.scratch, logits)
	rp.next++
	d := rp.s.DrawTokens(rp.scratch, stops)
	if d.Greedy {
		if float64(d.Margin) > tol.stopLogitSlack() {
			return fmt.Sprintf("greedy, the stop tokens' best logit lies %.3g below the largest logit (slack %.3g)", d.Margin, tol.stopLogitSlack())
		}
		return ""
	}
	dist := math.Inf(1)
	c := float64(d.Coin)
	for _, iv := range d.Intervals {
		switch {
		case c < iv[0]:
			dist = min(dist, iv[0]-c)
		case c >= iv[1]:
			dist = min(dist, c-iv[1])
		default:
			dist = 0
		}
	}
	if dist > tol.stopCoinSlack() {
		return fmt.Sprintf("the sampler's coin %.4f lies %.3g from the stop tokens' draw (slack %.3g)", c, dist, tol.stopCoinSlack())
	}
	return ""
}

type implausible struct {
	count, first int
	prob         float64
}

// checkTokens prefills seq and counts the output tokens (seq[p:], all but
// the last, which Recompute checks itself) whose probability under the
// logits of the position before them is below minProb.
func checkTokens(ctx context.Context, m *engine.Model, seq []int, p, threads int, minProb float64) (implausible, error) {
	var k implausible
	s, err := m.NewSession(engine.SessionOptions{Threads: threads, MaxPos: len(seq)})
	if err != nil {
		return k, err
	}
	defer s.Close()
	// One pass (full batches), logits from the prompt's last position on.
	err = s.PrefillHiddenLogitsFrom(ctx, seq[:len(seq)-1], 0, p-1, func(int, []float32) {}, func(pos int, logits []float32) {
		if pos == len(seq)-2 {
			return // the last output token: Recompute's, at MinProb
		}
		if pr := prob(logits, seq[pos+1]); pr < minProb {
			if k.count == 0 {
				k.first, k.prob = pos+1-p, pr
			}
			k.count++
		}
	})
	return k, err
}

// prob is the probability of token t under logits (softmax, temperature 1).
func prob(logits []float32, t int) float64 {
	hi := float64(slices.Max(logits))
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v) - hi)
	}
	return math.Exp(float64(logits[t])-hi) / z
}

// StopString is the stop reason of a version 3 attestation whose job
// ended when its text reached one of its stop strings: the last output
// token completed it, and the result is the text before it.
const StopString = "stop"

// firstStop is where the first of stops occurs in text.
func firstStop(text string, stops []string) (int, bool) {
	first := -1
	for _, st := range stops {
		if i := strings.Index(text, st); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first, first >= 0
}

// ResultText is the result a's tokens make: the decoded output, cut
// before its first stop string for a job that stopped at one (as the
// built-in backend cuts the text it streams).
func ResultText(m *engine.Model, a *Attestation, prompt, out []int) string {
	text := DecodeOutput(m, prompt, out)
	if a.Stop == StopString && a.Sampling != nil {
		if i, ok := firstStop(text, a.Sampling.StopStrings); ok {
			return text[:i]
		}
	}
	return text
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
	return GenerateStops(ctx, m, req, nil, modelSHA256, engineVersion, onToken)
}

// GenerateStops is Generate for a job with stop strings, which the
// attestation records. The caller cuts the text at them: when its
// onToken returns an error wrapping ErrStopString, the job ended at a
// stop string with the token just generated, and GenerateStops returns
// the attestation (stop reason StopString) with that error.
func GenerateStops(ctx context.Context, m *engine.Model, req engine.GenerateRequest, stops []string, modelSHA256 []byte, engineVersion string, onToken func(engine.Token) error) (engine.Result, *Attestation, error) {
	rec := NewRecorder(TopK)
	req.Hidden = rec.Hidden
	res, err := m.Generate(ctx, req, onToken)
	stopped := err != nil && errors.Is(err, ErrStopString) && len(stops) > 0 && len(res.Tokens) > 0
	if err != nil && !stopped {
		return res, nil, err
	}
	stop := string(res.Stop)
	if stopped {
		// The caller's callback ended the job at a stop string: the last
		// token, already recorded, completed it.
		stop = StopString
	}
	commits, cerr := rec.Finish()
	if cerr != nil {
		return res, nil, cerr
	}
	sp := res.Sampling
	a := &Attestation{
		Version: VersionSampling, Engine: engineVersion, ModelSHA256: modelSHA256, Quant: m.TensorType(),
		PromptTokens: toU32(res.PromptTokens), OutputTokens: toU32(res.Tokens),
		Stop: stop, ChunkTokens: ChunkTokens, Commits: commits,
		Sampling: &Sampling{Temperature: sp.Temperature, TopP: sp.TopP, Seed: sp.Seed, MaxTokens: uint32(sp.MaxTokens), StopStrings: stops},
	}
	return res, a, err // err: nil, or the callback's stop
}

func toU32(v []int) []uint32 {
	out := make([]uint32, len(v))
	for i, t := range v {
		out[i] = uint32(t)
	}
	return out
}

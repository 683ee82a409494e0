package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// GenerateRequest is one text generation job.
type GenerateRequest struct {
	Prompt string
	// Messages, instead of Prompt, is a conversation to continue: it is
	// rendered with the model's chat template and the assistant's header
	// (see Model.EncodeChat). A model without a template refuses it.
	Messages []ChatMessage
	// MaxTokens is the number of tokens to generate at most; 0 means as
	// many as the context leaves after the prompt.
	MaxTokens int
	// Temperature 0 is greedy decoding; up to 2 is accepted.
	Temperature float32
	// TopP restricts sampling to the smallest set of tokens whose
	// probability exceeds it; in (0, 1], and 0 means 1 (off).
	TopP float32
	// Seed fixes the sampler's random stream (0 means DefaultSeed).
	Seed uint64
	// Threads per matrix product; 0 means runtime.GOMAXPROCS(0).
	Threads int
	// Hidden, when not nil, is called for every generated token with the
	// final-normed last hidden state that produced it (position pos, the
	// token's own position minus one). The slice is reused: copy what is
	// kept. Verifiable inference commits to these (internal/verify).
	Hidden func(pos int, hidden []float32)
}

// Token is one generated token, as handed to the streaming callback.
type Token struct {
	ID   int    `json:"id"`
	Text string `json:"text"` // decoded bytes; may be part of a UTF-8 character
	Pos  int    `json:"pos"`  // position in the sequence (the prompt starts at 0)
}

// StopReason says why generation ended.
type StopReason string

// Stop reasons.
const (
	StopEOS       StopReason = "eos"        // the model produced BOS, EOS or an end-of-turn token
	StopMaxTokens StopReason = "max_tokens" // MaxTokens were generated
	StopCancelled StopReason = "cancelled"  // the context ended or the callback failed
)

// Timings are wall-clock measurements of a generation.
type Timings struct {
	Prompt   time.Duration // processing the prompt, up to the first sampled token
	Generate time.Duration // the tokens after the first
	Total    time.Duration
	// TokensPerSecond is generated tokens after the first over Generate
	// (the rate of the decoding loop); 0 when fewer than two were made.
	TokensPerSecond float64
}

// Result is the outcome of a generation.
type Result struct {
	PromptTokens []int // including BOS
	Tokens       []int // generated, excluding a final BOS/EOS
	Text         string
	Stop         StopReason
	// Sampling is what the sampler ran with, after defaults (temperature,
	// top-p, seed) and the token limit after MaxTokens' default: what a
	// verifier needs to replay the draws (internal/verify).
	Sampling SamplingParams
	Timings  Timings
}

// Generate runs req and calls onToken (when not nil) with each generated
// token as soon as it is sampled. It stops at BOS or EOS, after MaxTokens,
// when ctx ends (returning ctx's error) or when onToken returns an error
// (returning it). The Result is filled in every case, with what was
// generated so far.
func (m *Model) Generate(ctx context.Context, req GenerateRequest, onToken func(Token) error) (Result, error) {
	var res Result
	start := time.Now()
	if err := validateSampling(req.Temperature, req.TopP); err != nil {
		return res, err
	}
	if req.Threads < 0 {
		return res, fmt.Errorf("%w: %d", ErrThreads, req.Threads)
	}
	var prompt []int
	switch {
	case len(req.Messages) > 0 && req.Prompt != "":
		return res, fmt.Errorf("%w: both a prompt and messages", ErrChatMessages)
	case len(req.Messages) > 0:
		var err error
		if prompt, err = m.EncodeChat(req.Messages); err != nil {
			return res, err
		}
	default:
		prompt = m.tok.Encode(req.Prompt, m.addBOS)
	}
	if len(prompt) == 0 {
		prompt = []int{m.tok.BOS()} // an empty prompt without BOS: start from BOS anyway
	}
	res.PromptTokens = prompt
	seq := m.cfg.SeqLen
	if len(prompt) >= seq {
		return res, fmt.Errorf("%w: %d tokens, context %d", ErrPromptTooLong, len(prompt), seq)
	}
	maxTokens := req.MaxTokens
	room := seq - len(prompt)
	if maxTokens == 0 {
		maxTokens = room
	}
	if maxTokens < 0 || maxTokens > room {
		return res, fmt.Errorf("%w: %d tokens after a %d-token prompt, context %d", ErrMaxTokens, req.MaxTokens, len(prompt), seq)
	}
	sampler, err := NewSampler(m.cfg.VocabSize, req.Temperature, req.TopP, req.Seed)
	if err != nil {
		return res, err
	}
	res.Sampling = NormalizeSampling(req.Temperature, req.TopP, req.Seed)
	res.Sampling.MaxTokens = maxTokens
	// The last generated token is never fed back, so the cache needs one
	// position less than the whole sequence.
	s, err := m.NewSession(SessionOptions{Threads: req.Threads, MaxPos: len(prompt) + maxTokens - 1})
	if err != nil {
		return res, err
	}
	defer s.Close()

	res.Tokens = make([]int, 0, maxTokens)
	res.Stop = StopMaxTokens
	finish := func(err error) (Result, error) {
		var b strings.Builder
		prev := prompt[len(prompt)-1]
		for _, id := range res.Tokens {
			b.WriteString(m.tok.Piece(prev, id))
			prev = id
		}
		res.Text = b.String()
		res.Timings.Total = time.Since(start)
		if err != nil {
			res.Stop = StopCancelled
		}
		return res, err
	}

	// The prompt's tokens but the last go through the layers in batches
	// (their logits are not needed); the last one starts the token loop.
	if err := s.Prefill(ctx, prompt[:len(prompt)-1], 0); err != nil {
		return finish(err)
	}
	token := prompt[len(prompt)-1]
	var genStart time.Time
	for pos := len(prompt) - 1; len(res.Tokens) < maxTokens; pos++ {
		if err := ctx.Err(); err != nil {
			return finish(err)
		}
		logits, err := s.Forward(token, pos)
		if err != nil {
			return finish(err)
		}
		next := sampler.Sample(logits)
		if len(res.Tokens) == 0 {
			genStart = time.Now()
			res.Timings.Prompt = genStart.Sub(start)
		}
		if next == m.tok.BOS() || next == m.tok.EOS() || slices.Contains(m.endTurn, next) {
			res.Stop = StopEOS
			break
		}
		res.Tokens = append(res.Tokens, next)
		if req.Hidden != nil {
			req.Hidden(pos, s.finalHidden())
		}
		if onToken != nil {
			if err := onToken(Token{ID: next, Text: m.tok.Piece(token, next), Pos: pos + 1}); err != nil {
				return finish(fmt.Errorf("engine: token callback: %w", err))
			}
		}
		token = next
	}
	if !genStart.IsZero() {
		res.Timings.Generate = time.Since(genStart)
		if n := len(res.Tokens); n > 1 && res.Timings.Generate > 0 {
			res.Timings.TokensPerSecond = float64(n-1) / res.Timings.Generate.Seconds()
		}
	}
	return finish(nil)
}

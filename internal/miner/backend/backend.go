// Package backend runs a miner's generation jobs on an inference backend:
// the built-in engine (package engine, in process), an Ollama server
// (/api/generate, /api/chat, NDJSON streams) or any OpenAI-compatible server
// such as vLLM or llama.cpp's llama-server (/v1/completions,
// /v1/chat/completions, SSE streams).
//
// Every backend implements Backend: it lists the models it can serve now
// and runs one Request, streaming text to a callback as it is generated and
// returning a Result with the token counts the backend reported. Errors
// carry one of the package's sentinels so that the miner can tell a job it
// must refuse (ErrInvalidRequest, ErrUnknownModel) from a backend that is
// down or broken (ErrBackendUnavailable, ErrBackendFailed), where the job
// may be retried on another miner.
//
// Imported by the miner daemon and the CLI that configures it. It depends
// on the standard library and, for the built-in backend, on package engine.
package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Backends wrap them with details; test with errors.Is.
var (
	// ErrInvalidRequest means the job itself is wrong (a Validate failure,
	// or a request the backend rejected as malformed or too long): running
	// it elsewhere would fail the same way.
	ErrInvalidRequest = errors.New("backend: invalid request")
	// ErrUnknownModel means the backend does not have the requested model.
	ErrUnknownModel = errors.New("backend: unknown model")
	// ErrBackendUnavailable means the backend could not be reached or
	// refused service for reasons of its own (connection refused, HTTP 5xx,
	// 429, rejected credentials): the job may succeed on another miner.
	ErrBackendUnavailable = errors.New("backend: backend unavailable")
	// ErrBackendFailed means the backend failed during the job: an error
	// reported mid-stream, a malformed stream, or a stream that ended before
	// its final message.
	ErrBackendFailed = errors.New("backend: backend failed")
)

// Validation errors. Each is returned wrapped together with
// ErrInvalidRequest, so errors.Is works for either.
var (
	ErrNoModel     = errors.New("backend: no model named")
	ErrPromptForm  = errors.New("backend: exactly one of prompt and messages must be set")
	ErrEmptyPrompt = errors.New("backend: empty prompt")
	ErrMaxTokens   = errors.New("backend: max tokens must be positive")
	ErrTemperature = errors.New("backend: temperature outside 0..2")
	ErrTopP        = errors.New("backend: top-p outside 0..1")
)

// Finish reasons reported in Result.FinishReason.
const (
	FinishStop     = "stop"     // the model ended, or a stop sequence matched
	FinishLength   = "length"   // MaxTokens (or the model's context) was reached
	FinishCanceled = "canceled" // the context ended or the token callback failed
)

// Request is one generation job as the miner receives it.
type Request struct {
	Model string
	// Prompt is a plain completion prompt; Messages is the chat form.
	// Exactly one of the two is set.
	Prompt   string
	Messages []ChatMessage
	// MaxTokens is the most tokens to generate; it must be positive.
	MaxTokens int
	// Temperature 0 is greedy decoding; up to 2.
	Temperature float32
	// TopP in 0..1; 0 means the backend's default.
	TopP float32
	// Seed fixes sampling where the backend supports it; 0 means the
	// backend's default (random for Ollama and most servers, a fixed
	// default seed for the built-in engine). Remote backends receive it
	// reduced to 63 bits.
	Seed uint64
	// Stop ends generation when the text would contain one of these
	// strings; the stop string itself is not part of the result.
	Stop []string
}

// ChatMessage is one message of a chat job: a role (system, user,
// assistant) and its text.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Images are image inputs, each the standard base64 of an image
	// file (minerproto.ChatMessage); only a vision model reads them.
	Images []string `json:"images,omitempty"`
}

// Validate checks what every backend needs: a model, exactly one of
// Prompt and Messages and not empty, MaxTokens > 0, Temperature in 0..2 and
// TopP in 0..1. Errors wrap ErrInvalidRequest and one of the validation
// sentinels.
func (r Request) Validate() error {
	bad := func(sentinel error, format string, args ...any) error {
		return fmt.Errorf("%w: %w"+format, append([]any{ErrInvalidRequest, sentinel}, args...)...)
	}
	switch {
	case strings.TrimSpace(r.Model) == "":
		return bad(ErrNoModel, "")
	case r.Prompt != "" && len(r.Messages) > 0:
		return bad(ErrPromptForm, " (both are set)")
	case r.Prompt == "" && len(r.Messages) == 0:
		return bad(ErrEmptyPrompt, "")
	case r.MaxTokens <= 0:
		return bad(ErrMaxTokens, " (%d)", r.MaxTokens)
	case !(r.Temperature >= 0 && r.Temperature <= 2): // also rejects NaN
		return bad(ErrTemperature, " (%v)", r.Temperature)
	case !(r.TopP >= 0 && r.TopP <= 1):
		return bad(ErrTopP, " (%v)", r.TopP)
	}
	if len(r.Messages) > 0 {
		empty := true
		for i, m := range r.Messages {
			if strings.TrimSpace(m.Role) == "" {
				return bad(ErrEmptyPrompt, " (message %d has no role)", i)
			}
			if m.Content != "" || len(m.Images) > 0 {
				empty = false
			}
		}
		if empty {
			return bad(ErrEmptyPrompt, " (every message is empty)")
		}
	}
	return nil
}

// Result is what a generation produced. Text is exactly the concatenation
// of the pieces passed to the token callback.
type Result struct {
	Text string
	// TokensIn is the prompt's length in tokens as the backend counted it
	// (with its chat template, BOS and the like).
	TokensIn int
	// TokensOut is the number of generated tokens as the backend counted
	// it.
	TokensOut int
	// UsageEstimated is true when the backend reported no token counts:
	// TokensOut then counts the streamed chunks (for llama.cpp and vLLM one
	// chunk is one token) and TokensIn is 0.
	UsageEstimated bool
	// FinishReason is FinishStop, FinishLength or FinishCanceled.
	FinishReason string
	// Backend is the Name of the backend that ran the job.
	Backend string
	// Attestation is the canonical CBOR of a verify.Attestation: the
	// built-in engine's commitments to its hidden states, which the miner
	// signs into the receipt. Nil where the backend cannot expose them
	// (Ollama, OpenAI-compatible servers: docs/VERIFICATION.md) or the
	// text was cut by a stop sequence (the tokens then run past it). A
	// string of bytes, not a []byte, so that Result stays comparable.
	Attestation string
}

// ModelInfo describes a model a backend can serve. Fields other than Name
// are zero when the backend does not say.
type ModelInfo struct {
	Name          string `json:"name"`
	SizeBytes     int64  `json:"size_bytes,omitempty"`
	Family        string `json:"family,omitempty"`         // architecture, e.g. "llama"
	Format        string `json:"format,omitempty"`         // file format, e.g. "gguf"
	ParameterSize string `json:"parameter_size,omitempty"` // e.g. "7B", as the backend writes it
	Quantization  string `json:"quantization,omitempty"`   // e.g. "Q4_0", "F32"
	ContextLength int    `json:"context_length,omitempty"`
}

// Backend runs models. Implementations are safe for concurrent use.
type Backend interface {
	// Name is "builtin", "ollama" or "openai".
	Name() string
	// Models lists what the backend can serve now.
	Models(ctx context.Context) ([]ModelInfo, error)
	// Generate runs req, calling onToken (when not nil) with each piece of
	// text as it is generated. It returns when the generation ends, when
	// ctx ends or when onToken returns an error; in the last two cases the
	// Result holds what was generated so far with FinishReason
	// FinishCanceled, and the error wraps ctx's error or onToken's.
	Generate(ctx context.Context, req Request, onToken func(text string) error) (Result, error)
}

// FlattenMessages turns chat messages into a completion prompt for a model
// without a chat template (the built-in engine's): one "role: content" line
// per message, then "assistant:" for the model to continue. For example
// [{system, "Be brief."}, {user, "Hi"}] becomes
//
//	system: Be brief.
//	user: Hi
//	assistant:
func FlattenMessages(msgs []ChatMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Role)
		b.WriteString(": ")
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	b.WriteString("assistant:")
	return b.String()
}

// canceled finishes a generation cut short by ctx or by the callback.
func canceled(res Result, err error) (Result, error) {
	res.FinishReason = FinishCanceled
	return res, err
}

package miner

import (
	"context"
	"errors"
	"fmt"

	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// BackendRunner runs jobs on an inference backend (built-in engine,
// Ollama, OpenAI-compatible server).
type BackendRunner struct {
	B backend.Backend
}

// Name implements Runner.
func (r BackendRunner) Name() string { return r.B.Name() }

// Models implements Runner.
func (r BackendRunner) Models(ctx context.Context) ([]string, error) {
	ms, err := r.B.Models(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ms))
	for _, m := range ms {
		names = append(names, m.Name)
	}
	return names, nil
}

// Run implements Runner. A job the backend can never run (unknown model,
// invalid parameters) fails with ErrBadJob; anything else (the backend is
// down or failed) may be retried on another miner.
func (r BackendRunner) Run(ctx context.Context, job *minerproto.Job, onToken func(string) error) (Output, error) {
	req := backend.Request{
		Model: job.Model, Prompt: job.Prompt, MaxTokens: job.MaxTokens,
		Temperature: job.Temperature, TopP: job.TopP, Seed: job.Seed, Stop: job.Stop,
	}
	for _, m := range job.Messages {
		req.Messages = append(req.Messages, backend.ChatMessage(m))
	}
	res, err := r.B.Generate(ctx, req, onToken)
	if err != nil {
		if errors.Is(err, backend.ErrInvalidRequest) || errors.Is(err, backend.ErrUnknownModel) {
			return Output{}, fmt.Errorf("%w: %v", ErrBadJob, err)
		}
		return Output{}, err
	}
	return Output{Text: res.Text, TokensIn: res.TokensIn, TokensOut: res.TokensOut, FinishReason: res.FinishReason, Attestation: []byte(res.Attestation)}, nil
}

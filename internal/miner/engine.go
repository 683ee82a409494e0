package miner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// EngineRunner runs jobs on the built-in engine with one loaded model.
type EngineRunner struct {
	Model   *engine.Model
	Threads int // per job; 0: all cores
}

// Name implements Runner.
func (r *EngineRunner) Name() string { return "builtin" }

// Models implements Runner.
func (r *EngineRunner) Models(context.Context) ([]string, error) {
	return []string{r.Model.Name()}, nil
}

// ChatPrompt flattens chat messages for a model without a chat template:
// one "role: content" paragraph per message, ending with "assistant:".
func ChatPrompt(msgs []minerproto.ChatMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s: %s\n", m.Role, m.Content)
	}
	b.WriteString("assistant:")
	return b.String()
}

// Run implements Runner.
func (r *EngineRunner) Run(ctx context.Context, job *minerproto.Job, onToken func(string) error) (Output, error) {
	if job.Model != r.Model.Name() {
		return Output{}, fmt.Errorf("%w: model %q not served here", ErrBadJob, job.Model)
	}
	prompt := job.Prompt
	if len(job.Messages) > 0 {
		prompt = ChatPrompt(job.Messages)
	}
	res, err := r.Model.Generate(ctx, engine.GenerateRequest{
		Prompt: prompt, MaxTokens: job.MaxTokens, Temperature: job.Temperature, TopP: job.TopP, Seed: job.Seed, Threads: r.Threads,
	}, func(t engine.Token) error { return onToken(t.Text) })
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return Output{}, err
		}
		return Output{}, fmt.Errorf("%w: %v", ErrBadJob, err)
	}
	finish := "stop"
	if res.Stop == engine.StopMaxTokens {
		finish = "length"
	}
	return Output{Text: res.Text, TokensIn: len(res.PromptTokens), TokensOut: len(res.Tokens), FinishReason: finish}, nil
}

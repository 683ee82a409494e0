package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/jobinput"
)

// Limits of `ai-submit --input-data`: the coordinator's defaults, checked
// here too so that a file that cannot go is refused before any escrow.
const (
	maxInputFileBytes = 64 << 20 // coordinator.Files.MaxFileBytes
	maxPromptBytes    = 64 << 10 // coordinator.Config.MaxPromptBytes
)

// tokenCounter counts tokens with an engine model's tokenizer, BOS
// included, as the built-in backend counts a prompt.
type tokenCounter struct{ m *engine.Model }

func (c tokenCounter) Count(s string) int { return len(c.m.Tokenizer().Encode(s, true)) }

// inputBudget is what a prompt with input data may take for model: its
// context when this machine knows the model (its tokenizer counts as the
// miner's will), else the coordinator's prompt limit in bytes.
func inputBudget(home, model string, maxTokens int) (jobinput.Budget, func()) {
	b := jobinput.Budget{MaxBytes: maxPromptBytes, MaxFileBytes: maxInputFileBytes}
	m, err := engine.Resolve(home, model)
	if err != nil {
		return b, func() {}
	}
	ctxLen := m.Config().SeqLen
	b.Counter, b.ContextTokens = tokenCounter{m}, ctxLen
	// Keep room for the answer: the tokens asked for, but at most half
	// the context, so that a small model still sees some of the data.
	b.ReserveTokens = min(maxTokens, ctxLen/2)
	return b, func() { _ = m.Close() }
}

// inputPrompt reads the file at path, stores it with the coordinator
// (content-addressed: a second submit of the same file sends nothing),
// and returns the prompt with the file's text in it.
func inputPrompt(ctx context.Context, g *Globals, c *coordinator.Client, path, prompt, model string, maxTokens int) (jobinput.Prompt, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return jobinput.Prompt{}, usagef("--input-data: %v", err)
	}
	if fi.Size() > maxInputFileBytes {
		return jobinput.Prompt{}, usagef("--input-data: %s is %d bytes, the limit is %d", path, fi.Size(), maxInputFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return jobinput.Prompt{}, usagef("--input-data: %v", err)
	}
	budget, done := inputBudget(g.Home, model, maxTokens)
	defer done()
	// Check the text before uploading: a binary file goes nowhere.
	if _, err := jobinput.Build(prompt, data, fi.Name(), "", budget); err != nil {
		return jobinput.Prompt{}, usagef("--input-data: %v", err)
	}
	info, err := c.UploadFile(ctx, path, 0)
	if err != nil {
		return jobinput.Prompt{}, fmt.Errorf("--input-data: upload %s: %w", path, err)
	}
	p, err := jobinput.Build(prompt, data, fi.Name(), info.Hash, budget)
	if err != nil {
		return jobinput.Prompt{}, usagef("--input-data: %v", err)
	}
	return p, nil
}

// localCmdFor names the command that runs a job type on this machine
// until miners take it through the coordinator.
func localCmdFor(typ string) string {
	if typ == "training" {
		return "model train"
	}
	return "data process"
}

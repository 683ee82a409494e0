// Package jobinput puts a customer's input file into an inference prompt
// (`ai-submit --input-data FILE`): the file's text follows the prompt,
// headed by its name and SHA-256 (its first 16 hex digits), cut on a line boundary to what fits the
// model's context, and saying so when it is cut. The prompt hash that the
// job's receipt commits to therefore covers the file's hash and the text
// the model saw. Imported by the CLI (and any other client that submits).
package jobinput

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Errors of input building; test them with errors.Is.
var (
	ErrNotText  = errors.New("jobinput: input data is not UTF-8 text")
	ErrEmpty    = errors.New("jobinput: input data is empty")
	ErrNoRoom   = errors.New("jobinput: the prompt leaves no room in the model's context for input data")
	ErrTooLarge = errors.New("jobinput: input data over the size limit")
)

// Counter counts the tokens of a prompt as the model will (an engine
// tokenizer); nil budgets by bytes instead.
type Counter interface {
	Count(text string) int
}

// Budget is what the prompt may take.
type Budget struct {
	// Counter and ContextTokens bound the prompt in tokens; ReserveTokens
	// of the context are left for the answer.
	Counter       Counter
	ContextTokens int
	ReserveTokens int
	// MaxBytes bounds the prompt in bytes (the coordinator's prompt limit)
	// and applies always.
	MaxBytes int
	// MaxFileBytes refuses larger files outright (0: no limit).
	MaxFileBytes int
}

// Prompt is the built prompt and what of the file it holds.
type Prompt struct {
	Text        string `json:"-"`
	FileSHA256  string `json:"input_sha256"`
	FileBytes   int    `json:"input_bytes"`
	KeptBytes   int    `json:"input_bytes_in_prompt"`
	FileLines   int    `json:"input_lines"`
	KeptLines   int    `json:"input_lines_in_prompt"`
	Truncated   bool   `json:"truncated"`
	Note        string `json:"note,omitempty"` // what was cut and why, for people
	PromptBytes int    `json:"prompt_bytes"`
}

// shortHash is the first 16 hex digits of a file's SHA-256: enough to
// name the file in the prompt (the whole hash is the coordinator's key for
// it) without spending 64 tokens of a small model's context on it.
func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// Build returns prompt followed by data (name and sha256 describe it),
// cut to the budget on a line boundary.
func Build(prompt string, data []byte, name, sha256 string, b Budget) (Prompt, error) {
	switch {
	case len(data) == 0:
		return Prompt{}, ErrEmpty
	case b.MaxFileBytes > 0 && len(data) > b.MaxFileBytes:
		return Prompt{}, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, name, len(data), b.MaxFileBytes)
	case !utf8.Valid(data):
		return Prompt{}, fmt.Errorf("%w: %s (send a CSV, JSON or other text file)", ErrNotText, name)
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	render := func(n int) string {
		var sb strings.Builder
		sb.WriteString(strings.TrimRight(prompt, "\n"))
		fmt.Fprintf(&sb, "\n\nInput data: %s (sha256 %s, %d lines)", name, shortHash(sha256), len(lines))
		if n < len(lines) {
			fmt.Fprintf(&sb, ", the first %d lines:\n", n)
		} else {
			sb.WriteString(":\n")
		}
		for _, l := range lines[:n] {
			sb.WriteString(l)
		}
		return sb.String()
	}
	fits := func(n int) bool {
		s := render(n)
		if b.MaxBytes > 0 && len(s) > b.MaxBytes {
			return false
		}
		if b.Counter != nil && b.ContextTokens > 0 && b.Counter.Count(s) > b.ContextTokens-b.ReserveTokens {
			return false
		}
		return true
	}
	if !fits(0) {
		return Prompt{}, fmt.Errorf("%w (context %d tokens, %d kept for the answer, prompt limit %d bytes)", ErrNoRoom, b.ContextTokens, b.ReserveTokens, b.MaxBytes)
	}
	// The largest n that fits: fits is monotone in n.
	n := sort.Search(len(lines)+1, func(n int) bool { return !fits(n) }) - 1
	p := Prompt{Text: render(n), FileSHA256: sha256, FileBytes: len(data), FileLines: len(lines), KeptLines: n, Truncated: n < len(lines)}
	for _, l := range lines[:n] {
		p.KeptBytes += len(l)
	}
	p.PromptBytes = len(p.Text)
	if p.Truncated {
		why := fmt.Sprintf("the prompt limit of %d bytes", b.MaxBytes)
		if b.Counter != nil && b.ContextTokens > 0 {
			why = fmt.Sprintf("the model's context of %d tokens (%d kept for the answer)", b.ContextTokens, b.ReserveTokens)
		}
		p.Note = fmt.Sprintf("input truncated: %d of %d lines (%d of %d bytes) of %s fit %s", n, len(lines), p.KeptBytes, len(data), name, why)
	}
	return p, nil
}

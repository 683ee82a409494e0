package backend_test

import (
	"errors"
	"math"
	"testing"

	"github.com/aitbc/aitbc/internal/miner/backend"
)

func TestRequestValidate(t *testing.T) {
	ok := backend.Request{Model: "m", Prompt: "p", MaxTokens: 1}
	msgs := []backend.ChatMessage{{Role: "user", Content: "hi"}}
	for _, tc := range []struct {
		name string
		edit func(*backend.Request)
		want error // nil: valid
	}{
		{"minimal", func(*backend.Request) {}, nil},
		{"chat", func(r *backend.Request) { r.Prompt, r.Messages = "", msgs }, nil},
		{"bounds", func(r *backend.Request) { r.Temperature, r.TopP = 2, 1 }, nil},
		{"no model", func(r *backend.Request) { r.Model = " " }, backend.ErrNoModel},
		{"both forms", func(r *backend.Request) { r.Messages = msgs }, backend.ErrPromptForm},
		{"no prompt", func(r *backend.Request) { r.Prompt = "" }, backend.ErrEmptyPrompt},
		{"empty messages", func(r *backend.Request) {
			r.Prompt, r.Messages = "", []backend.ChatMessage{{Role: "user"}}
		}, backend.ErrEmptyPrompt},
		{"message without role", func(r *backend.Request) {
			r.Prompt, r.Messages = "", []backend.ChatMessage{{Content: "hi"}}
		}, backend.ErrEmptyPrompt},
		{"zero max tokens", func(r *backend.Request) { r.MaxTokens = 0 }, backend.ErrMaxTokens},
		{"negative max tokens", func(r *backend.Request) { r.MaxTokens = -1 }, backend.ErrMaxTokens},
		{"temperature high", func(r *backend.Request) { r.Temperature = 2.01 }, backend.ErrTemperature},
		{"temperature negative", func(r *backend.Request) { r.Temperature = -0.1 }, backend.ErrTemperature},
		{"temperature NaN", func(r *backend.Request) { r.Temperature = float32(math.NaN()) }, backend.ErrTemperature},
		{"top-p high", func(r *backend.Request) { r.TopP = 1.5 }, backend.ErrTopP},
		{"top-p negative", func(r *backend.Request) { r.TopP = -1 }, backend.ErrTopP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			err := r.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, backend.ErrInvalidRequest) {
				t.Fatalf("err %v, want %v and ErrInvalidRequest", err, tc.want)
			}
		})
	}
}

func TestFlattenMessages(t *testing.T) {
	got := backend.FlattenMessages([]backend.ChatMessage{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}})
	if want := "system: Be brief.\nuser: Hi\nassistant:"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

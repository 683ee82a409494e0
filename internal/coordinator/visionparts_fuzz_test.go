package coordinator

import (
	"encoding/json"
	"testing"

	"github.com/aitbc/aitbc/internal/minerproto"
)

// FuzzOpenAIMessages feeds the OpenAI messages decoder arbitrary JSON: it
// never panics, and what it accepts passes checkImages or is refused by it
// with an error, never half-checked; messages it accepts re-encode to the
// canonical form the prompt hash reads.
func FuzzOpenAIMessages(f *testing.F) {
	f.Add(`[{"role":"user","content":"hi"}]`)
	f.Add(`[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]`)
	f.Add(`[{"role":"user","content":[{"type":"image_url","image_url":"data:image/gif;base64,R0lGODlh"}]}]`)
	f.Add(`[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]`)
	f.Add(`[{"role":"user","content":null}]`)
	f.Fuzz(func(t *testing.T, raw string) {
		var in []openAIMessage
		if json.Unmarshal([]byte(raw), &in) != nil {
			return
		}
		msgs, err := openAIMessages(in)
		if err != nil {
			return
		}
		_ = checkImages(msgs)
		b, err := json.Marshal(msgs)
		if err != nil {
			t.Fatal(err)
		}
		var back []minerproto.ChatMessage
		if err := json.Unmarshal(b, &back); err != nil || minerproto.PromptHash("", back) != minerproto.PromptHash("", msgs) {
			t.Fatalf("messages do not round-trip: %s (%v)", b, err)
		}
	})
}

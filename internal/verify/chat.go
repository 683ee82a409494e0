package verify

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// MaxChatMessages bounds the messages of a chat job a verifier rebuilds
// (the engine's own bound on a conversation).
const MaxChatMessages = engine.MaxChatMessages

// FlattenChat is the completion prompt a model without a chat template is
// given for msgs: what the miner's built-in backend runs
// (backend.FlattenMessages, held equal by TestFlattenChatIsTheBackends).
// It lives here too because the backend imports this package, not the
// other way round.
func FlattenChat(msgs []minerproto.ChatMessage) string {
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

// ChatPromptTokens are the prompt tokens the miner's built-in engine ran
// for a chat job: msgs rendered with the model's chat template (GGUF
// tokenizer.chat_template, as llama.cpp renders it: engine.EncodeChat)
// followed by the assistant's header, or, for a model without a template
// (tolstoy-1m, llama2.c checkpoints), the flattened conversation encoded
// as a completion prompt. Encodings with and without BOS are both
// returned for the flattened form (the engine adds BOS by model); the
// caller picks the one whose length fits. Messages with images are
// refused: the engine reads text only, so no honest attested job has them.
func ChatPromptTokens(m *engine.Model, msgs []minerproto.ChatMessage) (withBOS, noBOS []int, err error) {
	if len(msgs) == 0 || len(msgs) > MaxChatMessages {
		return nil, nil, fmt.Errorf("%w: %d chat messages (1 to %d)", ErrTokens, len(msgs), MaxChatMessages)
	}
	em := make([]engine.ChatMessage, len(msgs))
	for i, cm := range msgs {
		if len(cm.Images) > 0 {
			return nil, nil, fmt.Errorf("%w: message %d carries images, which the engine does not read", ErrTokens, i)
		}
		em[i] = engine.ChatMessage{Role: cm.Role, Content: cm.Content}
	}
	if m.ChatTemplate() != "" {
		ids, err := m.EncodeChat(em)
		if err != nil {
			// The miner's engine refuses the same messages: a receipt for
			// them was not produced by it.
			return nil, nil, fmt.Errorf("%w: the model's chat template does not render the messages: %w", ErrTokens, err)
		}
		return ids, nil, nil
	}
	p := FlattenChat(msgs)
	return m.Tokenizer().Encode(p, true), m.Tokenizer().Encode(p, false), nil
}

// ServerChatPromptTokens are the prompt tokens an OpenAI-compatible
// server (backend "openai" in a LogprobAttestation) ran for a chat job:
// the model's own template as ChatPromptTokens renders it, but for a GGUF
// without one ChatML, which is llama-server's fallback
// (common_chat_templates_init in common/chat.cpp uses CHATML_TEMPLATE_SRC
// when the file has no tokenizer.chat_template), where the built-in
// engine flattens the conversation. The rendered text is tokenized as
// llama-server tokenizes a prompt: BOS first, and the text of control
// tokens anywhere as those tokens (parse_special). Other backends
// (Ollama) get ChatPromptTokens' encoding.
func ServerChatPromptTokens(m *engine.Model, backend string, msgs []minerproto.ChatMessage) (withBOS, noBOS []int, err error) {
	if backend != BackendOpenAI || m.ChatTemplate() != "" {
		return ChatPromptTokens(m, msgs)
	}
	if len(msgs) == 0 || len(msgs) > MaxChatMessages {
		return nil, nil, fmt.Errorf("%w: %d chat messages (1 to %d)", ErrTokens, len(msgs), MaxChatMessages)
	}
	em := make([]engine.ChatMessage, len(msgs))
	for i, cm := range msgs {
		if len(cm.Images) > 0 {
			return nil, nil, fmt.Errorf("%w: message %d carries images, which the verifier does not read", ErrTokens, i)
		}
		em[i] = engine.ChatMessage{Role: cm.Role, Content: cm.Content}
	}
	text, err := engine.RenderChat(engine.ChatTemplateChatML, em, true)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ChatML does not render the messages: %w", ErrTokens, err)
	}
	return m.Tokenizer().EncodeSpecial(text, true), nil, nil
}

// promptTokens is the encoding of the claim's prompt or messages that
// fits the attested prompt's length (either encoding binds the attested
// tokens to the text), after checking the text against the receipt's
// prompt hash. It returns nil when the claim carries neither.
func promptTokens(m *engine.Model, claim ReceiptClaim, attested int) ([]int, error) {
	return promptTokensFor(m, claim, attested, ChatPromptTokens)
}

// promptTokensFor is promptTokens with chat, the function that encodes a
// chat job's messages.
func promptTokensFor(m *engine.Model, claim ReceiptClaim, attested int, chat func(*engine.Model, []minerproto.ChatMessage) ([]int, []int, error)) ([]int, error) {
	var withBOS, noBOS []int
	switch {
	case claim.Messages != nil:
		ph := minerproto.PromptHash("", claim.Messages)
		if claim.PromptHash != nil && !bytes.Equal(ph[:], claim.PromptHash) {
			return nil, fmt.Errorf("%w: the messages do not hash to the receipt's prompt hash", ErrTokens)
		}
		var err error
		if withBOS, noBOS, err = chat(m, claim.Messages); err != nil {
			return nil, err
		}
	case claim.Prompt != nil:
		ph := minerproto.PromptHash(*claim.Prompt, nil)
		if claim.PromptHash != nil && !bytes.Equal(ph[:], claim.PromptHash) {
			return nil, fmt.Errorf("%w: the prompt does not hash to the receipt's prompt hash", ErrTokens)
		}
		withBOS, noBOS = m.Tokenizer().Encode(*claim.Prompt, true), m.Tokenizer().Encode(*claim.Prompt, false)
	default:
		return nil, nil
	}
	if noBOS != nil && len(noBOS) == attested {
		return noBOS, nil
	}
	if len(withBOS) == 0 {
		withBOS = []int{m.Tokenizer().BOS()} // the engine starts an empty prompt from BOS
	}
	return slices.Clip(withBOS), nil
}

package engine

import (
	"fmt"
	"strings"

	"github.com/aitbc/aitbc/internal/engine/tokenizer"
)

// ChatMessage is one message of a conversation: a role ("system", "user",
// "assistant") and its text.
type ChatMessage struct {
	Role    string
	Content string
}

// Chat templates the engine renders, by llama.cpp's names for them
// (llama_chat_builtin_templates).
const (
	ChatTemplateChatML          = "chatml"
	ChatTemplateLlama2          = "llama2"
	ChatTemplateLlama2Sys       = "llama2-sys"
	ChatTemplateLlama2SysBOS    = "llama2-sys-bos"
	ChatTemplateLlama2SysStrip  = "llama2-sys-strip"
	ChatTemplateMistralV1       = "mistral-v1"
	ChatTemplateMistralV3       = "mistral-v3"
	ChatTemplateMistralV3Tekken = "mistral-v3-tekken"
	ChatTemplateMistralV7       = "mistral-v7"
	ChatTemplateMistralV7Tekken = "mistral-v7-tekken"
	ChatTemplateLlama3          = "llama3"
)

// renderedTemplates are the templates RenderChat implements.
var renderedTemplates = []string{
	ChatTemplateChatML, ChatTemplateLlama2, ChatTemplateLlama2Sys, ChatTemplateLlama2SysBOS,
	ChatTemplateLlama2SysStrip, ChatTemplateMistralV1, ChatTemplateMistralV3, ChatTemplateMistralV3Tekken,
	ChatTemplateMistralV7, ChatTemplateMistralV7Tekken, ChatTemplateLlama3,
}

// MaxChatMessages bounds the messages of one conversation, so that a job
// cannot make the renderer build an unbounded string (the context length
// bounds the rest once it is tokenized).
const MaxChatMessages = 4096

// DetectChatTemplate names the template of a GGUF tokenizer.chat_template
// (a Jinja source) as llama.cpp's llm_chat_detect_template does: a
// builtin name is taken as is, otherwise the family is recognised by the
// same substrings tested in the same order, without running the Jinja.
// The order matters: a template that also matches an earlier family of
// llama.cpp's list (Phi 4 has <|im_start|>, Phi 3 has <|assistant|>) is
// that family, which the engine does not render. A template that is not
// one of the families the engine renders is refused with an error
// wrapping ErrChatTemplate; it is never approximated by another.
func DetectChatTemplate(tmpl string) (string, error) {
	for _, name := range renderedTemplates {
		if tmpl == name {
			return name, nil
		}
	}
	has := func(s string) bool { return strings.Contains(tmpl, s) }
	name := ""
	switch {
	case has("<|im_start|>"):
		switch {
		case has("<|im_sep|>"):
			name = "phi4"
		case has("<end_of_utterance>"):
			name = "smolvlm"
		default:
			return ChatTemplateChatML, nil
		}
	case strings.HasPrefix(tmpl, "mistral") || has("[INST]"):
		return detectINST(has), nil
	case has("<|assistant|>") && has("<|end|>"):
		name = "phi3"
	case has("[gMASK]<sop>"):
		name = "chatglm4"
	case has("<|assistant|>") && has("<|user|>"):
		name = "glmedge, falcon3 or exaone-moe"
	case has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>"):
		name = "glmedge"
	case has("<|user|>") && has("<|endoftext|>"):
		name = "zephyr"
	case has("bos_token + message['role']"):
		name = "monarch"
	case has("<start_of_turn>"):
		name = "gemma"
	case has(`'\n\nAssistant: ' + eos_token`):
		name = "orion"
	case has("GPT4 Correct "):
		name = "openchat"
	case has("USER: ") && has("ASSISTANT: "):
		name = "vicuna"
	case has("### Instruction:") && has("<|EOT|>"):
		name = "deepseek"
	case has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>"):
		name = "command-r"
	case has("<|start_header_id|>") && has("<|end_header_id|>"):
		return ChatTemplateLlama3, nil
	}
	if name != "" {
		return "", fmt.Errorf("%w: the model's template is llama.cpp's %q, which the engine does not render (it renders %s)",
			ErrChatTemplate, name, strings.Join(renderedTemplates, ", "))
	}
	return "", fmt.Errorf("%w: the model's template (%d bytes) is none of the families the engine renders (%s)",
		ErrChatTemplate, len(tmpl), strings.Join(renderedTemplates, ", "))
}

// detectINST tells apart the [INST] templates: Mistral's official v1, v3,
// v3-tekken and v7, and Llama 2 with its variants.
func detectINST(has func(string) bool) string {
	switch {
	case has("[SYSTEM_PROMPT]"):
		return ChatTemplateMistralV7
	case has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]"):
		switch {
		case has(" [INST]"):
			return ChatTemplateMistralV1
		case has(`"[INST]"`):
			return ChatTemplateMistralV3Tekken
		}
		return ChatTemplateMistralV3
	case has("content.strip()"):
		return ChatTemplateLlama2SysStrip
	case has("bos_token + '[INST]"):
		return ChatTemplateLlama2SysBOS
	case has("<<SYS>>"):
		return ChatTemplateLlama2Sys
	}
	return ChatTemplateLlama2
}

// chatText is a rendered conversation and the byte spans in it that came
// from the messages (roles and contents), which must not be read as
// control tokens.
type chatText struct {
	b         strings.Builder
	untrusted []tokenizer.Span
}

func (c *chatText) lit(s string) { c.b.WriteString(s) }

func (c *chatText) msg(s string) {
	start := c.b.Len()
	c.b.WriteString(s)
	if len(s) > 0 {
		c.untrusted = append(c.untrusted, tokenizer.Span{Start: start, End: c.b.Len()})
	}
}

// cTrim is llama.cpp's trim: C isspace in the "C" locale.
func cTrim(s string) string { return strings.Trim(s, " \t\n\v\f\r") }

// RenderChat renders msgs with the template tmpl (a GGUF
// tokenizer.chat_template or a name DetectChatTemplate returns) exactly as
// llama.cpp's llama_chat_apply_template does, followed by the assistant's
// header when addAssistant is set (for the templates that have one). BOS
// is not part of the text: the tokenizer adds it, as llama.cpp's does.
func RenderChat(tmpl string, msgs []ChatMessage, addAssistant bool) (string, error) {
	c, err := renderChat(tmpl, msgs, addAssistant)
	if err != nil {
		return "", err
	}
	return c.b.String(), nil
}

func renderChat(tmpl string, msgs []ChatMessage, addAssistant bool) (*chatText, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: no messages", ErrChatMessages)
	}
	if len(msgs) > MaxChatMessages {
		return nil, fmt.Errorf("%w: %d messages, at most %d", ErrChatMessages, len(msgs), MaxChatMessages)
	}
	name, err := DetectChatTemplate(tmpl)
	if err != nil {
		return nil, err
	}
	c := &chatText{}
	switch name {
	case ChatTemplateChatML:
		for _, m := range msgs {
			c.lit("<|im_start|>")
			c.msg(m.Role)
			c.lit("\n")
			c.msg(m.Content)
			c.lit("<|im_end|>\n")
		}
		if addAssistant {
			c.lit("<|im_start|>assistant\n")
		}
	case ChatTemplateMistralV7, ChatTemplateMistralV7Tekken:
		sp := ""
		if name == ChatTemplateMistralV7 {
			sp = " "
		}
		for _, m := range msgs {
			switch m.Role {
			case "system":
				c.lit("[SYSTEM_PROMPT]" + sp)
				c.msg(m.Content)
				c.lit("[/SYSTEM_PROMPT]")
			case "user":
				c.lit("[INST]" + sp)
				c.msg(m.Content)
				c.lit("[/INST]")
			default:
				c.lit(sp)
				c.msg(m.Content)
				c.lit("</s>")
			}
		}
	case ChatTemplateMistralV1, ChatTemplateMistralV3, ChatTemplateMistralV3Tekken:
		lead, trail := "", " "
		if name == ChatTemplateMistralV1 {
			lead = " "
		}
		if name == ChatTemplateMistralV3Tekken {
			trail = ""
		}
		inTurn := false
		for _, m := range msgs {
			if !inTurn {
				c.lit(lead + "[INST]" + trail)
				inTurn = true
			}
			switch m.Role {
			case "system":
				c.msg(m.Content)
				c.lit("\n\n")
			case "user":
				c.msg(m.Content)
				c.lit(lead + "[/INST]")
			default:
				content := m.Content
				if name == ChatTemplateMistralV3 {
					content = cTrim(content)
				}
				c.lit(trail)
				c.msg(content)
				c.lit("</s>")
				inTurn = false
			}
		}
	case ChatTemplateLlama2, ChatTemplateLlama2Sys, ChatTemplateLlama2SysBOS, ChatTemplateLlama2SysStrip:
		sys := name != ChatTemplateLlama2
		inTurn := true // the first [INST] is written before the loop, without BOS
		c.lit("[INST] ")
		for _, m := range msgs {
			content := m.Content
			if name == ChatTemplateLlama2SysStrip {
				content = cTrim(content)
			}
			if !inTurn {
				inTurn = true
				if name == ChatTemplateLlama2SysBOS {
					c.lit("<s>[INST] ")
				} else {
					c.lit("[INST] ")
				}
			}
			switch m.Role {
			case "system":
				if sys {
					c.lit("<<SYS>>\n")
					c.msg(content)
					c.lit("\n<</SYS>>\n\n")
				} else {
					// llama.cpp keeps a system message for a template
					// without one, at the start of the turn, on its own line.
					c.msg(content)
					c.lit("\n")
				}
			case "user":
				c.msg(content)
				c.lit(" [/INST]")
			default:
				c.msg(content)
				c.lit("</s>")
				inTurn = false
			}
		}
	case ChatTemplateLlama3:
		for _, m := range msgs {
			c.lit("<|start_header_id|>")
			c.msg(m.Role)
			c.lit("<|end_header_id|>\n\n")
			c.msg(cTrim(m.Content))
			c.lit("<|eot_id|>")
		}
		if addAssistant {
			c.lit("<|start_header_id|>assistant<|end_header_id|>\n\n")
		}
	}
	return c, nil
}

// ChatTemplate is the model's chat template (GGUF tokenizer.chat_template),
// or "" when it has none (llama2.c checkpoints, tolstoy-1m, GGUF files
// without one).
func (m *Model) ChatTemplate() string { return m.chatTemplate }

// EncodeChat renders msgs with the model's chat template, followed by the
// assistant's header, and tokenizes the result as llama.cpp does (BOS as
// the model says, the text of control tokens as those tokens), except that
// the text of a control token inside a message stays text: a user cannot
// end a turn or forge a header by typing "<|eot_id|>". It returns an error
// wrapping ErrNoChatTemplate for a model without a template and
// ErrChatTemplate for one the engine does not render.
func (m *Model) EncodeChat(msgs []ChatMessage) ([]int, error) {
	if m.chatTemplate == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoChatTemplate, m.name)
	}
	c, err := renderChat(m.chatTemplate, msgs, true)
	if err != nil {
		return nil, err
	}
	return m.tok.EncodeTemplate(c.b.String(), c.untrusted, m.addBOS), nil
}

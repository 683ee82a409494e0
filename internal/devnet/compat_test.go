package devnet_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/devnet"
)

func (e *env) post(path, key, body string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.d.CoordinatorURL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func TestOpenAICompatibleAPI(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1})
	key := e.d.APIKey

	resp, err := http.Get(e.d.CoordinatorURL() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var models struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	if models.Object != "list" || len(models.Data) != 1 || models.Data[0].ID != "tolstoy-1m" {
		t.Fatalf("models: %+v", models)
	}

	// Non-streaming chat completion.
	resp = e.post("/v1/chat/completions", key, `{"model":"tolstoy-1m","messages":[{"role":"user","content":"Natasha"}],"max_tokens":20,"temperature":0}`)
	var cc struct {
		ID, Object, Model string
		Choices           []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct{ PromptTokens, CompletionTokens, TotalTokens int } `json:"usage"`
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &cc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, body)
	}
	if cc.Object != "chat.completion" || !strings.HasPrefix(cc.ID, "chatcmpl-") || len(cc.Choices) != 1 || cc.Choices[0].Message.Role != "assistant" || cc.Choices[0].Message.Content == "" {
		t.Fatalf("chat completion %s", body)
	}
	var usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(body, &raw)
	json.Unmarshal(raw["usage"], &usage)
	if usage.CompletionTokens == 0 || usage.CompletionTokens > 20 || usage.TotalTokens != usage.PromptTokens+usage.CompletionTokens {
		t.Fatalf("usage %+v", usage)
	}

	// Streaming completion: SSE chunks whose texts concatenate to the
	// result, a usage chunk, then [DONE].
	resp = e.post("/v1/completions", key, `{"model":"tolstoy-1m","prompt":"It was","max_tokens":40,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var text strings.Builder
	var sawUsage, sawDone bool
	var finish string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "data: ") {
			t.Fatalf("not an SSE data line: %q", line)
		}
		data := strings.TrimPrefix(line, "data: ")
		if data == "[DONE]" {
			sawDone = true
			continue
		}
		var ch struct {
			Object  string
			Choices []struct {
				Text         string
				FinishReason *string `json:"finish_reason"`
			}
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			}
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		for _, c := range ch.Choices {
			text.WriteString(c.Text)
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
		if ch.Usage != nil {
			sawUsage = ch.Usage.CompletionTokens == 40
		}
	}
	resp.Body.Close()
	if !strings.HasPrefix(text.String(), " awkward of the French.") || finish != "length" || !sawUsage || !sawDone {
		t.Fatalf("stream: text %q finish %q usage %v done %v", text.String(), finish, sawUsage, sawDone)
	}

	// Errors: unknown model, no key.
	resp = e.post("/v1/chat/completions", key, `{"model":"gpt-4","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 404 {
		t.Fatalf("unknown model: %d", resp.StatusCode)
	}
	resp.Body.Close()
	resp = e.post("/v1/chat/completions", "nope", `{"model":"tolstoy-1m","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 401 {
		t.Fatalf("bad key: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestOllamaCompatibleAPI(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1})
	key := e.d.APIKey
	resp, _ := http.Get(e.d.CoordinatorURL() + "/api/tags")
	var tags struct{ Models []struct{ Name string } }
	json.NewDecoder(resp.Body).Decode(&tags)
	resp.Body.Close()
	if len(tags.Models) != 1 || tags.Models[0].Name != "tolstoy-1m" {
		t.Fatalf("tags %+v", tags)
	}

	// Streaming generate: NDJSON, the last line done with counts.
	resp = e.post("/api/generate", key, `{"model":"tolstoy-1m","prompt":"It was","options":{"num_predict":30,"temperature":0}}`)
	var text strings.Builder
	var last map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if r, ok := m["response"].(string); ok {
			text.WriteString(r)
		}
		last = m
	}
	resp.Body.Close()
	if !strings.HasPrefix(text.String(), " awkward of the French.") || last["done"] != true || last["eval_count"] != float64(30) || last["done_reason"] != "length" {
		t.Fatalf("generate: %q, last %v", text.String(), last)
	}

	// Non-streaming chat.
	resp = e.post("/api/chat", key, `{"model":"tolstoy-1m","stream":false,"messages":[{"role":"user","content":"Prince Andrew"}],"options":{"num_predict":10}}`)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var chat struct {
		Message struct{ Role, Content string }
		Done    bool
	}
	if json.Unmarshal(body, &chat); !chat.Done || chat.Message.Role != "assistant" || chat.Message.Content == "" {
		t.Fatalf("chat: %s", body)
	}
	// Ollama's error shape for an unknown model.
	resp = e.post("/api/generate", key, `{"model":"llama3.2:latest","prompt":"hi"}`)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !bytes.Contains(body, []byte(`"error"`)) {
		t.Fatalf("unknown model: %d %s", resp.StatusCode, body)
	}
}

// TestCoordinatorOpenAPIListsEveryRoute keeps docs/api/coordinator.openapi.yaml
// in step with the coordinator's routes.
func TestCoordinatorOpenAPIListsEveryRoute(t *testing.T) {
	spec, err := os.ReadFile("../../docs/api/coordinator.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, devnet.Config{Miners: -1})
	routes := e.d.Coordinator.Routes()
	if len(routes) < 15 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		i := strings.Index(string(spec), "\n  "+path+":\n")
		if i < 0 {
			t.Errorf("%s missing from the OpenAPI file", path)
			continue
		}
		block := string(spec[i+1:])
		if j := strings.Index(block[3:], "\n  /"); j >= 0 {
			block = block[:j+3]
		}
		if !strings.Contains(block, "\n    "+strings.ToLower(method)+":") {
			t.Errorf("%s %s: method missing from the OpenAPI file", method, path)
		}
	}
}

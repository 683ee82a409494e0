package backend_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fakes below stand in for the real servers in unit tests. They follow
// the documented wire formats:
//
//   - Ollama: docs/api.md in github.com/ollama/ollama (NDJSON streams of
//     {"model","created_at","response"|"message","done":false}, a final
//     {"done":true,"done_reason",...,"prompt_eval_count","eval_count"}
//     object; errors as {"error":"..."}, `model "x" not found, try pulling
//     it first` with 404; an {"error":...} line ends a failing stream), and
//     server/routes.go for the error paths.
//   - OpenAI: the chat completions and completions streaming reference
//     (data: {chunk} events, one "usage" chunk with empty choices before
//     "data: [DONE]" when stream_options.include_usage is set, usage null
//     in the others; errors {"error":{"message","type","param","code"}}),
//     with the variants of llama.cpp's server (error: {...} lines from some
//     builds, data: {"error":{...}} from newer ones, meta in /v1/models).

// fakeModel is what a fake server generates for one model.
type fakeModel struct {
	tokens []string
	// promptTokens is what the server reports for the prompt: a fixed
	// number unrelated to the chunk count, so tests see the server's count
	// is the one used.
	promptTokens int
}

// fault is a way for a fake stream to go wrong after some tokens.
type fault string

const (
	faultNone      fault = ""
	faultMalformed fault = "malformed" // a line that is not JSON
	faultError     fault = "error"     // an error object in the stream
	faultErrorLine fault = "errorline" // llama.cpp's "error: {...}" SSE line
	faultCut       fault = "cut"       // the stream ends without its final message
)

type fakeConfig struct {
	models    map[string]fakeModel
	delay     time.Duration // between tokens
	faultAt   int           // token index at which fault happens
	fault     fault
	status    int    // answer every generation with this error status
	noUsage   bool   // OpenAI: ignore include_usage, send no usage at all
	noDone    bool   // OpenAI: end after the finish_reason chunk, without [DONE]
	apiKey    string // OpenAI: required bearer token
	keepAlive bool   // OpenAI: send ": ping" comments between events
}

// recorded is one request a fake received.
type recorded struct {
	Path string
	Body map[string]any
	Auth string
}

type fake struct {
	cfg  fakeConfig
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []recorded
	gone chan struct{} // receives when a handler sees its client go away
}

func (f *fake) URL() string { return f.srv.URL }

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fake) record(r *http.Request) (map[string]any, error) {
	var body map[string]any
	if r.Method == http.MethodPost {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{Path: r.URL.Path, Body: body, Auth: r.Header.Get("Authorization")})
	f.mu.Unlock()
	return body, nil
}

// wait sleeps between tokens; it reports false when the client went away.
func (f *fake) wait(r *http.Request) bool {
	if f.cfg.delay == 0 {
		return r.Context().Err() == nil
	}
	select {
	case <-r.Context().Done():
		select {
		case f.gone <- struct{}{}:
		default:
		}
		return false
	case <-time.After(f.cfg.delay):
		return true
	}
}

func newFake(t *testing.T, cfg fakeConfig, h func(f *fake) http.Handler) *fake {
	t.Helper()
	f := &fake{cfg: cfg, gone: make(chan struct{}, 1)}
	f.srv = httptest.NewServer(h(f))
	t.Cleanup(f.srv.Close)
	return f
}

// promptText is the text a request's prompt or messages carry.
func promptText(body map[string]any) string {
	if p, ok := body["prompt"].(string); ok {
		return p
	}
	var parts []string
	msgs, _ := body["messages"].([]any)
	for _, m := range msgs {
		if mm, ok := m.(map[string]any); ok {
			c, _ := mm["content"].(string)
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "\n")
}

func number(v any, def int) int {
	if f, ok := v.(float64); ok {
		return int(f)
	}
	return def
}

// ---- Ollama ----

func newFakeOllama(t *testing.T, cfg fakeConfig) *fake {
	return newFake(t, cfg, func(f *fake) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /api/tags", f.ollamaTags)
		mux.HandleFunc("POST /api/generate", f.ollamaGenerate)
		mux.HandleFunc("POST /api/chat", f.ollamaGenerate)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			// gin's default 404, as Ollama answers an unknown path
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "404 page not found")
		})
		return mux
	})
}

func ollamaJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fake) ollamaTags(w http.ResponseWriter, r *http.Request) {
	f.record(r)
	type details struct {
		ParentModel       string   `json:"parent_model"`
		Format            string   `json:"format"`
		Family            string   `json:"family"`
		Families          []string `json:"families"`
		ParameterSize     string   `json:"parameter_size"`
		QuantizationLevel string   `json:"quantization_level"`
	}
	type model struct {
		Name       string  `json:"name"`
		Model      string  `json:"model"`
		ModifiedAt string  `json:"modified_at"`
		Size       int64   `json:"size"`
		Digest     string  `json:"digest"`
		Details    details `json:"details"`
	}
	var out struct {
		Models []model `json:"models"`
	}
	for name := range f.cfg.models {
		out.Models = append(out.Models, model{
			Name: name, Model: name, ModifiedAt: "2024-12-07T09:32:18.757212583-08:00", Size: 3825819519,
			Digest:  "fe938a131f40e6f6d40083c9f0f430a515233eb2edaa6d72eb85c50d64f2300e",
			Details: details{Format: "gguf", Family: "llama", Families: []string{"llama"}, ParameterSize: "8.0B", QuantizationLevel: "Q4_0"},
		})
	}
	ollamaJSON(w, http.StatusOK, out)
}

func (f *fake) ollamaGenerate(w http.ResponseWriter, r *http.Request) {
	body, err := f.record(r)
	if err != nil {
		ollamaJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	chat := r.URL.Path == "/api/chat"
	name, _ := body["model"].(string)
	if name == "" {
		ollamaJSON(w, http.StatusBadRequest, map[string]string{"error": "model is required"})
		return
	}
	m, ok := f.cfg.models[name]
	if !ok {
		ollamaJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("model %q not found, try pulling it first", name)})
		return
	}
	if f.cfg.status != 0 {
		ollamaJSON(w, f.cfg.status, map[string]string{"error": "model requires more system memory (9.1 GiB) than is available (2.0 GiB)"})
		return
	}
	opts, _ := body["options"].(map[string]any)
	numPredict := number(opts["num_predict"], -1)
	created := func() string { return time.Now().UTC().Format(time.RFC3339Nano) }
	line := func(v map[string]any) {
		b, _ := json.Marshal(v)
		w.Write(append(b, '\n'))
		w.(http.Flusher).Flush()
	}
	chunk := func(text string, done bool) map[string]any {
		v := map[string]any{"model": name, "created_at": created(), "done": done}
		if chat {
			v["message"] = map[string]any{"role": "assistant", "content": text}
		} else {
			v["response"] = text
		}
		return v
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	n := 0
	for i, tok := range m.tokens {
		if numPredict >= 0 && i >= numPredict {
			break
		}
		if f.cfg.fault != faultNone && i == f.cfg.faultAt {
			switch f.cfg.fault {
			case faultMalformed:
				w.Write([]byte(`{"model":"` + name + `","response":"x","done":fal` + "\n"))
			case faultError, faultErrorLine:
				line(map[string]any{"error": "an error was encountered while running the model: unexpected EOF"})
			}
			return // faultCut, and the others end the stream here
		}
		if !f.wait(r) {
			return
		}
		line(chunk(tok, false))
		n++
	}
	final := chunk("", true)
	reason := "stop"
	if n < len(m.tokens) {
		reason = "length"
	}
	final["done_reason"] = reason
	final["total_duration"] = 4883583458
	final["load_duration"] = 1334875
	final["prompt_eval_count"] = m.promptTokens
	final["prompt_eval_duration"] = 342546000
	final["eval_count"] = n
	final["eval_duration"] = 4535599000
	if !chat {
		final["context"] = []int{1, 2, 3}
	}
	line(final)
}

// ---- OpenAI-compatible ----

func newFakeOpenAI(t *testing.T, cfg fakeConfig) *fake {
	return newFake(t, cfg, func(f *fake) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /v1/models", f.openAIModels)
		mux.HandleFunc("POST /v1/chat/completions", f.openAIGenerate)
		mux.HandleFunc("POST /v1/completions", f.openAIGenerate)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			openAIError(w, http.StatusNotFound, "File Not Found", "not_found_error", 404)
		})
		return mux
	})
}

func openAIError(w http.ResponseWriter, status int, msg, typ string, code any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}})
}

func (f *fake) authorized(w http.ResponseWriter, r *http.Request) bool {
	if f.cfg.apiKey == "" || r.Header.Get("Authorization") == "Bearer "+f.cfg.apiKey {
		return true
	}
	openAIError(w, http.StatusUnauthorized, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
	return false
}

func (f *fake) openAIModels(w http.ResponseWriter, r *http.Request) {
	f.record(r)
	if !f.authorized(w, r) {
		return
	}
	var data []map[string]any
	for name := range f.cfg.models {
		data = append(data, map[string]any{
			"id": name, "object": "model", "created": 1735689600, "owned_by": "llamacpp",
			"meta": map[string]any{"vocab_type": 1, "n_vocab": 1024, "n_ctx_train": 256, "n_embd": 128, "n_params": 984192, "size": 3937024},
		})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
}

func (f *fake) openAIGenerate(w http.ResponseWriter, r *http.Request) {
	body, err := f.record(r)
	if err != nil {
		openAIError(w, http.StatusBadRequest, err.Error(), "invalid_request_error", nil)
		return
	}
	if !f.authorized(w, r) {
		return
	}
	chat := r.URL.Path == "/v1/chat/completions"
	name, _ := body["model"].(string)
	m, ok := f.cfg.models[name]
	if !ok {
		openAIError(w, http.StatusNotFound, fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", name), "invalid_request_error", "model_not_found")
		return
	}
	if f.cfg.status != 0 {
		openAIError(w, f.cfg.status, "the server is overloaded", "server_error", f.cfg.status)
		return
	}
	if stream, _ := body["stream"].(bool); !stream {
		openAIError(w, http.StatusBadRequest, "this fake only streams", "invalid_request_error", nil)
		return
	}
	so, _ := body["stream_options"].(map[string]any)
	includeUsage, _ := so["include_usage"].(bool)
	includeUsage = includeUsage && !f.cfg.noUsage
	maxTokens := number(body["max_tokens"], 16)

	id, object := "cmpl-fake", "text_completion"
	if chat {
		id, object = "chatcmpl-fake", "chat.completion.chunk"
	}
	event := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if f.cfg.keepAlive {
			io.WriteString(w, ": ping\n\n")
		}
		w.(http.Flusher).Flush()
	}
	chunk := func(text string, finish any, first bool) map[string]any {
		choice := map[string]any{"index": 0, "logprobs": nil, "finish_reason": finish}
		if chat {
			delta := map[string]any{}
			if first {
				delta["role"] = "assistant"
			}
			if text != "" || first {
				delta["content"] = text
			}
			choice["delta"] = delta
		} else {
			choice["text"] = text
		}
		v := map[string]any{"id": id, "object": object, "created": time.Now().Unix(), "model": name, "system_fingerprint": "fp_fake", "choices": []any{choice}}
		if includeUsage {
			v["usage"] = nil
		}
		return v
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if chat {
		event(chunk("", nil, true)) // OpenAI opens a chat stream with the role
	}
	n := 0
	for i, tok := range m.tokens {
		if i >= maxTokens {
			break
		}
		if f.cfg.fault != faultNone && i == f.cfg.faultAt {
			switch f.cfg.fault {
			case faultMalformed:
				io.WriteString(w, "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"x\"}\n\n")
			case faultError:
				event(map[string]any{"error": map[string]any{"code": 500, "message": "CUDA error: out of memory", "type": "server_error"}})
			case faultErrorLine:
				io.WriteString(w, `error: {"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}`+"\n\n")
			}
			w.(http.Flusher).Flush()
			return
		}
		if !f.wait(r) {
			return
		}
		event(chunk(tok, nil, false))
		n++
	}
	reason := "stop"
	if n < len(m.tokens) {
		reason = "length"
	}
	event(chunk("", reason, false))
	if includeUsage {
		event(map[string]any{"id": id, "object": object, "created": time.Now().Unix(), "model": name, "choices": []any{},
			"usage": map[string]any{"prompt_tokens": m.promptTokens, "completion_tokens": n, "total_tokens": m.promptTokens + n}})
	}
	if !f.cfg.noDone {
		io.WriteString(w, "data: [DONE]\n\n")
	}
}

// refusedURL is an http URL where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

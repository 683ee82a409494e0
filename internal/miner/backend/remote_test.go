package backend_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/miner/backend"
)

// remote is one HTTP backend with its fake server; the scenario tests run
// against each.
type remote struct {
	name       string
	newFake    func(*testing.T, fakeConfig) *fake
	newBackend func(url string) backend.Backend
}

var remotes = []remote{
	{"ollama", newFakeOllama, func(u string) backend.Backend { return backend.NewOllama(u, nil) }},
	{"openai", newFakeOpenAI, func(u string) backend.Backend { return backend.NewOpenAI(u, "", nil) }},
}

func forEachRemote(t *testing.T, fn func(t *testing.T, r remote)) {
	for _, r := range remotes {
		t.Run(r.name, func(t *testing.T) { fn(t, r) })
	}
}

var story = fakeModel{tokens: []string{"Once", " upon", " a", " time", ",", " a", " miner", " ran", " a", " job", "."}, promptTokens: 26}

func storyConfig() fakeConfig {
	return fakeConfig{models: map[string]fakeModel{"llama3.2:1b": story}}
}

func promptReq(max int) backend.Request {
	return backend.Request{Model: "llama3.2:1b", Prompt: "Tell me a story", MaxTokens: max}
}

func chatReq(max int) backend.Request {
	return backend.Request{Model: "llama3.2:1b", MaxTokens: max, Messages: []backend.ChatMessage{
		{Role: "system", Content: "You are brief."}, {Role: "user", Content: "Tell me a story"}}}
}

// collect runs a generation and returns the streamed pieces.
func collect(t *testing.T, b backend.Backend, req backend.Request) ([]string, backend.Result, error) {
	t.Helper()
	var got []string
	res, err := b.Generate(context.Background(), req, func(s string) error {
		got = append(got, s)
		return nil
	})
	return got, res, err
}

func TestRemoteStreamsTokensInOrderWithServerCounts(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		f := r.newFake(t, storyConfig())
		b := r.newBackend(f.URL())
		for _, req := range []backend.Request{promptReq(100), chatReq(100)} {
			got, res, err := collect(t, b, req)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(story.tokens, "|") {
				t.Fatalf("streamed %q, want %q", got, story.tokens)
			}
			want := backend.Result{Text: strings.Join(story.tokens, ""), TokensIn: 26, TokensOut: len(story.tokens), FinishReason: "stop", Backend: r.name}
			if res != want {
				t.Fatalf("result %+v, want %+v", res, want)
			}
		}
		reqs := f.requests()
		wantPaths := map[string][2]string{"ollama": {"/api/generate", "/api/chat"}, "openai": {"/v1/completions", "/v1/chat/completions"}}[r.name]
		if len(reqs) != 2 || reqs[0].Path != wantPaths[0] || reqs[1].Path != wantPaths[1] {
			t.Fatalf("requests %+v, want paths %v", reqs, wantPaths)
		}
		if reqs[0].Body["stream"] != true || promptText(reqs[0].Body) != "Tell me a story" {
			t.Fatalf("prompt request body %v", reqs[0].Body)
		}
		if msgs, _ := reqs[1].Body["messages"].([]any); len(msgs) != 2 {
			t.Fatalf("chat request body %v", reqs[1].Body)
		}
	})
}

func TestRemoteStopsAtMaxTokensWithLength(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		f := r.newFake(t, storyConfig())
		got, res, err := collect(t, r.newBackend(f.URL()), promptReq(4))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || res.TokensOut != 4 || res.FinishReason != "length" || res.Text != "Once upon a time" {
			t.Fatalf("got %q, %+v", got, res)
		}
	})
}

func TestRemoteUnknownModel(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		f := r.newFake(t, storyConfig())
		req := promptReq(5)
		req.Model = "mistral:7b"
		_, res, err := collect(t, r.newBackend(f.URL()), req)
		if !errors.Is(err, backend.ErrUnknownModel) || errors.Is(err, backend.ErrBackendUnavailable) {
			t.Fatalf("err %v, want ErrUnknownModel", err)
		}
		if !strings.Contains(err.Error(), "mistral:7b") || res.Text != "" {
			t.Fatalf("err %q should name the model; result %+v", err, res)
		}
	})
}

func TestRemoteServerDownIsUnavailable(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		b := r.newBackend(refusedURL(t))
		if _, _, err := collect(t, b, promptReq(5)); !errors.Is(err, backend.ErrBackendUnavailable) {
			t.Fatalf("Generate: %v, want ErrBackendUnavailable", err)
		}
		if _, err := b.Models(context.Background()); !errors.Is(err, backend.ErrBackendUnavailable) {
			t.Fatalf("Models: %v, want ErrBackendUnavailable", err)
		}
	})
}

func TestRemoteServerErrorStatusIsUnavailable(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
			cfg := storyConfig()
			cfg.status = status
			f := r.newFake(t, cfg)
			_, _, err := collect(t, r.newBackend(f.URL()), promptReq(5))
			if !errors.Is(err, backend.ErrBackendUnavailable) || !strings.Contains(err.Error(), fmt.Sprint(status)) {
				t.Fatalf("status %d: %v", status, err)
			}
		}
	})
}

func TestRemoteWrongURLIsUnavailable(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		f := r.newFake(t, storyConfig())
		b := r.newBackend(f.URL() + "/not/the/api")
		_, _, err := collect(t, b, promptReq(5))
		if !errors.Is(err, backend.ErrBackendUnavailable) || errors.Is(err, backend.ErrUnknownModel) {
			t.Fatalf("err %v, want ErrBackendUnavailable (a 404 that names no model)", err)
		}
	})
}

func TestRemoteStreamFaults(t *testing.T) {
	for _, tc := range []struct {
		fault  fault
		remote string // "" for both
		words  string // in the error
	}{
		{faultMalformed, "", "malformed"},
		{faultError, "ollama", "unexpected EOF"},
		{faultError, "openai", "CUDA error: out of memory"},
		{faultErrorLine, "openai", "exceeds the available context size"},
		{faultCut, "", "ended before"},
	} {
		forEachRemote(t, func(t *testing.T, r remote) {
			if tc.remote != "" && tc.remote != r.name {
				return
			}
			cfg := storyConfig()
			cfg.fault, cfg.faultAt = tc.fault, 3
			f := r.newFake(t, cfg)
			got, res, err := collect(t, r.newBackend(f.URL()), promptReq(100))
			if !errors.Is(err, backend.ErrBackendFailed) || !strings.Contains(err.Error(), tc.words) {
				t.Fatalf("%s: err %v, want ErrBackendFailed mentioning %q", tc.fault, err, tc.words)
			}
			if len(got) != 3 || res.Text != "Once upon a" {
				t.Fatalf("%s: streamed %q, result %+v: want the 3 tokens before the fault", tc.fault, got, res)
			}
		})
	}
}

func TestRemoteCancelMidStreamReturnsPromptly(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		cfg := storyConfig()
		cfg.delay = 200 * time.Millisecond // the whole story would take over 2 s
		f := r.newFake(t, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var got []string
		var canceledAt time.Time
		res, err := r.newBackend(f.URL()).Generate(ctx, promptReq(100), func(s string) error {
			got = append(got, s)
			if len(got) == 2 {
				canceledAt = time.Now()
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || res.FinishReason != "canceled" {
			t.Fatalf("err %v, result %+v: want context.Canceled and finish canceled", err, res)
		}
		// The rest of the story would take 1.8 s more.
		if d := time.Since(canceledAt); d > time.Second {
			t.Fatalf("returned %v after the cancel: it did not stop the read", d)
		}
		if len(got) != 2 || res.Text != "Once upon" {
			t.Fatalf("streamed %q, result text %q", got, res.Text)
		}
		select {
		case <-f.gone: // the server saw the client go away
		case <-time.After(2 * time.Second):
			t.Fatal("the server never saw the request cancelled")
		}
	})
}

func TestRemoteCallbackErrorStopsGeneration(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		f := r.newFake(t, storyConfig())
		stop := errors.New("coordinator went away")
		n := 0
		res, err := r.newBackend(f.URL()).Generate(context.Background(), promptReq(100), func(string) error {
			n++
			if n == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || res.FinishReason != "canceled" || res.Text != "Once upon a" {
			t.Fatalf("err %v, result %+v", err, res)
		}
	})
}

func TestRemoteInvalidRequestIsNotSent(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		f := r.newFake(t, storyConfig())
		req := promptReq(0)
		_, _, err := collect(t, r.newBackend(f.URL()), req)
		if !errors.Is(err, backend.ErrInvalidRequest) || !errors.Is(err, backend.ErrMaxTokens) {
			t.Fatalf("err %v", err)
		}
		if n := len(f.requests()); n != 0 {
			t.Fatalf("%d requests reached the server", n)
		}
	})
}

func TestRemoteModels(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		f := r.newFake(t, storyConfig())
		ms, err := r.newBackend(f.URL()).Models(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].Name != "llama3.2:1b" {
			t.Fatalf("models %+v", ms)
		}
		want := map[string]backend.ModelInfo{
			"ollama": {Name: "llama3.2:1b", SizeBytes: 3825819519, Family: "llama", Format: "gguf", ParameterSize: "8.0B", Quantization: "Q4_0"},
			"openai": {Name: "llama3.2:1b", SizeBytes: 3937024, Format: "gguf", ContextLength: 256},
		}[r.name]
		if ms[0] != want {
			t.Fatalf("model %+v, want %+v", ms[0], want)
		}
	})
}

func TestRemoteNilCallback(t *testing.T) {
	forEachRemote(t, func(t *testing.T, r remote) {
		f := r.newFake(t, storyConfig())
		res, err := r.newBackend(f.URL()).Generate(context.Background(), chatReq(100), nil)
		if err != nil || res.Text != "Once upon a time, a miner ran a job." {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

// ---- Ollama specifics ----

func TestOllamaSendsSamplingOptions(t *testing.T) {
	f := newFakeOllama(t, storyConfig())
	b := backend.NewOllama(f.URL()+"/", nil)
	req := promptReq(7)
	req.Stop = []string{"\n\n"}
	if _, _, err := collect(t, b, req); err != nil {
		t.Fatal(err)
	}
	req.Temperature, req.TopP, req.Seed, req.Stop = 0.7, 0.9, 1<<63|42, nil
	if _, _, err := collect(t, b, req); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	greedy, _ := reqs[0].Body["options"].(map[string]any)
	// Temperature 0 must be sent: Ollama's default is 0.8.
	if v, ok := greedy["temperature"]; !ok || v != 0.0 {
		t.Fatalf("greedy options %v: temperature 0 must be explicit", greedy)
	}
	if greedy["num_predict"] != 7.0 || fmt.Sprint(greedy["stop"]) != "[\n\n]" {
		t.Fatalf("greedy options %v", greedy)
	}
	if _, ok := greedy["top_p"]; ok {
		t.Fatalf("top_p 0 (backend default) was sent: %v", greedy)
	}
	if _, ok := greedy["seed"]; ok {
		t.Fatalf("seed 0 (backend default) was sent: %v", greedy)
	}
	sampled, _ := reqs[1].Body["options"].(map[string]any)
	if fmt.Sprint(sampled["temperature"]) != "0.7" || fmt.Sprint(sampled["top_p"]) != "0.9" || sampled["seed"] != 42.0 {
		t.Fatalf("sampled options %v (seed reduced to 63 bits)", sampled)
	}
}

func TestOllamaDefaultURL(t *testing.T) {
	if got := backend.NewOllama("", nil).BaseURL(); got != "http://127.0.0.1:11434" {
		t.Fatal(got)
	}
}

// A server from before done_reason existed: a length stop is told from the
// count.
func TestOllamaWithoutDoneReason(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"model":"m","created_at":"2023-08-04T08:52:19.385406455-07:00","response":"The","done":false}
{"model":"m","created_at":"2023-08-04T08:52:19.385406455-07:00","response":" sky","done":false}

{"model":"m","created_at":"2023-08-04T19:22:45.499127Z","response":"","done":true,"context":[1,2,3],"total_duration":10706818083,"prompt_eval_count":26,"eval_count":2,"eval_duration":4232710000}
`)
	}))
	defer srv.Close()
	res, err := backend.NewOllama(srv.URL, nil).Generate(context.Background(), backend.Request{Model: "m", Prompt: "Why?", MaxTokens: 2}, nil)
	if err != nil || res.FinishReason != "length" || res.Text != "The sky" || res.TokensIn != 26 || res.TokensOut != 2 || res.UsageEstimated {
		t.Fatalf("%+v, %v", res, err)
	}
}

// Ollama omits zero metrics (omitempty): a fully cached prompt has no
// prompt_eval_count, an empty answer no eval_count.
func TestOllamaMissingCountsAreEstimated(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"model":"m","created_at":"x","response":"Hi","done":false}
{"model":"m","created_at":"x","response":"!","done":true,"done_reason":"stop"}
`)
	}))
	defer srv.Close()
	res, err := backend.NewOllama(srv.URL, nil).Generate(context.Background(), backend.Request{Model: "m", Prompt: "Hello", MaxTokens: 9}, nil)
	if err != nil || res.Text != "Hi!" || res.TokensOut != 2 || res.TokensIn != 0 || !res.UsageEstimated || res.FinishReason != "stop" {
		t.Fatalf("%+v, %v", res, err)
	}
}

// ---- OpenAI specifics ----

func TestOpenAIRequestBody(t *testing.T) {
	f := newFakeOpenAI(t, storyConfig())
	b := backend.NewOpenAI(f.URL()+"/v1/", "", nil)
	req := chatReq(5)
	req.Temperature, req.TopP, req.Seed, req.Stop = 1.5, 0.5, 7, []string{"END"}
	if _, _, err := collect(t, b, req); err != nil {
		t.Fatal(err)
	}
	body := f.requests()[0].Body
	so, _ := body["stream_options"].(map[string]any)
	if body["stream"] != true || so["include_usage"] != true || body["max_tokens"] != 5.0 || body["temperature"] != 1.5 ||
		body["top_p"] != 0.5 || body["seed"] != 7.0 || fmt.Sprint(body["stop"]) != "[END]" || body["model"] != "llama3.2:1b" {
		t.Fatalf("body %v", body)
	}
	if _, _, err := collect(t, b, promptReq(5)); err != nil {
		t.Fatal(err)
	}
	body = f.requests()[1].Body
	if v, ok := body["temperature"]; !ok || v != 0.0 {
		t.Fatalf("temperature 0 must be explicit: %v", body)
	}
	for _, k := range []string{"top_p", "seed", "stop", "messages"} {
		if _, ok := body[k]; ok {
			t.Fatalf("%s sent when unset: %v", k, body)
		}
	}
}

func TestOpenAIWithoutUsageCountsChunks(t *testing.T) {
	cfg := storyConfig()
	cfg.noUsage = true
	f := newFakeOpenAI(t, cfg)
	got, res, err := collect(t, backend.NewOpenAI(f.URL(), "", nil), chatReq(6))
	if err != nil {
		t.Fatal(err)
	}
	if !res.UsageEstimated || res.TokensOut != len(got) || res.TokensOut != 6 || res.TokensIn != 0 || res.FinishReason != "length" {
		t.Fatalf("streamed %d, result %+v", len(got), res)
	}
}

func TestOpenAIToleratesKeepAlivesAndMissingDone(t *testing.T) {
	cfg := storyConfig()
	cfg.keepAlive, cfg.noDone = true, true
	f := newFakeOpenAI(t, cfg)
	_, res, err := collect(t, backend.NewOpenAI(f.URL(), "", nil), promptReq(100))
	if err != nil || res.Text != "Once upon a time, a miner ran a job." || res.TokensOut != 11 || res.FinishReason != "stop" {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestOpenAIAPIKey(t *testing.T) {
	cfg := storyConfig()
	cfg.apiKey = "sk-test"
	f := newFakeOpenAI(t, cfg)
	_, _, err := collect(t, backend.NewOpenAI(f.URL(), "wrong", nil), promptReq(3))
	if !errors.Is(err, backend.ErrBackendUnavailable) || !strings.Contains(err.Error(), "Incorrect API key") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, _, err := collect(t, backend.NewOpenAI(f.URL(), "sk-test", nil), promptReq(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := backend.NewOpenAI(f.URL(), "sk-test", nil).Models(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := f.requests()[1].Auth; a != "Bearer sk-test" {
		t.Fatalf("Authorization %q", a)
	}
}

// Error bodies as OpenAI, vLLM (both generations) and llama.cpp write them.
func TestOpenAIErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   error
	}{
		{404, `{"error":{"message":"The model ` + "`gpt-5`" + ` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`, backend.ErrUnknownModel},
		{404, `{"object":"error","message":"The model ` + "`x`" + ` does not exist.","type":"NotFoundError","param":null,"code":404}`, backend.ErrUnknownModel},
		{404, `{"error":{"message":"The model ` + "`x`" + ` does not exist.","type":"NotFoundError","param":null,"code":404}}`, backend.ErrUnknownModel},
		{400, `{"error":{"message":"model x not found","type":"invalid_request_error","code":"model_not_found"}}`, backend.ErrUnknownModel},
		{404, `{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}`, backend.ErrBackendUnavailable},
		{404, `404 page not found`, backend.ErrBackendUnavailable},
		{400, `{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}`, backend.ErrInvalidRequest},
		{400, `{"object":"error","message":"This model's maximum context length is 2048 tokens.","type":"BadRequestError","param":null,"code":400}`, backend.ErrInvalidRequest},
		{401, `{"error":{"message":"Invalid API Key","type":"invalid_request_error","code":"invalid_api_key"}}`, backend.ErrBackendUnavailable},
		{503, `{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`, backend.ErrBackendUnavailable},
		{502, `<html>Bad Gateway</html>`, backend.ErrBackendUnavailable},
		{409, `{"error":"conflict"}`, backend.ErrBackendFailed},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		}))
		_, _, err := collect(t, backend.NewOpenAI(srv.URL, "", nil), promptReq(3))
		srv.Close()
		if !errors.Is(err, tc.want) {
			t.Errorf("%d %s: err %v, want %v", tc.status, tc.body, err, tc.want)
		}
		for _, other := range []error{backend.ErrUnknownModel, backend.ErrBackendUnavailable, backend.ErrInvalidRequest, backend.ErrBackendFailed} {
			if other != tc.want && errors.Is(err, other) {
				t.Errorf("%d %s: err %v is also %v", tc.status, tc.body, err, other)
			}
		}
	}
}

func TestOpenAINonStreamingAnswer(t *testing.T) {
	for body, words := range map[string]string{
		`{"id":"cmpl-1","object":"text_completion","choices":[{"text":"Hi","index":0,"finish_reason":"stop"}]}`: "not a stream",
		`{"error":{"message":"busy","type":"server_error","code":500}}`:                                         "busy",
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
		}))
		_, _, err := collect(t, backend.NewOpenAI(srv.URL, "", nil), promptReq(3))
		srv.Close()
		if !errors.Is(err, backend.ErrBackendFailed) || !strings.Contains(err.Error(), words) {
			t.Fatalf("%s: %v", body, err)
		}
	}
}

// A stream as llama-server (llama.cpp b1-de3ff81, from node-llama-cpp
// 3.22.1) really sent it for tolstoy-1m: usage rides on the finish chunk,
// with llama.cpp's timings, instead of a chunk of its own.
const llamaServerStream = `data: {"choices":[{"text":" a","index":0,"logprobs":null,"finish_reason":null}],"created":1795313293,"model":"tolstoy-1m","system_fingerprint":"b1-de3ff81","object":"text_completion","id":"chatcmpl-9il8TKjLydcI0nlZGgk3hFKuXJ0cvdYQ"}

data: {"choices":[{"text":"w","index":0,"logprobs":null,"finish_reason":null}],"created":1795313293,"model":"tolstoy-1m","system_fingerprint":"b1-de3ff81","object":"text_completion","id":"chatcmpl-9il8TKjLydcI0nlZGgk3hFKuXJ0cvdYQ"}

data: {"choices":[{"text":"k","index":0,"logprobs":null,"finish_reason":null}],"created":1795313293,"model":"tolstoy-1m","system_fingerprint":"b1-de3ff81","object":"text_completion","id":"chatcmpl-9il8TKjLydcI0nlZGgk3hFKuXJ0cvdYQ"}

data: {"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"created":1795313293,"model":"tolstoy-1m","system_fingerprint":"b1-de3ff81","object":"text_completion","usage":{"completion_tokens":3,"prompt_tokens":3,"total_tokens":6,"prompt_tokens_details":{"cached_tokens":2}},"id":"chatcmpl-9il8TKjLydcI0nlZGgk3hFKuXJ0cvdYQ","timings":{"cache_n":2,"prompt_n":1,"prompt_ms":206.506,"prompt_per_token_ms":206.506,"prompt_per_second":4.842474310673782,"predicted_n":3,"predicted_ms":20.089,"predicted_per_token_ms":10.0445,"predicted_per_second":99.55697147692769}}

data: [DONE]

`

func TestOpenAIRecordedLlamaServer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, llamaServerStream)
	})
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"models":[{"name":"tolstoy-1m","model":"tolstoy-1m","modified_at":"","size":"","digest":"","type":"model","description":"","tags":[""],"capabilities":["completion"],"parameters":"","details":{"parent_model":"","format":"gguf","family":"","families":[""],"parameter_size":"","quantization_level":""}}],"object":"list","data":[{"id":"tolstoy-1m","aliases":["tolstoy-1m"],"tags":[],"object":"model","created":1795313284,"owned_by":"llamacpp","meta":{"vocab_type":1,"n_vocab":1024,"n_ctx":256,"n_ctx_train":256,"n_embd":128,"n_params":984192,"size":3936768,"ftype":"all F32"}}]}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"message":"File Not Found","type":"not_found_error","code":404}}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	b := backend.NewOpenAI(srv.URL, "", nil)
	got, res, err := collect(t, b, backend.Request{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 3})
	want := backend.Result{Text: " awk", TokensIn: 3, TokensOut: 3, FinishReason: "length", Backend: "openai"}
	if err != nil || res != want || len(got) != 3 {
		t.Fatalf("streamed %q, %+v, %v", got, res, err)
	}
	ms, err := b.Models(context.Background())
	if err != nil || len(ms) != 1 || ms[0] != (backend.ModelInfo{Name: "tolstoy-1m", SizeBytes: 3936768, Format: "gguf", ContextLength: 256}) {
		t.Fatalf("%+v, %v", ms, err)
	}
	_, _, err = collect(t, b, backend.Request{Model: "tolstoy-1m", Messages: []backend.ChatMessage{{Role: "user", Content: "x"}}, MaxTokens: 3})
	if !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("a 404 naming no model: %v", err)
	}
}

// Streams as a real Ollama (v0.17.4 built from its Go module, serving the
// engine's GGUF export of tolstoy-1m) sent them.
const (
	ollamaGenerateStream = `{"model":"tolstoy-1m","created_at":"2026-11-22T02:17:41.540512154Z","response":" a","done":false}
{"model":"tolstoy-1m","created_at":"2026-11-22T02:17:41.544831252Z","response":"w","done":false}
{"model":"tolstoy-1m","created_at":"2026-11-22T02:17:41.54723226Z","response":"k","done":false}
{"model":"tolstoy-1m","created_at":"2026-11-22T02:17:41.547248102Z","response":"","done":true,"done_reason":"length","context":[689,318,261,958,967],"total_duration":13980976,"load_duration":4054306,"prompt_eval_count":3,"prompt_eval_duration":1886728,"eval_count":3,"eval_duration":6654106}
`
	ollamaChatStream = `{"model":"tolstoy-1m","created_at":"2026-11-22T02:17:41.57111957Z","message":{"role":"assistant","content":"'"},"done":false}
{"model":"tolstoy-1m","created_at":"2026-11-22T02:17:41.576959683Z","message":{"role":"assistant","content":"s"},"done":false}
{"model":"tolstoy-1m","created_at":"2026-11-22T02:17:41.5769783Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"length","total_duration":12559478,"load_duration":2596264,"prompt_eval_count":2,"prompt_eval_duration":2727275,"eval_count":2,"eval_duration":5991251}
`
)

func TestOllamaRecordedStreams(t *testing.T) {
	mux := http.NewServeMux()
	handle := func(path, stream string) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(readAll(r), `"model":"nope"`) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"error":"model 'nope' not found"}`)
				return
			}
			w.Header().Set("Content-Type", "application/x-ndjson")
			io.WriteString(w, stream)
		})
	}
	handle("/api/generate", ollamaGenerateStream)
	handle("/api/chat", ollamaChatStream)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	b := backend.NewOllama(srv.URL, nil)

	got, res, err := collect(t, b, backend.Request{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 3})
	if want := (backend.Result{Text: " awk", TokensIn: 3, TokensOut: 3, FinishReason: "length", Backend: "ollama"}); err != nil || res != want || len(got) != 3 {
		t.Fatalf("generate: streamed %q, %+v, %v", got, res, err)
	}
	got, res, err = collect(t, b, backend.Request{Model: "tolstoy-1m", Messages: []backend.ChatMessage{{Role: "user", Content: "Natasha"}}, MaxTokens: 2})
	if want := (backend.Result{Text: "'s", TokensIn: 2, TokensOut: 2, FinishReason: "length", Backend: "ollama"}); err != nil || res != want || len(got) != 2 {
		t.Fatalf("chat: streamed %q, %+v, %v", got, res, err)
	}
	if _, _, err := collect(t, b, backend.Request{Model: "nope", Prompt: "x", MaxTokens: 2}); !errors.Is(err, backend.ErrUnknownModel) {
		t.Fatalf("unknown model: %v", err)
	}
}

func readAll(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

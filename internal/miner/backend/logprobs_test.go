package backend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/verify"
)

// Log-probability commitments from remote backends: the clients ask for
// log-probabilities, record what the server streams in its own protocol,
// and sign it as the result's attestation; a verifier with the built-in
// engine on the same model accepts an honest server and rejects one that
// served another model.

// lpEntry is one token's log-probabilities as Ollama and OpenAI's chat
// format send them.
type lpEntry struct {
	Token       string    `json:"token"`
	Logprob     float64   `json:"logprob"`
	Bytes       []int     `json:"bytes,omitempty"`
	TopLogprobs []lpEntry `json:"top_logprobs,omitempty"`
}

// engineStream generates from prompt on m and returns each generated
// token's text and log-probabilities computed token by token, as a server
// running that model reports them.
func engineStream(t *testing.T, m *engine.Model, prompt string, maxTokens int, seed uint64) (entries []lpEntry, stop string, promptLen int) {
	t.Helper()
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: prompt, MaxTokens: maxTokens, Temperature: 0.8, Seed: seed, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq := append(slices.Clone(res.PromptTokens), res.Tokens...)
	s, err := m.NewSession(engine.SessionOptions{Threads: 1, MaxPos: len(seq)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := m.Tokenizer()
	p := len(res.PromptTokens)
	for pos := range len(seq) - 1 {
		logits, err := s.Forward(seq[pos], pos)
		if err != nil {
			t.Fatal(err)
		}
		if pos < p-1 {
			continue
		}
		hi := float64(slices.Max(logits))
		var z float64
		for _, v := range logits {
			z += math.Exp(float64(v) - hi)
		}
		lp := func(id int) float64 { return float64(logits[id]) - hi - math.Log(z) }
		order := make([]int, len(logits))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return -cmpF(lp(a), lp(b)) })
		next := seq[pos+1]
		e := lpEntry{Token: tok.Piece(seq[pos], next), Logprob: lp(next)}
		for _, id := range order[:verify.TopLogprobs] {
			e.TopLogprobs = append(e.TopLogprobs, lpEntry{Token: tok.Piece(seq[pos], id), Logprob: lp(id)})
		}
		entries = append(entries, e)
	}
	stop = "stop"
	if res.Stop == engine.StopMaxTokens {
		stop = "length"
	}
	return entries, stop, p
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// engineOllama is an Ollama server (/api/generate, NDJSON, with
// logprobs/top_logprobs as Ollama streams them) that runs m. It records
// the request bodies.
func engineOllama(t *testing.T, m *engine.Model, bodies *[]map[string]any, mu *sync.Mutex) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.URL.Path != "/api/generate" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		*bodies = append(*bodies, body)
		mu.Unlock()
		opts, _ := body["options"].(map[string]any)
		n, _ := opts["num_predict"].(float64)
		seed, _ := opts["seed"].(float64)
		entries, stop, p := engineStream(t, m, body["prompt"].(string), int(n), uint64(seed))
		enc := json.NewEncoder(w)
		for _, e := range entries {
			line := map[string]any{"model": body["model"], "response": e.Token, "done": false}
			if body["logprobs"] == true {
				line["logprobs"] = []lpEntry{e}
			}
			_ = enc.Encode(line)
		}
		_ = enc.Encode(map[string]any{"model": body["model"], "response": "", "done": true, "done_reason": stop, "eval_count": len(entries), "prompt_eval_count": p})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestOllamaLogprobAttestationVerifies: the Ollama client asks for
// log-probabilities, signs what the server streamed, and a verifier with
// the built-in engine accepts a server that ran the model and rejects one
// that ran a coarser quantisation of it.
func TestOllamaLogprobAttestationVerifies(t *testing.T) {
	base, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	load := func(typ gguf.TensorType) *engine.Model {
		var b bytes.Buffer
		if err := base.WriteGGUF(&b, typ); err != nil {
			t.Fatal(err)
		}
		m, err := engine.LoadGGUF(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	verifier := load(gguf.F32)
	var mu sync.Mutex
	var bodies []map[string]any
	for _, c := range []struct {
		name   string
		served *engine.Model
		pass   bool
	}{
		{"the same model", verifier, true},
		{"a Q4_K quantisation of it", load(gguf.Q4_K), false},
	} {
		srv := engineOllama(t, c.served, &bodies, &mu)
		b := backend.NewOllama(srv.URL, nil)
		req := backend.Request{Model: "tolstoy", Prompt: "The old prince said", MaxTokens: 60, Temperature: 0.8, Seed: 9}
		res, err := b.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Attestation == "" {
			t.Fatalf("%s: no attestation", c.name)
		}
		a, err := verify.DecodeLogprobAttestation([]byte(res.Attestation))
		if err != nil {
			t.Fatal(err)
		}
		if a.Text() != res.Text || a.Backend != "ollama" || a.Model != "tolstoy" || len(a.Positions[0].Top) != verify.TopLogprobs {
			t.Fatalf("%s: attestation %q by %s/%s with %d alternatives, result %q", c.name, a.Text(), a.Backend, a.Model, len(a.Positions[0].Top), res.Text)
		}
		prompt := verifier.Tokenizer().Encode(req.Prompt, true)
		rep, err := verify.RecomputeLogprobs(context.Background(), verifier, a, prompt, 2, verify.DefaultLogprobTolerance)
		if rep.Pass != c.pass {
			t.Errorf("%s: pass %v, want %v (%v, %+v)", c.name, rep.Pass, c.pass, err, rep.Logprobs)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if bodies[0]["logprobs"] != true || bodies[0]["top_logprobs"] != float64(verify.TopLogprobs) {
		t.Errorf("request %v: log-probabilities not asked for", bodies[0])
	}
}

// sse writes OpenAI stream events.
func sse(w http.ResponseWriter, events ...any) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, e := range events {
		b, _ := json.Marshal(e)
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// TestOpenAILogprobFormats: the OpenAI client asks for log-probabilities
// in the form each endpoint takes and records both answer formats (chat's
// logprobs.content, which llama-server also sends for completions, with
// bytes for a token that is part of a UTF-8 character; the legacy
// completions arrays); a server that sends none, or tokens that do not
// make the text (a stop sequence cut it), gives no attestation.
func TestOpenAILogprobFormats(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	mode := "chat"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		bodies = append(bodies, body)
		m := mode
		mu.Unlock()
		usage := map[string]any{"choices": []any{}, "usage": map[string]any{"prompt_tokens": 3, "completion_tokens": 2}}
		switch m {
		case "chat":
			sse(w,
				map[string]any{"choices": []any{map[string]any{"delta": map[string]any{"content": "Hi"}, "logprobs": map[string]any{"content": []lpEntry{{Token: "Hi", Logprob: -0.25, TopLogprobs: []lpEntry{{Token: "Hi", Logprob: -0.25}, {Token: "Yo", Logprob: -1.5}}}}}}}},
				map[string]any{"choices": []any{map[string]any{"delta": map[string]any{"content": " é"}, "finish_reason": "stop", "logprobs": map[string]any{"content": []lpEntry{{Token: " \\xc3", Logprob: -2, Bytes: []int{' ', 0xc3}}, {Token: "\\xa9", Logprob: -0.125, Bytes: []int{0xa9}}}}}}},
				usage)
		case "legacy":
			sse(w,
				map[string]any{"choices": []any{map[string]any{"text": "Hi", "logprobs": map[string]any{"tokens": []string{"Hi"}, "token_logprobs": []float64{-0.5}, "top_logprobs": []map[string]float64{{"Yo": -2, "Hi": -0.5, "Hey": -2}}}}}},
				map[string]any{"choices": []any{map[string]any{"text": "!", "finish_reason": "length", "logprobs": map[string]any{"tokens": []string{"!"}, "token_logprobs": []float64{-1}, "top_logprobs": []map[string]float64{{"!": -1}}}}}},
				usage)
		case "none":
			sse(w, map[string]any{"choices": []any{map[string]any{"text": "Hi", "finish_reason": "stop"}}}, usage)
		case "cut":
			sse(w, map[string]any{"choices": []any{map[string]any{"text": "Hi", "finish_reason": "stop", "logprobs": map[string]any{"tokens": []string{"Hi", " END"}, "token_logprobs": []float64{-0.5, -0.1}}}}}, usage)
		}
	}))
	defer srv.Close()
	b := backend.NewOpenAI(srv.URL+"/v1", "", nil)
	run := func(m string, req backend.Request) (backend.Result, map[string]any) {
		t.Helper()
		mu.Lock()
		mode = m
		mu.Unlock()
		res, err := b.Generate(context.Background(), req, nil)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return res, bodies[len(bodies)-1]
	}
	chat := backend.Request{Model: "m", Messages: []backend.ChatMessage{{Role: "user", Content: "hello"}}, MaxTokens: 8}
	res, body := run("chat", chat)
	if body["logprobs"] != true || body["top_logprobs"] != float64(verify.TopLogprobs) {
		t.Errorf("chat request %v", body)
	}
	a, err := verify.DecodeLogprobAttestation([]byte(res.Attestation))
	if err != nil {
		t.Fatal(err)
	}
	want := []verify.PositionLogprobs{
		{Token: []byte("Hi"), Logprob: -250000, Top: []verify.TopLogprob{{Token: []byte("Hi"), Logprob: -250000}, {Token: []byte("Yo"), Logprob: -1500000}}},
		{Token: []byte(" \xc3"), Logprob: -2000000, Top: []verify.TopLogprob{}},
		{Token: []byte("\xa9"), Logprob: -125000, Top: []verify.TopLogprob{}},
	}
	if res.Text != "Hi é" || !positionsEqual(a.Positions, want) || a.Backend != "openai" {
		t.Errorf("chat: text %q, positions %+v", res.Text, a.Positions)
	}
	completion := backend.Request{Model: "m", Prompt: "hello", MaxTokens: 2}
	res, body = run("legacy", completion)
	if body["logprobs"] != float64(verify.TopLogprobs) || body["top_logprobs"] != nil {
		t.Errorf("completions request %v", body)
	}
	a, err = verify.DecodeLogprobAttestation([]byte(res.Attestation))
	if err != nil {
		t.Fatal(err)
	}
	want = []verify.PositionLogprobs{
		{Token: []byte("Hi"), Logprob: -500000, Top: []verify.TopLogprob{{Token: []byte("Hi"), Logprob: -500000}, {Token: []byte("Hey"), Logprob: -2000000}, {Token: []byte("Yo"), Logprob: -2000000}}},
		{Token: []byte("!"), Logprob: -1000000, Top: []verify.TopLogprob{{Token: []byte("!"), Logprob: -1000000}}},
	}
	if !positionsEqual(a.Positions, want) {
		t.Errorf("legacy completions: %+v", a.Positions)
	}
	for _, m := range []string{"none", "cut"} {
		if res, _ := run(m, completion); res.Attestation != "" || res.Text != "Hi" {
			t.Errorf("%s: attestation %q for %q", m, res.Attestation, res.Text)
		}
	}
}

func positionsEqual(a, b []verify.PositionLogprobs) bool {
	return slices.EqualFunc(a, b, func(x, y verify.PositionLogprobs) bool {
		return bytes.Equal(x.Token, y.Token) && x.Logprob == y.Logprob && slices.EqualFunc(x.Top, y.Top, func(p, q verify.TopLogprob) bool {
			return bytes.Equal(p.Token, q.Token) && p.Logprob == q.Logprob
		})
	})
}

// TestRemoteRetriesWithoutLogprobs: a server that refuses the
// log-probability fields (HTTP 400 naming them) still gets the job, asked
// again without them, and the result carries no attestation.
func TestRemoteRetriesWithoutLogprobs(t *testing.T) {
	var mu sync.Mutex
	var asked []bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		_, with := body["logprobs"]
		mu.Lock()
		asked = append(asked, with)
		mu.Unlock()
		if with {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"message":"Unrecognized request argument supplied: logprobs","type":"invalid_request_error"}}`)
			return
		}
		if r.URL.Path == "/api/generate" {
			fmt.Fprint(w, `{"response":"Hi","done":false}`+"\n"+`{"response":"","done":true,"done_reason":"stop","eval_count":1,"prompt_eval_count":2}`+"\n")
			return
		}
		sse(w, map[string]any{"choices": []any{map[string]any{"text": "Hi", "finish_reason": "stop"}}})
	}))
	defer srv.Close()
	req := backend.Request{Model: "m", Prompt: "hello", MaxTokens: 4}
	for _, b := range []backend.Backend{backend.NewOpenAI(srv.URL, "", nil), backend.NewOllama(srv.URL, nil)} {
		mu.Lock()
		asked = nil
		mu.Unlock()
		res, err := b.Generate(context.Background(), req, nil)
		if err != nil || res.Text != "Hi" || res.Attestation != "" {
			t.Fatalf("%s: %q, attestation %d bytes, %v", b.Name(), res.Text, len(res.Attestation), err)
		}
		mu.Lock()
		if !slices.Equal(asked, []bool{true, false}) {
			t.Errorf("%s: requests with log-probabilities: %v, want asked then not", b.Name(), asked)
		}
		mu.Unlock()
	}
}

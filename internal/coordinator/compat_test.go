package coordinator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

// call sends one request to the coordinator's real handler and decodes
// the JSON answer into a generic value.
func call(t *testing.T, srv *httptest.Server, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s %s: %d %q is not a JSON object", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, v
}

// The seeds reach the coordinator's health at /health and /api/v1/health
// as well as /v1/health.
func TestHealthAnswersOnTheSeedsPaths(t *testing.T) {
	h := newHarness(t, releaseDelay)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	for _, p := range []string{"/v1/health", "/health", "/api/v1/health"} {
		code, v := call(t, srv, "GET", p, "", "")
		if code != 200 || v["status"] != "ok" || v["coordinator"] != h.s.Address().String() {
			t.Errorf("GET %s: %d %v", p, code, v)
		}
	}
}

// OpenAI clients get one model by id, a 404 in OpenAI's error shape for
// an unknown one, and OpenAI's error type on every refusal.
func TestOpenAIModelAndErrorShapes(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.addMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()

	code, v := call(t, srv, "GET", "/v1/models/"+testModel, "", "")
	if code != 200 || v["id"] != testModel || v["object"] != "model" || v["owned_by"] != "aitbc" {
		t.Fatalf("GET /v1/models/%s: %d %v", testModel, code, v)
	}
	code, v = call(t, srv, "GET", "/v1/models/gpt-4", "", "")
	e, _ := v["error"].(map[string]any)
	if code != 404 || e["type"] != "invalid_request_error" || e["code"] != "model_not_served" || !strings.Contains(e["message"].(string), "gpt-4") {
		t.Fatalf("unknown model: %d %v", code, v)
	}
	if _, ok := e["param"]; !ok {
		t.Errorf("no param in %v", e)
	}
	for _, c := range []struct {
		name, key, body string
		status          int
		typ, code       string
	}{
		{"no key", "", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 401, "authentication_error", "unauthorized"},
		{"bad JSON", h.apiKey, `{"model":`, 400, "invalid_request_error", "invalid_request"},
		{"n > 1", h.apiKey, `{"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error", "invalid_request"},
		{"no deposit", h.apiKey, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 402, "insufficient_quota", "insufficient_deposit"},
	} {
		code, v := call(t, srv, "POST", "/v1/chat/completions", c.key, c.body)
		e, _ := v["error"].(map[string]any)
		if code != c.status || e["type"] != c.typ || e["code"] != c.code || e["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s %s", c.name, code, v, c.status, c.typ, c.code)
		}
	}
}

// Ollama's routes answer {"error": "..."} with a string, whoever refuses,
// and offer /api/show, /api/ps and /api/version.
func TestOllamaRoutesAndErrorShape(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.addMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()

	for _, c := range []struct {
		name, path, key, body string
		status                int
		want                  string
	}{
		{"no key", "/api/generate", "", `{"model":"m","prompt":"hi"}`, 401, "API key"},
		{"no deposit", "/api/chat", h.apiKey, `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}`, 402, "deposit"},
		{"unknown model", "/api/show", "", `{"model":"llama3.2:latest"}`, 404, "model 'llama3.2:latest' not found"},
		{"no model", "/api/show", "", `{}`, 400, "model is required"},
	} {
		code, v := call(t, srv, "POST", c.path, c.key, c.body)
		msg, ok := v["error"].(string)
		if code != c.status || !ok || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %v, want %d and a string error with %q", c.name, code, v, c.status, c.want)
		}
	}
	code, v := call(t, srv, "POST", "/api/show", "", `{"name":"`+testModel+`"}`)
	if d, _ := v["details"].(map[string]any); code != 200 || d["family"] != "llama" || v["model_info"] == nil {
		t.Fatalf("show: %d %v", code, v)
	}
	code, v = call(t, srv, "GET", "/api/ps", "", "")
	if ms, _ := v["models"].([]any); code != 200 || len(ms) != 1 || ms[0].(map[string]any)["name"] != testModel {
		t.Fatalf("ps: %d %v", code, v)
	}
	code, v = call(t, srv, "GET", "/api/version", "", "")
	if s, _ := v["version"].(string); code != 200 || s == "" {
		t.Fatalf("version: %d %v", code, v)
	}
}

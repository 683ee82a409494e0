package backend_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/png"
	"net/http"
	"reflect"
	"testing"

	"github.com/aitbc/aitbc/internal/miner/backend"
)

func pngB64(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// An OpenAI-compatible server gets a message with images as content
// parts — the text, then one image_url part with a data: URL per image —
// and the other messages as plain strings; a model not declared to see
// is refused before any request.
func TestOpenAIForwardsImagesAsContentParts(t *testing.T) {
	f := newFakeOpenAI(t, fakeConfig{models: map[string]fakeModel{"llava": {tokens: []string{"A", " square"}, promptTokens: 9}, "plain": {tokens: []string{"x"}}}})
	o := backend.NewOpenAI(f.URL(), "", nil).WithVision([]string{"llava"})
	img := pngB64(t)
	msgs := []backend.ChatMessage{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "What is this?", Images: []string{img}}}
	res, err := o.Generate(context.Background(), backend.Request{Model: "llava", Messages: msgs, MaxTokens: 4}, nil)
	if err != nil || res.Text != "A square" {
		t.Fatalf("%q %v", res.Text, err)
	}
	got := f.requests()[0].Body["messages"]
	want := []any{
		map[string]any{"role": "system", "content": "Be brief."},
		map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "text", "text": "What is this?"},
			map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64," + img}},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %v\nwant %v", got, want)
	}
	if vs, _ := o.VisionModels(context.Background()); !reflect.DeepEqual(vs, []string{"llava"}) {
		t.Fatalf("vision models %v", vs)
	}
	n := len(f.requests())
	_, err = o.Generate(context.Background(), backend.Request{Model: "plain", Messages: msgs, MaxTokens: 4}, nil)
	if !errors.Is(err, backend.ErrNoVision) || !errors.Is(err, backend.ErrInvalidRequest) || len(f.requests()) != n {
		t.Fatalf("images for a model without vision: %v (%d requests)", err, len(f.requests())-n)
	}
}

// Ollama gets the images as its messages' "images" list, and says which
// models see through /api/show's capabilities.
func TestOllamaForwardsImagesAndListsVisionModels(t *testing.T) {
	f := newFake(t, fakeConfig{models: map[string]fakeModel{"llava:latest": {tokens: []string{"A", " cat"}}, "llama3.2:latest": {tokens: []string{"x"}}}}, func(f *fake) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /api/tags", f.ollamaTags)
		mux.HandleFunc("POST /api/chat", f.ollamaGenerate)
		mux.HandleFunc("POST /api/show", func(w http.ResponseWriter, r *http.Request) {
			body, _ := f.record(r)
			caps := []string{"completion"}
			if body["model"] == "llava:latest" {
				caps = append(caps, "vision")
			}
			ollamaJSON(w, 200, map[string]any{"capabilities": caps, "details": map[string]any{"family": "llama"}})
		})
		return mux
	})
	o := backend.NewOllama(f.URL(), nil)
	vs, err := o.VisionModels(context.Background())
	if err != nil || !reflect.DeepEqual(vs, []string{"llava:latest"}) {
		t.Fatalf("vision models %v %v", vs, err)
	}
	img := pngB64(t)
	res, err := o.Generate(context.Background(), backend.Request{Model: "llava:latest", MaxTokens: 4,
		Messages: []backend.ChatMessage{{Role: "user", Content: "What is this?", Images: []string{img}}}}, nil)
	if err != nil || res.Text != "A cat" {
		t.Fatalf("%q %v", res.Text, err)
	}
	reqs := f.requests()
	m := reqs[len(reqs)-1].Body["messages"].([]any)[0].(map[string]any)
	if !reflect.DeepEqual(m["images"], []any{img}) || m["content"] != "What is this?" {
		t.Fatalf("sent %v", m)
	}
}

// The built-in engine reads text only: images are a request it can never
// serve.
func TestBuiltinRefusesImages(t *testing.T) {
	b := backend.NewBuiltin("", backend.BuiltinOptions{Threads: 1})
	_, err := b.Generate(context.Background(), backend.Request{Model: "tolstoy-1m", MaxTokens: 4,
		Messages: []backend.ChatMessage{{Role: "user", Content: "What is this?", Images: []string{pngB64(t)}}}}, nil)
	if !errors.Is(err, backend.ErrNoVision) || !errors.Is(err, backend.ErrInvalidRequest) {
		t.Fatalf("err = %v", err)
	}
}

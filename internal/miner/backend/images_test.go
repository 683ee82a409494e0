package backend_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aitbc/aitbc/internal/miner/backend"
)

// imageServer speaks the OpenAI images API as LocalAI does: it renders a
// real PNG of the size asked (a gradient seeded by the prompt), or, per
// mode, one of the ways servers go wrong.
func imageServer(t *testing.T, mode string, calls *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/images/generations" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer k" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"bad key","type":"invalid_request_error"}}`))
			return
		}
		var req struct{ Model, Prompt, Size, ResponseFormat string }
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		req.Model, _ = body["model"].(string)
		req.Prompt, _ = body["prompt"].(string)
		req.Size, _ = body["size"].(string)
		req.ResponseFormat, _ = body["response_format"].(string)
		if n, _ := body["n"].(float64); n != 1 || req.ResponseFormat != "b64_json" {
			t.Errorf("request %v", body)
		}
		if req.Model != "sd-turbo" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"message":"model not found","code":"model_not_found"}}`))
			return
		}
		var wd, ht int
		switch req.Size {
		case "512x512":
			wd, ht = 512, 512
		case "1024x768":
			wd, ht = 1024, 768
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"message":"unsupported size"}}`))
			return
		}
		switch mode {
		case "down":
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"message":"loading model"}}`))
			return
		case "url":
			_ = json.NewEncoder(w).Encode(map[string]any{"created": 1, "data": []any{map[string]any{"url": "http://127.0.0.1:1/x.png"}}})
			return
		case "wrongsize":
			wd, ht = 64, 64
		}
		seed := sha256.Sum256([]byte(req.Prompt))
		img := image.NewRGBA(image.Rect(0, 0, wd, ht))
		for y := 0; y < ht; y++ {
			for x := 0; x < wd; x++ {
				img.Set(x, y, color.RGBA{R: byte(x) ^ seed[0], G: byte(y) ^ seed[1], B: seed[2], A: 255})
			}
		}
		var buf bytes.Buffer
		_ = png.Encode(&buf, img)
		b := buf.Bytes()
		if mode == "notpng" {
			b = []byte("GIF89a not a png")
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"created": 1, "data": []any{map[string]any{"b64_json": base64.StdEncoding.EncodeToString(b)}}})
	}))
}

// TestImagesClientAgainstAnOpenAIImagesServer: a PNG of the size asked
// comes back checked; each failure maps to the sentinel the miner acts on
// (refuse the job, or let another miner try).
func TestImagesClientAgainstAnOpenAIImagesServer(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int32
	srv := imageServer(t, "", &calls)
	defer srv.Close()
	im := backend.NewImages(srv.URL+"/v1", "k", nil)
	img, err := im.Generate(ctx, backend.ImageRequest{Model: "sd-turbo", Prompt: "a futuristic cityscape", Size: "1024x768"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width != 1024 || cfg.Height != 768 {
		t.Fatalf("image %dx%d: %v", cfg.Width, cfg.Height, err)
	}
	again, _ := im.Generate(ctx, backend.ImageRequest{Model: "sd-turbo", Prompt: "a futuristic cityscape", Size: "1024x768"})
	if !bytes.Equal(img, again) {
		t.Fatal("the same request gave other bytes from a deterministic server")
	}

	for _, c := range []struct {
		name, mode, model, size, key string
		want                         error
		noCall                       bool
	}{
		{"unknown model", "", "dall-e-9", "512x512", "k", backend.ErrUnknownModel, false},
		{"bad key", "", "sd-turbo", "512x512", "x", backend.ErrBackendUnavailable, false},
		{"server loading", "down", "sd-turbo", "512x512", "k", backend.ErrBackendUnavailable, false},
		{"size the server refuses", "", "sd-turbo", "768x768", "k", backend.ErrInvalidRequest, false},
		{"a URL, not the image", "url", "sd-turbo", "512x512", "k", backend.ErrBackendFailed, false},
		{"not a PNG", "notpng", "sd-turbo", "512x512", "k", backend.ErrBackendFailed, false},
		{"wrong size back", "wrongsize", "sd-turbo", "512x512", "k", backend.ErrBackendFailed, false},
		{"malformed size", "", "sd-turbo", "big", "k", backend.ErrInvalidRequest, true},
		{"size too large", "", "sd-turbo", "4096x4096", "k", backend.ErrInvalidRequest, true},
		{"no model", "", "", "512x512", "k", backend.ErrInvalidRequest, true},
	} {
		var n atomic.Int32
		s := imageServer(t, c.mode, &n)
		_, err := backend.NewImages(s.URL, c.key, nil).Generate(ctx, backend.ImageRequest{Model: c.model, Prompt: "p", Size: c.size})
		s.Close()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if c.noCall && n.Load() != 0 {
			t.Errorf("%s: a request was sent", c.name)
		}
	}
}

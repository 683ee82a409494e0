package backend

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"

	"github.com/aitbc/aitbc/internal/jobkind"
)

// Image generation through the OpenAI images API, as LocalAI,
// stable-diffusion.cpp's server and other OpenAI-compatible image servers
// speak it: POST /v1/images/generations with {"model", "prompt", "n": 1,
// "size": "WxH", "response_format": "b64_json"} answered by {"created",
// "data": [{"b64_json": "<PNG>"}]}. The miner asks for base64 rather than a
// URL so that the image comes back in the answer (a URL would point at the
// image server, which the coordinator cannot reach), and checks that it is
// a PNG of the size asked before anyone is paid for it.

// MaxImageBytes bounds one generated image (jobkind.MaxImageBytes).
const MaxImageBytes = jobkind.MaxImageBytes

// ImageRequest is one image to generate.
type ImageRequest struct {
	Model  string
	Prompt string
	Size   string // "1024x1024"
}

// Images generates images on an OpenAI-compatible server. It shares the
// OpenAI backend's address, key and error mapping.
type Images struct{ o *OpenAI }

// NewImages returns the image client for the server at baseURL (with or
// without "/v1"); apiKey and client as for NewOpenAI.
func NewImages(baseURL, apiKey string, client *http.Client) *Images {
	return &Images{o: NewOpenAI(baseURL, apiKey, client)}
}

// Models lists the server's models (GET /v1/models): an image server lists
// the image models it can run.
func (im *Images) Models(ctx context.Context) ([]ModelInfo, error) { return im.o.Models(ctx) }

// Generate asks for one image and returns its PNG bytes, checked: a PNG
// that decodes, of the size asked.
func (im *Images) Generate(ctx context.Context, r ImageRequest) ([]byte, error) {
	w, h, err := jobkind.ParseImageSize(r.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	switch {
	case r.Model == "":
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, ErrNoModel)
	case r.Prompt == "":
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, ErrEmptyPrompt)
	}
	const path = "/v1/images/generations"
	body := map[string]any{"model": r.Model, "prompt": r.Prompt, "n": 1, "size": r.Size, "response_format": "b64_json"}
	resp, err := httpDo(ctx, im.o.client, http.MethodPost, im.o.base+path, body, im.o.header(), im.o.classify(path))
	if err != nil {
		return nil, im.o.wrap(err)
	}
	defer resp.Body.Close()
	// base64 is 4/3 of the bytes, plus the JSON around it.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxImageBytes*4/3+1<<16))
	if err != nil {
		return nil, streamError(ctx, "openai images", err)
	}
	var out struct {
		Data []struct {
			B64  string `json:"b64_json"`
			URL  string `json:"url"`
			Note string `json:"revised_prompt"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%w: openai %s: malformed answer: %v", ErrBackendFailed, path, err)
	}
	if len(out.Data) == 0 {
		return nil, fmt.Errorf("%w: openai %s: no image in the answer", ErrBackendFailed, path)
	}
	if out.Data[0].B64 == "" {
		return nil, fmt.Errorf("%w: openai %s: the server sent a URL, not b64_json (it ignores response_format)", ErrBackendFailed, path)
	}
	img, err := base64.StdEncoding.DecodeString(out.Data[0].B64)
	if err != nil {
		return nil, fmt.Errorf("%w: openai %s: image is not base64: %v", ErrBackendFailed, path, err)
	}
	if len(img) > MaxImageBytes {
		return nil, fmt.Errorf("%w: openai %s: image of %d bytes (at most %d)", ErrBackendFailed, path, len(img), MaxImageBytes)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("%w: openai %s: not a PNG: %v", ErrBackendFailed, path, err)
	}
	if _, err := png.Decode(bytes.NewReader(img)); err != nil {
		return nil, fmt.Errorf("%w: openai %s: broken PNG: %v", ErrBackendFailed, path, err)
	}
	if cfg.Width != w || cfg.Height != h {
		return nil, fmt.Errorf("%w: openai %s: asked for %s, got %dx%d", ErrBackendFailed, path, r.Size, cfg.Width, cfg.Height)
	}
	return img, nil
}

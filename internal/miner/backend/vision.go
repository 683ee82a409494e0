package backend

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// Image inputs. A chat message's Images (base64 of image files) go to
// Ollama as its messages' "images" list unchanged, and to an
// OpenAI-compatible server as content parts: the text, then one
// {"type":"image_url","image_url":{"url":"data:<type>;base64,…"}} per
// image. The built-in engine reads no images and refuses them.

// ErrNoVision is a request with images for a backend or model that does
// not read them. It is an ErrInvalidRequest too: no retry helps.
var ErrNoVision = errors.New("backend: the model takes no image inputs")

// VisionLister is a backend that can say which of its models read
// images; the miner declares them in its hello so that the coordinator
// routes jobs with images there only.
type VisionLister interface {
	VisionModels(ctx context.Context) ([]string, error)
}

// hasImages reports whether any message carries an image.
func hasImages(msgs []ChatMessage) bool {
	for _, m := range msgs {
		if len(m.Images) > 0 {
			return true
		}
	}
	return false
}

// noVision is the error for images sent to a backend without vision.
func noVision(backend, model string) error {
	return fmt.Errorf("%w: %w: %s model %s", ErrInvalidRequest, ErrNoVision, backend, model)
}

// openAIMessage is a chat message on the OpenAI wire: Content is the
// text, or a list of parts when the message has images.
type openAIMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

type openAIImageURL struct {
	URL string `json:"url"`
}

type openAIContentPart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text,omitempty"`
	ImageURL *openAIImageURL `json:"image_url,omitempty"`
}

// toOpenAIMessages converts messages to the OpenAI wire form, naming each
// image's type from its first bytes.
func toOpenAIMessages(msgs []ChatMessage) ([]openAIMessage, error) {
	out := make([]openAIMessage, 0, len(msgs))
	for i, m := range msgs {
		if len(m.Images) == 0 {
			out = append(out, openAIMessage{Role: m.Role, Content: m.Content})
			continue
		}
		parts := []openAIContentPart{}
		if m.Content != "" {
			parts = append(parts, openAIContentPart{Type: "text", Text: m.Content})
		}
		for j, im := range m.Images {
			b, err := base64.StdEncoding.DecodeString(im)
			if err != nil {
				return nil, fmt.Errorf("%w: message %d image %d: %v", ErrInvalidRequest, i, j, err)
			}
			parts = append(parts, openAIContentPart{Type: "image_url", ImageURL: &openAIImageURL{URL: "data:" + http.DetectContentType(b) + ";base64," + im}})
		}
		out = append(out, openAIMessage{Role: m.Role, Content: parts})
	}
	return out, nil
}

// WithVision returns the backend that declares vision for models: an
// OpenAI-compatible server does not say which of its models read images,
// so the operator does (aitbc miner start --vision-models).
func (o *OpenAI) WithVision(models []string) *OpenAI {
	c := *o
	c.vision = slices.Clone(models)
	return &c
}

// VisionModels implements VisionLister: the models WithVision declared.
func (o *OpenAI) VisionModels(context.Context) ([]string, error) { return slices.Clone(o.vision), nil }

// maxShowModels bounds the /api/show requests VisionModels makes.
const maxShowModels = 64

// VisionModels implements VisionLister: the models whose /api/show lists
// the "vision" capability (Ollama 0.6.4 and later report capabilities;
// an older server reports none, and no model is declared).
func (o *Ollama) VisionModels(ctx context.Context) ([]string, error) {
	ms, err := o.Models(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, m := range ms {
		if i == maxShowModels {
			break
		}
		resp, err := httpDo(ctx, o.client, http.MethodPost, o.base+"/api/show", map[string]string{"model": m.Name}, nil, o.classify("/api/show"))
		if err != nil {
			return nil, o.wrap(err)
		}
		var show struct {
			Capabilities []string `json:"capabilities"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, maxLine)).Decode(&show)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: ollama /api/show: malformed answer: %v", ErrBackendFailed, err)
		}
		if slices.Contains(show.Capabilities, "vision") {
			out = append(out, m.Name)
		}
	}
	return out, nil
}

package coordinator

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// Images in chat messages (the seeds' "multimodal" services). The OpenAI
// route takes a message's content as a string or as a list of parts —
// {"type":"text","text":…} and {"type":"image_url","image_url":{"url":
// "data:image/png;base64,…"}} —, the Ollama route a message's "images"
// list of base64 strings. Both become minerproto.ChatMessage.Images (the
// base64 of each image file), which the prompt hash covers, and the job
// goes only to a miner that declares vision for its model.

// Limits on a job's images. The request body limit (httpx.MaxBody, 1
// MiB) bounds them together too.
const (
	MaxImagesPerJob = 4
	MaxImageBytes   = 512 << 10 // one image, decoded (its base64 fits the body limit)
	maxVisionModels = 256       // models a miner's hello may declare vision for
)

// ErrNoVision: the job's messages carry images and no miner serving its
// model accepts them (sched.NoVision).
var ErrNoVision = errors.New("coordinator: no miner accepts image inputs for the model")

// imageTypes are the image formats a job may carry, as
// http.DetectContentType names them.
var imageTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// checkImages enforces the limits on the messages' images: how many,
// canonical standard base64, decoded size, and an image format.
func checkImages(msgs []minerproto.ChatMessage) error {
	n := 0
	for mi, m := range msgs {
		for ii, im := range m.Images {
			n++
			if n > MaxImagesPerJob {
				return errf(ErrInvalidRequest, "at most %d images per job", MaxImagesPerJob)
			}
			if base64.StdEncoding.DecodedLen(len(im)) > MaxImageBytes+2 {
				return errf(ErrInvalidRequest, "message %d image %d is over %d bytes", mi, ii, MaxImageBytes)
			}
			b, err := base64.StdEncoding.Strict().DecodeString(im)
			switch {
			case err != nil:
				return errf(ErrInvalidRequest, "message %d image %d is not standard base64: %v", mi, ii, err)
			case len(b) == 0 || len(b) > MaxImageBytes:
				return errf(ErrInvalidRequest, "message %d image %d has %d bytes (1 to %d)", mi, ii, len(b), MaxImageBytes)
			case !slices.Contains(imageTypes, http.DetectContentType(b)):
				return errf(ErrInvalidRequest, "message %d image %d is %s, not PNG, JPEG, GIF or WebP", mi, ii, http.DetectContentType(b))
			}
		}
	}
	return nil
}

// openAIMessage is a chat message as the OpenAI API sends it: content is
// a string, or a list of text and image_url parts.
type openAIMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type openAIPart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	ImageURL json.RawMessage `json:"image_url"` // {"url": …, "detail": …}, or the URL alone
}

// openAIMessages converts the request's messages: a list of parts becomes
// the text parts joined by newlines and the images' base64 payloads. Only
// data: URLs are taken (the coordinator fetches nothing on a customer's
// behalf).
func openAIMessages(in []openAIMessage) ([]minerproto.ChatMessage, error) {
	out := make([]minerproto.ChatMessage, 0, len(in))
	for i, m := range in {
		cm := minerproto.ChatMessage{Role: m.Role}
		if len(m.Content) == 0 || string(m.Content) == "null" {
			out = append(out, cm)
			continue
		}
		if json.Unmarshal(m.Content, &cm.Content) == nil {
			out = append(out, cm)
			continue
		}
		var parts []openAIPart
		if err := json.Unmarshal(m.Content, &parts); err != nil {
			return nil, errf(ErrInvalidRequest, "messages[%d].content must be a string or a list of content parts", i)
		}
		var texts []string
		for j, p := range parts {
			switch p.Type {
			case "text":
				texts = append(texts, p.Text)
			case "image_url":
				b64, err := dataURLImage(p.ImageURL)
				if err != nil {
					return nil, errf(ErrInvalidRequest, "messages[%d].content[%d].image_url: %v", i, j, err)
				}
				cm.Images = append(cm.Images, b64)
			default:
				return nil, errf(ErrInvalidRequest, "messages[%d].content[%d]: part type %q (text and image_url are accepted)", i, j, p.Type)
			}
		}
		cm.Content = strings.Join(texts, "\n")
		out = append(out, cm)
	}
	return out, nil
}

// dataURLImage returns the base64 payload of a data:image/…;base64, URL.
func dataURLImage(raw json.RawMessage) (string, error) {
	var obj struct {
		URL string `json:"url"`
	}
	var url string
	if json.Unmarshal(raw, &obj) == nil {
		url = obj.URL
	} else if json.Unmarshal(raw, &url) != nil {
		return "", errors.New(`must be {"url": "data:image/png;base64,..."}`)
	}
	rest, ok := strings.CutPrefix(url, "data:")
	if !ok {
		return "", fmt.Errorf("only data: URLs are accepted (data:image/png;base64,...), not %.40q", url)
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok || !strings.HasSuffix(meta, ";base64") || !strings.HasPrefix(meta, "image/") {
		return "", errors.New("a data: URL must be data:image/<type>;base64,<data>")
	}
	return payload, nil
}

// jobHasImages reports whether a stored job's messages carry images.
func jobHasImages(j *store.Job) bool {
	for _, m := range j.Messages {
		if len(m.Images) > 0 {
			return true
		}
	}
	return false
}

// visionOf is the models a miner's hello declares vision for, kept to
// those it serves and bounded.
func visionOf(h *minerproto.Hello) []string {
	var out []string
	for _, m := range h.Vision {
		if len(out) < maxVisionModels && slices.Contains(h.Models, m) && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

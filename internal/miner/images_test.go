package miner_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// textRunner is the miner's text backend: it serves llama and must not
// see image jobs.
type textRunner struct{ ran []string }

func (r *textRunner) Name() string                             { return "text" }
func (r *textRunner) Models(context.Context) ([]string, error) { return []string{"llama"}, nil }
func (r *textRunner) Run(_ context.Context, j *minerproto.Job, _ func(string) error) (miner.Output, error) {
	r.ran = append(r.ran, j.Model)
	return miner.Output{Text: "hi", TokensOut: 1}, nil
}

// sdServer is an OpenAI images server with one model, sd-turbo, that
// paints a blank PNG of the size asked; down makes it answer 503.
func sdServer(t *testing.T, down *bool) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/models":
			_, _ = w.Write([]byte(`{"data":[{"id":"sd-turbo"}]}`))
		case "/v1/images/generations":
			if *down {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var req struct{ Size string }
			_ = json.NewDecoder(r.Body).Decode(&req)
			wd, ht, err := jobkind.ParseImageSize(req.Size)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			var buf bytes.Buffer
			_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, wd, ht)))
			_ = json.NewEncoder(w).Encode(map[string]any{"data": []any{map[string]any{"b64_json": base64.StdEncoding.EncodeToString(buf.Bytes())}}})
		default:
			http.NotFound(w, r)
		}
	}))
}

// TestAMinerGeneratesImageJobsOnItsImagesBackend: the miner offers
// image:sd-turbo besides its text models; an image job's result is the
// PNG with its hash, paid for the work units its size makes; a job that
// lies about its units is refused as a bad job, a server that is down
// leaves the job for another miner.
func TestAMinerGeneratesImageJobsOnItsImagesBackend(t *testing.T) {
	ctx := context.Background()
	down := false
	srv := sdServer(t, &down)
	defer srv.Close()
	text := &textRunner{}
	k := miner.KindRunner{Next: text, Images: backend.NewImages(srv.URL, "", nil)}
	models, err := k.Models(ctx)
	if err != nil || strings.Join(models, ",") != "llama,image:sd-turbo" {
		t.Fatalf("models %v: %v", models, err)
	}
	spec, prompt, err := jobkind.PrepareImage("sd-turbo", "a futuristic cityscape with flying cars", "1024x1024")
	if err != nil || spec.Units != 16 {
		t.Fatalf("spec %+v: %v", spec, err)
	}
	job := &minerproto.Job{ID: "j1", Model: "image:sd-turbo", Prompt: prompt, MaxTokens: 16}
	var progress []string
	out, err := k.Run(ctx, job, func(s string) error { progress = append(progress, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	res, img, err := jobkind.ParseImageResult(out.Text)
	if err != nil || out.TokensOut != 16 || res.Size != "1024x1024" || res.Model != "sd-turbo" {
		t.Fatalf("result %+v tokens %d: %v", res, out.TokensOut, err)
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(img)); err != nil || cfg.Width != 1024 || cfg.Height != 1024 {
		t.Fatalf("png %+v: %v", cfg, err)
	}
	if len(progress) != 1 || len(text.ran) != 0 {
		t.Fatalf("progress %q, text backend ran %v", progress, text.ran)
	}
	// A spec declaring fewer units than its size makes.
	lie := strings.Replace(prompt, `"units":16`, `"units":1`, 1)
	if _, err := k.Run(ctx, &minerproto.Job{ID: "j2", Model: "image:sd-turbo", Prompt: lie, MaxTokens: 16}, nil); !errors.Is(err, miner.ErrBadJob) {
		t.Fatalf("lying units: %v", err)
	}
	// Another model than the job's.
	if _, err := k.Run(ctx, &minerproto.Job{ID: "j3", Model: "image:flux", Prompt: prompt, MaxTokens: 16}, nil); !errors.Is(err, miner.ErrBadJob) {
		t.Fatalf("model mismatch: %v", err)
	}
	down = true
	_, err = k.Run(ctx, job, nil)
	if err == nil || errors.Is(err, miner.ErrBadJob) || !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("server down: %v", err)
	}
	down = false
	// With the coordinator's file store the result names the PNG only; a
	// coordinator without files gets it inline; another failure to store
	// it leaves the job for another miner.
	keep := &keptResults{}
	k.Results = keep
	out, err = k.Run(ctx, job, nil)
	if err != nil || strings.Contains(out.Text, "png_base64") || len(keep.got) != 1 {
		t.Fatalf("stored: %q %v", out.Text, err)
	}
	if res, png, err := jobkind.ParseImageResult(out.Text); err != nil || png != nil || res.CheckImage(keep.got[0]) != nil {
		t.Fatalf("stored result %+v: %v", res, err)
	}
	keep.err = miner.ErrNoFileStore
	if out, err = k.Run(ctx, job, nil); err != nil || !strings.Contains(out.Text, "png_base64") {
		t.Fatalf("no file store: %v", err)
	}
	keep.err = errors.New("coordinator answered 503")
	if _, err = k.Run(ctx, job, nil); err == nil || errors.Is(err, miner.ErrBadJob) {
		t.Fatalf("store failed: %v", err)
	}
	k.Results = nil
	// Text jobs still go to the text backend.
	if _, err := k.Run(ctx, &minerproto.Job{ID: "j4", Model: "llama", Prompt: "hi", MaxTokens: 4}, nil); err != nil || len(text.ran) != 1 {
		t.Fatalf("text job: %v %v", err, text.ran)
	}
}

// keptResults stands for the coordinator's file store.
type keptResults struct {
	got [][]byte
	err error
}

func (k *keptResults) Upload(_ context.Context, _ string, data []byte) (string, error) {
	if k.err != nil {
		return "", k.err
	}
	k.got = append(k.got, data)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

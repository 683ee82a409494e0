package coordinator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/blob"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/jobkind"
)

// POST /v1/images/generations, OpenAI-compatible: the request becomes an
// image job (package jobkind: model "image:<model>", its JSON spec as the
// prompt, one work unit per 65,536 pixels) paid from the tenant's deposit
// like a chat completion, run on a miner whose images backend serves the
// model; the answer carries the PNG as b64_json, checked against the hash
// the miner's signed result names. AITBC ships no image model: with no
// such miner connected the answer says so (404 model_not_served).

// imagesRequest is the OpenAI images request.
type imagesRequest struct {
	Model          string `json:"model"`
	Prompt         string `json:"prompt"`
	N              int    `json:"n"`
	Size           string `json:"size"`
	ResponseFormat string `json:"response_format"`
	Quality        string `json:"quality,omitempty"` // accepted, not used
	Style          string `json:"style,omitempty"`   // accepted, not used
	User           string `json:"user,omitempty"`
}

// imageModels returns the image models the connected miners serve,
// without the prefix, sorted.
func (s *Service) imageModels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, mc := range s.miners {
		for _, m := range mc.models {
			if jobkind.IsImageModel(m) && !seen[m] {
				seen[m] = true
				out = append(out, strings.TrimPrefix(m, jobkind.ImageModelPrefix))
			}
		}
	}
	sort.Strings(out)
	return out
}

func (s *Service) hImages(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	var req imagesRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, httpx.MaxBody)).Decode(&req); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			err = fmt.Errorf("%w: request body is over %d bytes", httpx.ErrBodyTooLarge, mbe.Limit)
		}
		s.failDecode(w, err)
		return
	}
	switch {
	case req.N > 1:
		s.fail(w, errf(ErrInvalidRequest, "n > 1 is not supported: submit one request per image"))
		return
	case req.ResponseFormat != "" && req.ResponseFormat != "b64_json":
		s.fail(w, errf(ErrInvalidRequest, "response_format %q: this coordinator returns the image itself (b64_json), not a URL", req.ResponseFormat))
		return
	}
	if req.Size == "" {
		req.Size = "1024x1024"
	}
	models := s.imageModels()
	if len(models) == 0 {
		s.fail(w, errf(ErrModelNotServed, "no connected miner generates images: a miner needs an OpenAI-compatible images server (aitbc miner start --images-endpoint URL); AITBC ships no image model, so a devnet serves none"))
		return
	}
	if req.Model == "" {
		if len(models) > 1 {
			s.fail(w, errf(ErrInvalidRequest, "model is required: the miners generate with %s", strings.Join(models, ", ")))
			return
		}
		req.Model = models[0]
	}
	spec, prompt, err := jobkind.PrepareImage(req.Model, req.Prompt, req.Size)
	if err != nil {
		s.fail(w, errf(ErrInvalidRequest, "%s", strings.TrimPrefix(err.Error(), "jobkind: ")))
		return
	}
	created := time.Now().Unix()
	j, err := s.runJob(r.Context(), t, JobRequest{Model: jobkind.ImageModel(spec.Image.Model), Prompt: prompt, MaxTokens: spec.Units}, nil)
	if err != nil {
		s.fail(w, err)
		return
	}
	res, png, err := s.imageOf(r.Context(), t.ID, j.Result)
	if err != nil {
		s.fail(w, errf(ErrJobFailed, "job %s: the miner's result is not the image: %v", j.ID, err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"created": created,
		"data":    []any{map[string]any{"b64_json": base64.StdEncoding.EncodeToString(png), "revised_prompt": req.Prompt}},
		// What the OpenAI answer has no place for: the job, its receipt's
		// hashes and its price are in GET /v1/jobs/{id}.
		"aitbc": map[string]any{"job_id": j.ID, "model": j.Model, "size": res.Size, "png_sha256": res.SHA256, "work_units": spec.Units},
	})
}

// hMinerResult is PUT /v1/miners/results/{sha256}?job_id=J: the miner
// running image job J stores its PNG (fine-tuning job J its GGUF, a
// classifier or data-processing job its model file or report), in pieces as the customer's uploads
// go (Upload-Offset, Upload-Length), held for the job's customer (it
// counts against the customer's file quota, and is pruned with its files).
// The headers sign minerproto.FileDigest over jobkind.ResultFileKey(sha256).
func (s *Service) hMinerResult(w http.ResponseWriter, r *http.Request) {
	hash, jobID := r.PathValue("sha256"), r.URL.Query().Get("job_id")
	if !blob.ValidHash(hash) {
		s.fail(w, errf(ErrFileInvalid, "not a SHA-256: %q", trunc(hash)))
		return
	}
	model, _, tenant, err := s.minerJob(r, jobID, jobkind.ResultFileKey(hash))
	if err != nil {
		s.fail(w, err)
		return
	}
	limit := int64(jobkind.MaxImageBytes)
	switch {
	case jobkind.IsFinetuneModel(model): // a fine-tuned model's GGUF (jobkind/finetune.go)
		limit = jobkind.MaxModelBytes
	case model == jobkind.ModelCustomClassifier || model == jobkind.ModelDataProcessing: // a model file or report (jobkind.FileResult)
		limit = jobkind.MaxResultFileBytes
	case !jobkind.IsImageModel(model):
		s.fail(w, errf(ErrUnsupportedJob, "job %s has no result file: its result is its text", jobID))
		return
	}
	offset, err := headerInt(r, HeaderUploadOffset, 0)
	if err != nil {
		s.fail(w, err)
		return
	}
	total, err := headerInt(r, HeaderUploadLength, r.ContentLength)
	if err != nil {
		s.fail(w, err)
		return
	}
	if total <= 0 || total > limit {
		s.fail(w, errf(ErrFileInvalid, "a %s result is 1 to %d bytes, not %d", model, limit, total))
		return
	}
	p, err := s.UploadFile(r.Context(), tenant, hash, total, offset, r.Body)
	if err != nil {
		if errors.Is(err, ErrUploadOffset) {
			w.Header().Set(HeaderUploadOffset, strconv.FormatInt(p.Received, 10))
		}
		s.fail(w, err)
		return
	}
	w.Header().Set(HeaderUploadOffset, strconv.FormatInt(p.Received, 10))
	status := http.StatusAccepted
	if p.Done {
		status = http.StatusCreated
	}
	httpx.WriteJSON(w, status, p)
}

// imageOf returns the PNG of an image job's result, from the file store
// when the miner stored it there, checked against the result's hash.
func (s *Service) imageOf(ctx context.Context, tenantID, result string) (jobkind.ImageResult, []byte, error) {
	res, png, err := jobkind.ParseImageResult(result)
	if err != nil || png != nil {
		return res, png, err
	}
	rc, _, err := s.OpenFile(ctx, tenantID, res.SHA256) // outside the lock: disk I/O
	if err != nil {
		return res, nil, err
	}
	defer rc.Close()
	png, err = io.ReadAll(io.LimitReader(rc, jobkind.MaxImageBytes+1))
	if err != nil {
		return res, nil, err
	}
	return res, png, res.CheckImage(png)
}

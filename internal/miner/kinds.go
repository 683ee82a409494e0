package miner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// MaxInputBytes bounds an input file a miner fetches (the coordinator's
// per-file limit).
const MaxInputBytes = 64 << 20

// FileFetcher gets a job's input file by its hash.
type FileFetcher interface {
	Fetch(ctx context.Context, jobID, sha256 string) ([]byte, error)
}

// ImageGenerator makes images: an OpenAI-compatible images server
// (backend.Images).
type ImageGenerator interface {
	Models(ctx context.Context) ([]backend.ModelInfo, error)
	Generate(ctx context.Context, r backend.ImageRequest) ([]byte, error)
}

// ResultStore keeps a job's result file with the coordinator (an image
// job's PNG, a fine-tuning job's GGUF). ErrNoFileStore says the coordinator keeps no files.
type ResultStore interface {
	Upload(ctx context.Context, jobID string, data []byte) (sha256 string, err error)
}

// ErrNoFileStore is a coordinator that keeps no files: results then travel
// inline in the result message.
var ErrNoFileStore = errors.New("miner: the coordinator keeps no files")

// KindRunner runs data-processing and training jobs (package jobkind)
// itself, image jobs on Images, and hands every other job to Next. Models
// adds the kinds' model names (when Files is set) and the image models
// ("image:<model>", when Images is set) to Next's, so the coordinator
// routes those jobs here.
type KindRunner struct {
	Next    Runner
	Files   FileFetcher
	Workers int // goroutines a training job uses (the weights do not depend on it)
	Images  ImageGenerator
	// Results stores an image job's PNG, a classifier's model file or a
	// report with the coordinator (nil, or a coordinator without files:
	// they go inline in the result).
	Results ResultStore
}

// Name implements Runner.
func (k KindRunner) Name() string { return k.Next.Name() }

// Models implements Runner.
func (k KindRunner) Models(ctx context.Context) ([]string, error) {
	ms, err := k.Next.Models(ctx)
	if err != nil {
		return nil, err
	}
	if k.Files != nil {
		ms = append(ms, jobkind.Models...)
	}
	if k.Images != nil {
		im, err := k.Images.Models(ctx)
		if err != nil {
			return nil, fmt.Errorf("miner: images backend: %w", err)
		}
		for _, m := range im {
			ms = append(ms, jobkind.ImageModel(m.Name))
		}
	}
	return ms, nil
}

// Run implements Runner. A job whose spec or input is wrong can never
// succeed on any miner: it fails with ErrBadJob. A file that cannot be
// fetched now may be retried elsewhere.
func (k KindRunner) Run(ctx context.Context, job *minerproto.Job, onToken func(string) error) (Output, error) {
	if jobkind.IsImageModel(job.Model) && k.Images != nil {
		return k.runImage(ctx, job, onToken)
	}
	if !jobkind.IsKindModel(job.Model) || k.Files == nil {
		return k.Next.Run(ctx, job, onToken)
	}
	spec, err := jobkind.ParseSpec(job.Prompt)
	if err != nil {
		return Output{}, fmt.Errorf("%w: %v", ErrBadJob, err)
	}
	if spec.Units > job.MaxTokens {
		return Output{}, fmt.Errorf("%w: spec declares %d work units, the job pays for %d", ErrBadJob, spec.Units, job.MaxTokens)
	}
	data, err := k.Files.Fetch(ctx, job.ID, spec.Input.SHA256)
	if err != nil {
		return Output{}, fmt.Errorf("miner: input %s: %w", spec.Input.SHA256, err)
	}
	sum := sha256.Sum256(data)
	res, err := jobkind.Execute(ctx, spec, data, hex.EncodeToString(sum[:]), max(k.Workers, 1), jobkind.Progress(onToken))
	if err != nil {
		if ctx.Err() != nil {
			return Output{}, err
		}
		return Output{}, fmt.Errorf("%w: %v", ErrBadJob, err)
	}
	if res.File != nil {
		// A fine-tuned model: the file goes to the coordinator's store for
		// the customer; the result text names its hash.
		if k.Results == nil {
			return Output{}, fmt.Errorf("miner: job %s made a result file and this miner has no file store to put it in", job.ID)
		}
		if _, err := k.Results.Upload(ctx, job.ID, res.File); err != nil {
			return Output{}, fmt.Errorf("miner: storing the result file: %w", err)
		}
	} else if res.Text, err = k.storeOutput(ctx, job, spec, res.Text); err != nil {
		return Output{}, err
	}
	return Output{Text: res.Text, TokensIn: 0, TokensOut: res.Units, FinishReason: "stop"}, nil
}

// storeOutput stores a classifier's model file or a report with the
// coordinator and returns the result text that names its hash
// (jobkind.FileResult), as a fine-tuned GGUF travels. A coordinator that
// keeps no files (or a miner given no store) gets the output inline, as
// before.
func (k KindRunner) storeOutput(ctx context.Context, job *minerproto.Job, spec jobkind.Spec, out string) (string, error) {
	if k.Results == nil || len(out) > jobkind.MaxResultFileBytes {
		return out, nil
	}
	if _, err := k.Results.Upload(ctx, job.ID, []byte(out)); err != nil {
		if errors.Is(err, ErrNoFileStore) {
			return out, nil
		}
		return "", fmt.Errorf("miner: storing the result file: %w", err)
	}
	return jobkind.NewFileResult(job.Model, spec, []byte(out))
}

// runImage generates the job's image. A spec that does not read, names
// another model, or declares other work than its size makes is a bad job;
// a backend that is down lets another miner try.
func (k KindRunner) runImage(ctx context.Context, job *minerproto.Job, onToken func(string) error) (Output, error) {
	spec, err := jobkind.ParseSpec(job.Prompt)
	if err != nil {
		return Output{}, fmt.Errorf("%w: %v", ErrBadJob, err)
	}
	if spec.Type != jobkind.TypeImage || spec.Image == nil || jobkind.ImageModel(spec.Image.Model) != job.Model {
		return Output{}, fmt.Errorf("%w: the job's model %s and its image spec disagree", ErrBadJob, job.Model)
	}
	want, _, err := jobkind.PrepareImage(spec.Image.Model, spec.Image.Prompt, spec.Image.Size)
	if err != nil {
		return Output{}, fmt.Errorf("%w: %v", ErrBadJob, err)
	}
	if want.Units != spec.Units || spec.Units > job.MaxTokens {
		return Output{}, fmt.Errorf("%w: spec declares %d work units, a %s image is %d, the job pays for %d", ErrBadJob, spec.Units, spec.Image.Size, want.Units, job.MaxTokens)
	}
	png, err := k.Images.Generate(ctx, backend.ImageRequest{Model: spec.Image.Model, Prompt: spec.Image.Prompt, Size: spec.Image.Size})
	if err != nil {
		if errors.Is(err, backend.ErrInvalidRequest) || errors.Is(err, backend.ErrUnknownModel) {
			return Output{}, fmt.Errorf("%w: %v", ErrBadJob, err)
		}
		return Output{}, fmt.Errorf("miner: image: %w", err)
	}
	text, err := k.imageResult(ctx, job.ID, spec, png)
	if err != nil {
		return Output{}, err
	}
	if onToken != nil {
		if err := onToken(fmt.Sprintf("image %s generated: %d bytes of PNG\n", spec.Image.Size, len(png))); err != nil {
			return Output{}, err
		}
	}
	return Output{Text: text, TokensOut: spec.Units, FinishReason: "stop"}, nil
}

// imageResult stores png with the coordinator and returns the result text
// that names it, or, when the coordinator keeps no files, carries it.
func (k KindRunner) imageResult(ctx context.Context, jobID string, spec jobkind.Spec, png []byte) (string, error) {
	if k.Results != nil {
		sha, err := k.Results.Upload(ctx, jobID, png)
		switch {
		case err == nil:
			return jobkind.NewStoredImageResult(spec, sha, len(png))
		case !errors.Is(err, ErrNoFileStore):
			return "", fmt.Errorf("miner: storing the image: %w", err)
		}
	}
	return jobkind.NewImageResult(spec, png)
}

// uploadPiece is the size of one piece of a result upload: under the
// coordinator's 1 MiB request body limit.
const uploadPiece = 768 << 10

// Upload implements ResultStore: the PUT /v1/miners/results/{sha256}
// route, in pieces, each signed with the miner's key.
func (f *HTTPFiles) Upload(ctx context.Context, jobID string, data []byte) (string, error) {
	base := f.base()
	coord, err := f.coordinatorAddress(ctx, base)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	u := base + "/v1/miners/results/" + url.PathEscape(hash) + "?job_id=" + url.QueryEscape(jobID)
	for off := 0; off < len(data); off += uploadPiece {
		end := min(off+uploadPiece, len(data))
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(data[off:end]))
		if err != nil {
			return "", err
		}
		ms := now().UnixMilli()
		req.Header.Set(minerproto.HeaderMiner, address.FromPubKey(f.Key.PublicKey()).String())
		req.Header.Set(minerproto.HeaderMinerTime, strconv.FormatInt(ms, 10))
		req.Header.Set(minerproto.HeaderMinerSig, hex.EncodeToString(f.Key.Sign(minerproto.FileDigest(coord, jobID, jobkind.ResultFileKey(hash), ms))))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Upload-Offset", strconv.Itoa(off))
		req.Header.Set("Upload-Length", strconv.Itoa(len(data)))
		resp, err := f.client().Do(req)
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusAccepted {
			continue
		}
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Error.Code == "files_disabled" {
			return "", ErrNoFileStore
		}
		return "", fmt.Errorf("coordinator answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return hash, nil
}

// HTTPFiles fetches input files from the coordinator, signing each
// request with the miner's key (minerproto.FileDigest).
type HTTPFiles struct {
	Coordinator string // base URL
	// Current is the base URL of the coordinator the miner serves now,
	// which sent the job (nil: Coordinator). A miner given several
	// coordinators fetches from the one it is connected to.
	Current func() string
	Key     minerproto.Signer
	HTTP    *http.Client
	Now     func() time.Time

	mu     sync.Mutex
	coords map[string]address.Address // by base URL
}

func (f *HTTPFiles) base() string {
	u := f.Coordinator
	if f.Current != nil {
		if c := f.Current(); c != "" {
			u = c
		}
	}
	return strings.TrimRight(u, "/")
}

// coordinatorAddress learns the address the coordinator at base signs as
// (it is part of the signed digest, so a signature is good for one
// coordinator).
func (f *HTTPFiles) coordinatorAddress(ctx context.Context, base string) (address.Address, error) {
	f.mu.Lock()
	a, ok := f.coords[base]
	f.mu.Unlock()
	if ok {
		return a, nil
	}
	var h struct {
		Coordinator string `json:"coordinator"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/health", nil)
	if err != nil {
		return address.Address{}, err
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return address.Address{}, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil {
		return address.Address{}, fmt.Errorf("coordinator health: %w", err)
	}
	a, err = address.Parse(h.Coordinator)
	if err != nil {
		return address.Address{}, err
	}
	f.mu.Lock()
	if f.coords == nil {
		f.coords = map[string]address.Address{}
	}
	f.coords[base] = a
	f.mu.Unlock()
	return a, nil
}

func (f *HTTPFiles) client() *http.Client {
	if f.HTTP != nil {
		return f.HTTP
	}
	return &http.Client{Timeout: 5 * time.Minute}
}

// Fetch implements FileFetcher, checking the content against its hash.
func (f *HTTPFiles) Fetch(ctx context.Context, jobID, hash string) ([]byte, error) {
	base := f.base()
	coord, err := f.coordinatorAddress(ctx, base)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	ms := now().UnixMilli()
	u := base + "/v1/miners/files/" + url.PathEscape(hash) + "?job_id=" + url.QueryEscape(jobID)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(minerproto.HeaderMiner, address.FromPubKey(f.Key.PublicKey()).String())
	req.Header.Set(minerproto.HeaderMinerTime, strconv.FormatInt(ms, 10))
	req.Header.Set(minerproto.HeaderMinerSig, hex.EncodeToString(f.Key.Sign(minerproto.FileDigest(coord, jobID, hash, ms))))
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("coordinator answered %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxInputBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInputBytes {
		return nil, errors.New("input file over the miner's limit")
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hash {
		return nil, fmt.Errorf("coordinator sent a file with sha256 %x", sum)
	}
	return data, nil
}

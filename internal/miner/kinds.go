package miner

import (
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
	"github.com/aitbc/aitbc/internal/minerproto"
)

// MaxInputBytes bounds an input file a miner fetches (the coordinator's
// per-file limit).
const MaxInputBytes = 64 << 20

// FileFetcher gets a job's input file by its hash.
type FileFetcher interface {
	Fetch(ctx context.Context, jobID, sha256 string) ([]byte, error)
}

// KindRunner runs data-processing and training jobs (package jobkind)
// itself and hands every other job to Next. Models adds the kinds' model
// names to Next's, so the coordinator routes those jobs here.
type KindRunner struct {
	Next    Runner
	Files   FileFetcher
	Workers int // goroutines a training job uses (the weights do not depend on it)
}

// Name implements Runner.
func (k KindRunner) Name() string { return k.Next.Name() }

// Models implements Runner.
func (k KindRunner) Models(ctx context.Context) ([]string, error) {
	ms, err := k.Next.Models(ctx)
	if err != nil {
		return nil, err
	}
	return append(ms, jobkind.Models...), nil
}

// Run implements Runner. A job whose spec or input is wrong can never
// succeed on any miner: it fails with ErrBadJob. A file that cannot be
// fetched now may be retried elsewhere.
func (k KindRunner) Run(ctx context.Context, job *minerproto.Job, onToken func(string) error) (Output, error) {
	if !jobkind.IsKindModel(job.Model) {
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
	return Output{Text: res.Text, TokensIn: 0, TokensOut: res.Units, FinishReason: "stop"}, nil
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

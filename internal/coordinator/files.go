package coordinator

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/blob"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// Files is the coordinator's store of job files (datasets, input data,
// results), content-addressed by SHA-256 (docs/JOBS.md). A nil Store turns
// the /v1/files routes off (they answer 503 files_disabled).
type Files struct {
	Store blob.Store
	// MaxFileBytes is the largest file a tenant may upload (64 MiB).
	MaxFileBytes int64
	// TenantQuota is the bytes one tenant may hold at once, uploads in
	// progress included (256 MiB). One piece of an upload is bounded by
	// the server's request body limit, so large files go up in resumable
	// pieces (Client.UploadFile sends 768 KiB at a time).
	TenantQuota int64
}

// The file limits' defaults (Files, and the config file's [files]).
const (
	DefaultMaxFileBytes = 64 << 20
	DefaultFileQuota    = 256 << 20
)

func (f *Files) defaults() {
	if f.MaxFileBytes == 0 {
		f.MaxFileBytes = DefaultMaxFileBytes
	}
	if f.TenantQuota == 0 {
		f.TenantQuota = DefaultFileQuota
	}
}

// Headers of a resumable upload: the offset of this piece and the length
// of the whole file (tus names them the same way).
const (
	HeaderUploadOffset = "Upload-Offset"
	HeaderUploadLength = "Upload-Length"
)

// Errors of the files routes (mapped in errors.go).
var (
	ErrFilesDisabled = errors.New("coordinator: file uploads are not enabled on this coordinator")
	ErrFileNotFound  = errors.New("coordinator: file not found")
	ErrFileTooLarge  = errors.New("coordinator: file too large")
	ErrFileInvalid   = errors.New("coordinator: invalid file upload")
	ErrUploadOffset  = errors.New("coordinator: upload offset mismatch")
	// ErrNoFittingHardware: no miner serving the job's model has the
	// hardware it requires (sched.NoResources).
	ErrNoFittingHardware = errors.New("coordinator: no miner has the hardware the job needs")
)

// needsOf is the hardware a job requires: a data-processing or training
// job's spec may name it (jobkind.Spec.Resources); a text job's is stored
// with the job (JobRequest.Needs). It parses a small JSON document, in
// memory, under the lock.
func needsOf(model, prompt string, stored *store.Needs) *sched.Resources {
	if !jobkind.IsKindModel(model) && !jobkind.IsImageModel(model) {
		return (*sched.Resources)(stored)
	}
	spec, err := jobkind.ParseSpec(prompt)
	if err != nil || spec.Resources == nil {
		return nil
	}
	r := sched.Resources(*spec.Resources)
	return &r
}

// fileErr maps a blob store error to the coordinator's sentinel.
func fileErr(err error) error {
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return errf(ErrFileNotFound, "%s", err.Error())
	case errors.Is(err, blob.ErrTooLarge):
		return errf(ErrFileTooLarge, "%s", err.Error())
	case errors.Is(err, blob.ErrQuota):
		return errf(ErrQuotaExceeded, "%s", err.Error())
	case errors.Is(err, blob.ErrOffset):
		return errf(ErrUploadOffset, "%s", err.Error())
	case errors.Is(err, blob.ErrInvalidHash), errors.Is(err, blob.ErrHashMismatch), errors.Is(err, blob.ErrEmpty):
		return errf(ErrFileInvalid, "%s", err.Error())
	}
	return fmt.Errorf("coordinator: files: %w", err)
}

func (s *Service) files() (*Files, error) {
	f := s.cfg.Files
	if f.Store == nil {
		return nil, errf(ErrFilesDisabled, "this coordinator keeps no files (start it with a files directory)")
	}
	f.defaults()
	return &f, nil
}

// UploadFile stores one piece of tenant t's file: total bytes in all, this
// piece at offset. A whole file in one piece is offset 0, total = its size.
func (s *Service) UploadFile(ctx context.Context, tenantID, hash string, total, offset int64, body io.Reader) (blob.Progress, error) {
	f, err := s.files()
	if err != nil {
		return blob.Progress{}, err
	}
	p, err := f.Store.Append(ctx, tenantID, hash, total, offset, body, f.MaxFileBytes, f.TenantQuota)
	if err != nil {
		return p, fileErr(err)
	}
	return p, nil
}

// FileStatus says how far tenant t's upload of hash has come.
func (s *Service) FileStatus(ctx context.Context, tenantID, hash string) (blob.Progress, error) {
	f, err := s.files()
	if err != nil {
		return blob.Progress{}, err
	}
	p, err := f.Store.Partial(ctx, tenantID, hash)
	if err != nil {
		return p, fileErr(err)
	}
	return p, nil
}

// OpenFile returns a file tenant t holds.
func (s *Service) OpenFile(ctx context.Context, tenantID, hash string) (io.ReadCloser, blob.Info, error) {
	f, err := s.files()
	if err != nil {
		return nil, blob.Info{}, err
	}
	rc, info, err := f.Store.Open(ctx, tenantID, hash)
	if err != nil {
		return nil, info, fileErr(err)
	}
	return rc, info, nil
}

func (s *Service) registerFileRoutes(handle func(string, http.HandlerFunc)) {
	handle("PUT /v1/files/{sha256}", s.hPutFile)
	handle("GET /v1/files/{sha256}", s.hGetFile)
	handle("GET /v1/files/{sha256}/status", s.hFileStatus)
	handle("GET /v1/miners/files/{sha256}", s.hMinerFile)
	handle("PUT /v1/miners/results/{sha256}", s.hMinerResult) // images.go
}

// minerFileSkew is how far a miner's signed time may be from the
// coordinator's: a captured request is useless after it.
const minerFileSkew = 2 * time.Minute

// minerFileOwner checks a miner's signed request for file hash of job
// jobID and returns the tenant whose file it is: the miner must hold an
// open session, the job must be assigned to it now, and the job's spec
// must name the file.
func (s *Service) minerFileOwner(r *http.Request, jobID, hash string) (string, error) {
	model, prompt, tenant, err := s.minerJob(r, jobID, hash)
	if err != nil {
		return "", err
	}
	if !jobkind.IsKindModel(model) {
		return "", errf(ErrFileNotFound, "job %s has no input file", jobID)
	}
	spec, err := jobkind.ParseSpec(prompt)
	if err != nil || spec.Input.SHA256 != hash {
		return "", errf(ErrFileNotFound, "job %s does not name file %s", jobID, hash)
	}
	return tenant, nil
}

// minerJob checks a miner's signed request about job jobID (its headers
// sign minerproto.FileDigest over signed) and returns the job's model,
// prompt and tenant: the miner must hold an open session and the job must
// be assigned to it now.
func (s *Service) minerJob(r *http.Request, jobID, signed string) (model, prompt, tenant string, err error) {
	addr, err := address.Parse(r.Header.Get(minerproto.HeaderMiner))
	if err != nil {
		return "", "", "", errf(ErrUnauthorized, "%s must be the miner's address", minerproto.HeaderMiner)
	}
	ms, err := strconv.ParseInt(r.Header.Get(minerproto.HeaderMinerTime), 10, 64)
	if err != nil {
		return "", "", "", errf(ErrUnauthorized, "%s must be Unix milliseconds", minerproto.HeaderMinerTime)
	}
	if d := s.cfg.Now().Sub(time.UnixMilli(ms)); d > minerFileSkew || d < -minerFileSkew {
		return "", "", "", errf(ErrStaleSignature, "signed %s from the coordinator's clock", d.Round(time.Second))
	}
	sig, err := hex.DecodeString(r.Header.Get(minerproto.HeaderMinerSig))
	if err != nil {
		return "", "", "", errf(ErrInvalidSignature, "%s must be hex", minerproto.HeaderMinerSig)
	}
	s.mu.Lock()
	mc := s.miners[addr]
	var job *store.Job
	if lj := s.live[jobID]; lj != nil {
		job = lj.job
	}
	var pub ed25519.PublicKey
	var miner address.Address
	if mc != nil {
		pub = mc.pub
	}
	if job != nil {
		miner, prompt, model, tenant = job.Miner, job.Prompt, job.Model, job.TenantID
	}
	s.mu.Unlock()
	if pub == nil {
		return "", "", "", errf(ErrUnauthorized, "miner %s has no open session with this coordinator", addr)
	}
	if !ed25519.Verify(pub, minerproto.FileDigest(s.cfg.Address, jobID, signed, ms), sig) {
		return "", "", "", errf(ErrInvalidSignature, "signature does not verify with miner %s's session key", addr)
	}
	if job == nil || miner != addr {
		return "", "", "", errf(ErrFileNotFound, "job %s is not assigned to miner %s", jobID, addr)
	}
	return model, prompt, tenant, nil
}

// hMinerFile is GET /v1/miners/files/{sha256}?job_id=J: a job's input
// file, to the miner running the job (signed headers, see minerproto).
func (s *Service) hMinerFile(w http.ResponseWriter, r *http.Request) {
	hash, jobID := r.PathValue("sha256"), r.URL.Query().Get("job_id")
	if !blob.ValidHash(hash) {
		s.fail(w, errf(ErrFileInvalid, "not a SHA-256: %q", trunc(hash)))
		return
	}
	tenant, err := s.minerFileOwner(r, jobID, hash)
	if err != nil {
		s.fail(w, err)
		return
	}
	rc, info, err := s.OpenFile(r.Context(), tenant, hash) // outside the lock: disk I/O
	if err != nil {
		s.fail(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Debug("miner file download cut", "sha256", hash, "job", jobID, "err", err)
	}
}

// checkKindJob refuses a data-processing or training job (package
// jobkind) whose spec does not read, whose work units are not its max
// tokens, or whose input file the tenant does not hold: a miner could
// never run it. It returns the job's type ("" for other jobs).
func (s *Service) checkKindJob(ctx context.Context, t *store.Tenant, r *JobRequest) (string, error) {
	if !jobkind.IsKindModel(r.Model) {
		return "", nil
	}
	spec, err := jobkind.ParseSpec(r.Prompt)
	switch {
	case err != nil || len(r.Messages) > 0:
		return "", errf(ErrUnsupportedJob, "a %s job's prompt is its JSON spec (aitbc ai-submit --type ... builds it): %v", r.Model, err)
	case spec.KindModel() != r.Model:
		return "", errf(ErrUnsupportedJob, "model %s does not run %q jobs", r.Model, spec.Type)
	case spec.Units < 1 || spec.Units != r.MaxTokens:
		return "", errf(ErrInvalidMaxTokens, "a %s job's max_tokens must be its declared work units (%d)", r.Model, spec.Units)
	}
	if spec.Resources != nil {
		if err := (*sched.Resources)(spec.Resources).Validate(); err != nil {
			return "", errf(ErrUnsupportedJob, "%v", err)
		}
	}
	f, err := s.files()
	if err != nil {
		return "", err
	}
	info, err := f.Store.Stat(ctx, t.ID, spec.Input.SHA256)
	if err != nil {
		return "", errf(ErrFileNotFound, "input file %s: upload it first (PUT /v1/files/%s)", spec.Input.SHA256, spec.Input.SHA256)
	}
	if info.Size != spec.Input.Bytes {
		return "", errf(ErrUnsupportedJob, "input file %s is %d bytes, the spec says %d", spec.Input.SHA256, info.Size, spec.Input.Bytes)
	}
	return spec.Type, nil
}

// pruneFiles drops job files past their retention (blob.Store.Prune).
func (s *Service) pruneFiles(ctx context.Context) {
	if s.cfg.Files.Store == nil {
		return
	}
	n, err := s.cfg.Files.Store.Prune(ctx, s.cfg.Now())
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("pruning job files failed", "err", err)
	case n > 0:
		s.log.Info("pruned job files", "files", n)
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func headerInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.Header.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errf(ErrFileInvalid, "%s must be a non-negative integer", name)
	}
	return n, nil
}

// hPutFile is PUT /v1/files/{sha256}: the body is the file's bytes, or
// one piece of them at Upload-Offset with Upload-Length the whole size.
// 201 when the file is whole (and its hash checked), 202 while pieces are
// missing.
func (s *Service) hPutFile(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
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
	if total <= 0 {
		s.fail(w, errf(ErrFileInvalid, "say the file's size: Content-Length, or Upload-Length for a piece"))
		return
	}
	p, err := s.UploadFile(r.Context(), t.ID, r.PathValue("sha256"), total, offset, r.Body)
	if errors.Is(err, httpx.ErrBodyTooLarge) || isMaxBytes(err) {
		s.fail(w, errf(ErrBodyTooLarge, "one piece may carry at most the server's body limit: send the file in pieces with %s", HeaderUploadOffset))
		return
	}
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
		s.log.Info("file stored", "tenant", t.ID, "sha256", p.Info.Hash, "size", p.Info.Size)
	}
	httpx.WriteJSON(w, status, p)
}

func isMaxBytes(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// hFileStatus is GET /v1/files/{sha256}/status: how much of an upload the
// coordinator has (resume from received), or the whole file's info.
func (s *Service) hFileStatus(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	p, err := s.FileStatus(r.Context(), t.ID, r.PathValue("sha256"))
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

// hGetFile is GET /v1/files/{sha256}: the file's bytes, to a tenant that
// holds it.
func (s *Service) hGetFile(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	rc, info, err := s.OpenFile(r.Context(), t.ID, r.PathValue("sha256"))
	if err != nil {
		s.fail(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.Header().Set("ETag", `"`+info.Hash+`"`)
	w.Header().Set("Expires", info.Expires.UTC().Format(http.TimeFormat))
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Debug("file download cut", "sha256", info.Hash, "err", err)
	}
}

// UploadFile sends the file at path to the coordinator in resumable pieces
// and returns its info; a file the coordinator already holds is not sent
// again, and an upload cut short resumes where the coordinator stopped.
func (c *Client) UploadFile(ctx context.Context, path string, chunk int64) (blob.Info, error) {
	if chunk <= 0 {
		chunk = 768 << 10
	}
	f, err := os.Open(path)
	if err != nil {
		return blob.Info{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return blob.Info{}, err
	}
	if !fi.Mode().IsRegular() {
		return blob.Info{}, fmt.Errorf("%s is not a regular file", path)
	}
	hash, err := hashReader(f)
	if err != nil {
		return blob.Info{}, fmt.Errorf("read %s: %w", path, err)
	}
	total := fi.Size()
	var offset int64
	var p blob.Progress
	if err := c.do(ctx, http.MethodGet, "/v1/files/"+hash+"/status", nil, &p); err == nil {
		if p.Done {
			return p.Info, c.putPiece(ctx, hash, total, 0, nil, 0, &p) // renews its retention
		}
		offset = p.Received
	} else if !errors.Is(err, ErrFileNotFound) {
		return blob.Info{}, err
	}
	for {
		n := min(chunk, total-offset)
		if err := c.putPiece(ctx, hash, total, offset, f, n, &p); err != nil {
			return blob.Info{}, err
		}
		if p.Done {
			return p.Info, nil
		}
		if p.Received <= offset {
			return blob.Info{}, fmt.Errorf("coordinator made no progress on %s at byte %d", path, offset)
		}
		offset = p.Received
	}
}

func (c *Client) putPiece(ctx context.Context, hash string, total, offset int64, f *os.File, n int64, out *blob.Progress) error {
	var body io.Reader = http.NoBody
	if f != nil && n > 0 {
		body = io.NewSectionReader(f, offset, n)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.BaseURL+"/v1/files/"+hash, body)
	if err != nil {
		return err
	}
	req.ContentLength = n
	req.Header.Set("X-API-Key", c.APIKey)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(HeaderUploadOffset, strconv.FormatInt(offset, 10))
	req.Header.Set(HeaderUploadLength, strconv.FormatInt(total, 10))
	return c.send(req, out)
}

// DownloadFile writes the file hash to w, checking its hash as it goes.
func (c *Client) DownloadFile(ctx context.Context, hash string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/v1/files/"+hash, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-API-Key", c.APIKey)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("coordinator at %s is not reachable: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, readAPIError(resp)
	}
	hw := newHashWriter(w)
	n, err := io.Copy(hw, resp.Body)
	if err != nil {
		return n, err
	}
	if got := hw.sum(); got != hash {
		return n, fmt.Errorf("%w: downloaded sha256 %s, asked for %s", ErrFileInvalid, got, hash)
	}
	return n, nil
}

// send does req and decodes a 2xx JSON answer into out.
func (c *Client) send(req *http.Request, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("coordinator at %s is not reachable: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readAPIError(resp)
	}
	return decodeLimited(resp.Body, out)
}

func hashReader(r io.Reader) (string, error) {
	hw := newHashWriter(io.Discard)
	if _, err := io.Copy(hw, r); err != nil {
		return "", err
	}
	return hw.sum(), nil
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
}

func newHashWriter(w io.Writer) *hashWriter { return &hashWriter{w: w, h: sha256.New()} }

func (h *hashWriter) Write(p []byte) (int, error) {
	h.h.Write(p)
	return h.w.Write(p)
}

func (h *hashWriter) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// readAPIError turns an error answer into the coordinator's error, as
// Client.do does for JSON calls.
func readAPIError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb httpx.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		return fromAPIError(&httpx.APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message})
	}
	return fromAPIError(&httpx.APIError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(data))})
}

func decodeLimited(r io.Reader, out any) error {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(data, out)
}

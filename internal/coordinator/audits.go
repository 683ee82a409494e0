package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/verify"
)

// Errors of the spot checks' route.
var (
	ErrNotAssignedVerifier = errors.New("coordinator: not the verifier the job's spot check awaits")
	ErrAuditsUnavailable   = errors.New("coordinator: no chain to check verifiers against")
)

// Headers of a verifier's signed request (GET /v1/audits/jobs/{id}).
const (
	HeaderVerifierKey  = "X-AITBC-Verifier-Key"  // hex ed25519 public key
	HeaderVerifierTime = "X-AITBC-Verifier-Time" // Unix milliseconds
	HeaderVerifierSig  = "X-AITBC-Verifier-Sig"  // hex signature of AuditDigest
)

// auditDomain prefixes what a verifier signs to fetch a job.
const auditDomain = "AITBC/audit-fetch/v1\x00"

// AuditDigest is what a verifier signs to fetch job id at ms (Unix
// milliseconds): a signature is good for that job, within the
// coordinator's clock skew.
func AuditDigest(id string, ms int64) []byte {
	h := sha256.New()
	h.Write([]byte(auditDomain))
	h.Write([]byte(id))
	h.Write(binary.BigEndian.AppendUint64([]byte{0}, uint64(ms)))
	return h.Sum(nil)
}

// AuditJob is what the verifier of a spot check needs to re-run a job:
// its input, its output, the miner's receipt and attestation.
type AuditJob struct {
	JobID        string              `json:"job_id"`
	Kind         string              `json:"kind"`
	Model        string              `json:"model"`
	Prompt       string              `json:"prompt,omitempty"`
	Messages     []store.ChatMessage `json:"messages,omitempty"`
	MaxTokens    int                 `json:"max_tokens"`
	Result       string              `json:"result"`
	FinishReason string              `json:"finish_reason,omitempty"`
	Receipt      []byte              `json:"receipt"`     // canonical CBOR (base64 in JSON)
	Attestation  []byte              `json:"attestation"` // canonical CBOR of the verify.Attestation
	// Sampling is what the customer asked for: an engine attestation
	// must claim the same parameters, from which the verifier replays
	// the sampler.
	Sampling *SamplingView `json:"sampling,omitempty"`
}

// SamplingView is a text job's sampling request as the coordinator
// stored it and sent it to the miner (0 top_p and seed: the engine's
// defaults). Not anchored on chain: the verifier takes the coordinator's
// word for it (docs/VERIFICATION.md, "Replaying the sampler").
type SamplingView struct {
	Temperature float32  `json:"temperature"`
	TopP        float32  `json:"top_p"`
	Seed        uint64   `json:"seed"`
	Stop        []string `json:"stop,omitempty"`
}

// samplingOf is j's sampling request; nil for a job that samples no text.
func samplingOf(j *store.Job) *SamplingView {
	if j.Kind != "completion" && j.Kind != "chat" {
		return nil
	}
	return &SamplingView{Temperature: j.Temperature, TopP: j.TopP, Seed: j.Seed, Stop: j.Stop}
}

func attestationMatches(hash, attestation []byte) bool {
	h := sha256.Sum256(attestation)
	return bytes.Equal(h[:], hash)
}

// attestedCounts reports whether an engine attestation lists as many
// prompt and output tokens as the receipt counts, and a backend's
// log-probability attestation at least all but one of its output tokens
// (verify.TokenCounts.FitLogprobs: a server may count a stop token it
// reports nothing for): the customer pays for the counts, which are otherwise the
// miner's own word. A malformed attestation is left to the spot check,
// which fails it.
func attestedCounts(attestation []byte, in, out uint64) bool {
	c := verify.TokenCounts{In: in, Out: out}
	if v, err := verify.AttestationVersion(attestation); err == nil && v == verify.LogprobVersion {
		a, err := verify.DecodeLogprobAttestation(attestation)
		return err != nil || c.FitLogprobs(a)
	}
	a, err := verify.DecodeAttestation(attestation)
	return err != nil || c.Fit(a)
}

// hAuditJob serves a job's prompt, result and attestation to the verifier
// its spot check awaits now, and to nobody else: the request is signed by
// the verifier's key, and the chain (GET /api/v1/audits/checks/{id}) says
// whom the check awaits. The verifier so sees the customer's prompt and
// output (docs/VERIFICATION.md, "What a verifier sees").
func (s *Service) hAuditJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if raw, err := hex.DecodeString(id); err != nil || len(raw) != 16 {
		s.fail(w, errf(ErrInvalidID, "job id must be 32 hex digits"))
		return
	}
	who, err := s.verifierOf(r, id)
	if err != nil {
		s.fail(w, err)
		return
	}
	job, err := s.auditJob(r.Context(), who, id)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, job)
}

// verifierOf checks a verifier's signed request for job id and returns
// its address.
func (s *Service) verifierOf(r *http.Request, id string) (address.Address, error) {
	pub, err := hex.DecodeString(r.Header.Get(HeaderVerifierKey))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return address.Address{}, errf(ErrUnauthorized, "%s must be the verifier's hex ed25519 public key", HeaderVerifierKey)
	}
	ms, err := strconv.ParseInt(r.Header.Get(HeaderVerifierTime), 10, 64)
	if err != nil {
		return address.Address{}, errf(ErrUnauthorized, "%s must be Unix milliseconds", HeaderVerifierTime)
	}
	if d := s.cfg.Now().Sub(time.UnixMilli(ms)); d > maxClockSkew || d < -maxClockSkew {
		return address.Address{}, errf(ErrStaleSignature, "signed %s from the coordinator's clock (limit %s)", d.Round(time.Second), maxClockSkew)
	}
	sig, err := hex.DecodeString(r.Header.Get(HeaderVerifierSig))
	if err != nil || !ed25519.Verify(pub, AuditDigest(id, ms), sig) {
		return address.Address{}, errf(ErrInvalidSignature, "%s does not verify with the key in %s", HeaderVerifierSig, HeaderVerifierKey)
	}
	return address.FromPubKey(pub), nil
}

// auditJob returns job id for verifier who, if the chain's check of the
// job awaits who's report now.
func (s *Service) auditJob(ctx context.Context, who address.Address, id string) (*AuditJob, error) {
	if s.cfg.Chain == nil {
		return nil, errf(ErrAuditsUnavailable, "this coordinator reads no node's REST API")
	}
	c, err := audits.QueryCheck(ctx, s.cfg.Chain, id)
	if err != nil {
		if errors.Is(err, audits.ErrCheckNotFound) || httpx.IsCode(err, audits.ErrCheckNotFound.Name) {
			return nil, errf(ErrNotAssignedVerifier, "job %s has no spot check", id)
		}
		return nil, err
	}
	var awaits string
	switch c.Status {
	case "assigned":
		awaits = c.Verifier
	case "rechecking":
		awaits = c.Second
	}
	if awaits == "" || awaits != who.String() {
		return nil, errf(ErrNotAssignedVerifier, "the check of job %s (%s) does not await %s", id, c.Status, who)
	}
	j, err := s.auditSnapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	return auditView(j), nil
}

// auditSnapshot is job id as this coordinator knows it now, of any
// tenant and ungated (the verifier sees the output the receipt signs):
// the in-memory state first, then the store. The store is written after
// the in-memory state (store.Writer, off the lock), so a job that has just
// completed may not be there yet; reading memory first answers the same
// job whether or not the write has landed.
func (s *Service) auditSnapshot(ctx context.Context, id string) (*store.Job, error) {
	s.mu.Lock()
	var j *store.Job
	if lj := s.live[id]; lj != nil {
		j = cloneJob(lj.job)
	} else if r := s.recent.get(id); r != nil {
		j = cloneJob(r)
	}
	s.mu.Unlock()
	if j != nil {
		return j, nil
	}
	j, err := s.cfg.Store.Job(ctx, id) // outside the lock: store I/O
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errf(ErrJobNotFound, "job %s is not in this coordinator's store", id)
		}
		return nil, err
	}
	return j, nil
}

func auditView(j *store.Job) *AuditJob {
	return &AuditJob{JobID: j.ID, Kind: j.Kind, Model: j.Model, Prompt: j.Prompt, Messages: j.Messages, MaxTokens: j.MaxTokens,
		Result: j.Result, FinishReason: j.FinishReason, Receipt: j.Receipt, Attestation: j.Attestation, Sampling: samplingOf(j)}
}

// AuditSigner is the verifier's key as the client needs it (a
// keystore.Key): its public key and ed25519 signatures.
type AuditSigner interface {
	PublicKey() ed25519.PublicKey
	Sign(msg []byte) []byte
}

// AuditJob fetches job id as the verifier whose key is k (the spot check
// must await its report now).
func (c *Client) AuditJob(ctx context.Context, k AuditSigner, id string) (AuditJob, error) {
	return c.auditJobAt(ctx, k, id, time.Now())
}

func (c *Client) auditJobAt(ctx context.Context, k AuditSigner, id string, now time.Time) (AuditJob, error) {
	ms := now.UnixMilli()
	h := http.Header{}
	h.Set(HeaderVerifierKey, hex.EncodeToString(k.PublicKey()))
	h.Set(HeaderVerifierTime, strconv.FormatInt(ms, 10))
	h.Set(HeaderVerifierSig, hex.EncodeToString(k.Sign(AuditDigest(id, ms))))
	var out AuditJob
	err := httpx.Do(ctx, c.HTTP, http.MethodGet, c.BaseURL+"/v1/audits/jobs/"+id, h, nil, &out)
	if err != nil {
		if api, ok := err.(*httpx.APIError); ok {
			return out, fromAPIError(api)
		}
		return out, err
	}
	return out, nil
}

// hAuditInput is GET /v1/audits/jobs/{id}/input: a data-processing or
// training job's input file, to the verifier its spot check awaits now
// (signed as for GET /v1/audits/jobs/{id}), which re-runs the job
// exactly (internal/audit.Reexecute).
func (s *Service) hAuditInput(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if raw, err := hex.DecodeString(id); err != nil || len(raw) != 16 {
		s.fail(w, errf(ErrInvalidID, "job id must be 32 hex digits"))
		return
	}
	who, err := s.verifierOf(r, id)
	if err != nil {
		s.fail(w, err)
		return
	}
	job, err := s.auditJob(r.Context(), who, id)
	if err != nil {
		s.fail(w, err)
		return
	}
	spec, err := jobkind.ParseSpec(job.Prompt)
	if !jobkind.IsKindModel(job.Model) || err != nil {
		s.fail(w, errf(ErrFileNotFound, "job %s (model %s) has no input file", id, job.Model))
		return
	}
	j, err := s.auditSnapshot(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	rc, info, err := s.OpenFile(r.Context(), j.TenantID, spec.Input.SHA256) // outside any lock: disk I/O
	if err != nil {
		s.fail(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Debug("audit input download cut", "job", id, "err", err)
	}
}

// MaxAuditInput bounds the input file a verifier downloads (the miner's
// own bound on a job's input).
const MaxAuditInput = 64 << 20

// AuditInput fetches a data-processing or training job's input file as
// the verifier whose key is k.
func (c *Client) AuditInput(ctx context.Context, k AuditSigner, id string) ([]byte, error) {
	return c.auditInputAt(ctx, k, id, time.Now())
}

func (c *Client) auditInputAt(ctx context.Context, k AuditSigner, id string, now time.Time) ([]byte, error) {
	ms := now.UnixMilli()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/v1/audits/jobs/"+id+"/input", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderVerifierKey, hex.EncodeToString(k.PublicKey()))
	req.Header.Set(HeaderVerifierTime, strconv.FormatInt(ms, 10))
	req.Header.Set(HeaderVerifierSig, hex.EncodeToString(k.Sign(AuditDigest(id, ms))))
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			return nil, fromAPIError(&httpx.APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message})
		}
		return nil, fmt.Errorf("coordinator: audit input of %s: HTTP %d", id, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAuditInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxAuditInput {
		return nil, fmt.Errorf("coordinator: audit input of %s over %d bytes", id, MaxAuditInput)
	}
	return b, nil
}

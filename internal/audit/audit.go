// Package audit is the verifier service: it watches the chain for the
// spot checks assigned to its key (the audits module), fetches each job's
// prompt, result and attestation from the job's coordinator, re-runs them
// with the built-in engine (internal/verify) — or, for training and
// data-processing jobs, re-executes them exactly on their input file
// (Reexecute) — and reports pass or fail on chain. `aitbc verifier start` runs it; the CLI and tests import it. It
// holds no state that matters: a restart asks the chain again.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/verify"
)

// Source hands the verifier a job to re-run: the coordinator's client
// (GET /v1/audits/jobs/{id}, signed with the verifier's key), and a data
// or training job's input file (GET /v1/audits/jobs/{id}/input).
type Source interface {
	AuditJob(ctx context.Context, k coordinator.AuditSigner, id string) (coordinator.AuditJob, error)
	AuditInput(ctx context.Context, k coordinator.AuditSigner, id string) ([]byte, error)
}

// ErrWrongData: the coordinator served a prompt or input file that is not
// the one the receipt and the job's spec commit to. That is no verdict on
// the miner (its coordinator, not it, is at fault); the check is retried.
var ErrWrongData = errors.New("audit: the coordinator's data does not match the receipt")

// Submitter signs and submits a message with the verifier's key (the
// wallet daemon, in the CLI), returning the transaction's hash.
type Submitter func(ctx context.Context, msg tx.Msg) (string, error)

// Checker re-runs a job and gives the verdict; Recheck (the built-in
// engine) in production. An error means no verdict (the verifier could
// not run the check: a missing model, a fetch failure), not a fail.
type Checker func(ctx context.Context, job coordinator.AuditJob) (Verdict, error)

// Verdict is a verifier's report on one job.
type Verdict struct {
	Pass     bool   `json:"pass"`
	Evidence []byte `json:"evidence"` // SHA-256 of the recomputation's report
	Reason   string `json:"reason,omitempty"`
}

// Config configures the service.
type Config struct {
	Key  coordinator.AuditSigner // the verifier's key (its address is registered on chain)
	Node module.Getter           // a node's REST API
	// Locate lists the coordinators to fetch each job from (Coordinators);
	// when nil, Source is the only one.
	Locate Locator
	Source Source
	Submit Submitter
	Check  Checker
	// Workers train a re-executed training job (1 when 0; the weights do
	// not depend on it).
	Workers int
	Poll    time.Duration // between passes (default 2 s)
	Logger  *slog.Logger
}

// Service is a running verifier.
type Service struct {
	cfg  Config
	addr address.Address
	// done remembers the jobs reported this run, so a report still in the
	// mempool is not sent twice; the chain's assigned list drops them
	// once committed.
	done map[string]time.Time
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Key == nil || cfg.Node == nil || (cfg.Source == nil && cfg.Locate == nil) || cfg.Submit == nil || cfg.Check == nil {
		return nil, errors.New("audit: key, node, source (or locator), submitter and checker are required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, addr: address.FromPubKey(cfg.Key.PublicKey()), done: map[string]time.Time{}}, nil
}

// Address is the verifier's chain address.
func (s *Service) Address() address.Address { return s.addr }

// Run checks and reports until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := s.Once(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("verifier pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Outcome is one check the service handled in a pass.
type Outcome struct {
	JobID   string  `json:"job_id"`
	Verdict Verdict `json:"verdict"`
	TxHash  string  `json:"tx_hash"`
	// Coordinator is the one whose copy of the job was checked.
	Coordinator string `json:"coordinator"`
}

// resendAfter is how long a report may stay uncommitted before it is
// sent again (a dropped transaction; a duplicate is refused on chain).
const resendAfter = time.Minute

// Once runs one pass: every check awaiting this verifier's report is
// fetched, re-run and reported. A check it cannot run is left for the next
// pass (its window is check_window_blocks).
func (s *Service) Once(ctx context.Context) ([]Outcome, error) {
	v, err := audits.QueryVerifier(ctx, s.cfg.Node, s.addr)
	if err != nil {
		return nil, fmt.Errorf("audit: verifier %s: %w", s.addr, err)
	}
	now := time.Now()
	var out []Outcome
	var errs []error
	for _, id := range v.Assigned {
		if at, ok := s.done[id]; ok && now.Sub(at) < resendAfter {
			continue
		}
		o, err := s.handle(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", id, err))
			continue
		}
		s.done[id] = now
		out = append(out, o)
	}
	for id, at := range s.done { // bounded: forget what the chain has long taken
		if now.Sub(at) > 10*resendAfter {
			delete(s.done, id)
		}
	}
	return out, errors.Join(errs...)
}

func (s *Service) handle(ctx context.Context, id string) (Outcome, error) {
	var c onChain
	var err error
	if c.job, err = jobs.QueryJob(ctx, s.cfg.Node, id); err != nil {
		return Outcome{}, fmt.Errorf("the job on chain: %w", err)
	}
	if c.check, err = audits.QueryCheck(ctx, s.cfg.Node, id); err != nil {
		return Outcome{}, fmt.Errorf("the check on chain: %w", err)
	}
	if c.job.ReceiptHash != "" {
		raw, _ := hex.DecodeString(id)
		pv, err := jobs.QueryPrivacy(ctx, s.cfg.Node, raw)
		if err != nil {
			return Outcome{}, fmt.Errorf("the job's privacy on chain: %w", err)
		}
		c.private = pv.Private
	}
	origins := []Origin{{URL: "coordinator", Source: s.cfg.Source}}
	if s.cfg.Locate != nil {
		if origins, err = s.cfg.Locate(ctx, c.job.Coordinator); err != nil {
			return Outcome{}, fmt.Errorf("coordinators: %w", err)
		}
		if len(origins) == 0 {
			return Outcome{}, fmt.Errorf("no coordinator to fetch the job from (the job's coordinator %s announced none)", c.job.Coordinator)
		}
	}
	// Each coordinator in turn: one that lacks the job, is down or serves
	// data the chain contradicts is passed over. The verdict rests only on
	// data the chain authenticates, so asking several cannot frame the
	// miner, and the first that serves the true job decides.
	var errs []error
	for _, o := range origins {
		verdict, err := s.checkFrom(ctx, o.Source, id, c)
		if err != nil {
			if ctx.Err() != nil {
				return Outcome{}, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", o.URL, err))
			if errors.Is(err, errLocal) {
				break // this verifier cannot run the check: another copy would not help
			}
			continue
		}
		raw, _ := hex.DecodeString(id)
		h, err := s.cfg.Submit(ctx, audits.NewReportMsg(raw, verdict.Pass, verdict.Evidence, verdict.Reason))
		if err != nil {
			return Outcome{}, fmt.Errorf("report: %w", err)
		}
		s.cfg.Logger.Info("check reported", "job", id, "coordinator", o.URL, "pass", verdict.Pass, "reason", verdict.Reason, "tx", h)
		return Outcome{JobID: id, Verdict: verdict, TxHash: h, Coordinator: o.URL}, nil
	}
	return Outcome{}, errors.Join(errs...)
}

// errLocal marks a check the verifier itself could not run (a missing
// model, a failed re-run) on data the chain backs.
var errLocal = errors.New("audit: the verifier could not run the check")

// checkFrom fetches job id from src, authenticates it against the chain
// and re-runs it. An error is no verdict: the next coordinator is tried,
// unless it wraps errLocal.
func (s *Service) checkFrom(ctx context.Context, src Source, id string, c onChain) (Verdict, error) {
	job, err := src.AuditJob(ctx, s.cfg.Key, id)
	if err != nil {
		return Verdict{}, fmt.Errorf("fetch: %w", err)
	}
	if err := authenticate(id, &job, c); err != nil {
		return Verdict{}, err
	}
	if audits.Reexecutable(job.Model) {
		// Deterministic kinds are checked by running them again, not by
		// the engine's commitments (they carry no attestation).
		input, err := src.AuditInput(ctx, s.cfg.Key, id)
		if err != nil {
			return Verdict{}, fmt.Errorf("fetch input: %w", err)
		}
		v, err := Reexecute(ctx, job, input, s.cfg.Workers)
		if err != nil {
			if errors.Is(err, ErrWrongData) {
				return Verdict{}, fmt.Errorf("re-execute: %w", err) // another input file
			}
			return Verdict{}, fmt.Errorf("%w: re-execute: %w", errLocal, err)
		}
		return v, nil
	}
	v, err := s.cfg.Check(ctx, job)
	if errors.Is(err, ErrWrongData) {
		return Verdict{}, err // the coordinator's word against the miner's: the next one is tried
	}
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: %w", errLocal, err)
	}
	return v, nil
}

// FirstFormatStop is the reason Recheck fails a version 1 engine
// attestation whose job says it stopped at eos before its limit.
const FirstFormatStop = "a version 1 attestation cannot show its stop was drawn; miners of this release attest version 3"

// Recheck is the built-in engine's Checker: it re-runs the job's prompt
// and output through the receipt's model (from home's registry) in one
// prefill and compares the attestation's commitments (verify.VerifyReceipt).
// A malformed or unsigned attestation, tokens that do not fit, another
// model file than the receipt's model, or commitments not reproduced are
// a fail, and so is a version 1 attestation of a job that stopped at eos
// (FirstFormatStop); a model the verifier lacks is no verdict.
func Recheck(home string, threads int) Checker {
	return func(ctx context.Context, job coordinator.AuditJob) (Verdict, error) {
		r, err := jobs.DecodeReceipt(job.Receipt)
		if err != nil {
			return fail(nil, "the job's receipt does not decode: "+err.Error()), nil
		}
		claim := verify.ReceiptClaim{AttestHash: r.AttestHash, PromptHash: r.PromptHash, Result: &job.Result, MaxTokens: job.MaxTokens,
			Counts: &verify.TokenCounts{In: r.TokensIn, Out: r.TokensOut}}
		if sp := job.Sampling; sp != nil {
			// What the customer asked, as the coordinator stored it: an
			// engine attestation must claim it (verify.ErrParams).
			claim.Sampling = &verify.JobSampling{Temperature: sp.Temperature, TopP: sp.TopP, Seed: sp.Seed, Stop: sp.Stop}
		}
		if len(job.Messages) == 0 {
			p := job.Prompt
			claim.Prompt = &p
		} else {
			// A chat job: the verifier rebuilds the prompt the miner's
			// engine ran from the messages (the model's chat template, or
			// the flattened conversation), bound by the receipt's prompt
			// hash (minerproto.PromptHash of the messages).
			claim.Messages = chatMessages(job.Messages)
		}
		rep, err := verify.VerifyReceipt(ctx, home, r.Model, claim, job.Attestation, threads, verify.DefaultTolerance)
		if errors.Is(err, verify.ErrParams) {
			// The chain anchors no sampling parameters: the coordinator's
			// word that the customer asked otherwise cannot fail a miner
			// (a lying coordinator would frame an honest one). The
			// recomputation and the replay with the parameters the miner
			// signed decide; if they pass, the disagreement is no verdict.
			claim.Sampling = nil
			rep, err = verify.VerifyReceipt(ctx, home, r.Model, claim, job.Attestation, threads, verify.DefaultTolerance)
			if err == nil && rep.Pass {
				return Verdict{}, fmt.Errorf("%w: the coordinator's sampling request differs from the miner's signed one, which the recomputation reproduces", ErrWrongData)
			}
		}
		ev := evidence(rep)
		switch {
		case err == nil && rep.Pass && rep.StopCheck == verify.StopByProbability:
			// A version 1 attestation has no sampling parameters, so its
			// stop cannot be replayed, only judged by probability, which
			// a truncation at a likely stop passes: a miner could choose
			// version 1 to escape the replay. No miner of this release
			// signs version 1 and the network has no older miners, so an
			// early stop in it is failed; one at its limit has no stop to
			// draw and passes (docs/VERIFICATION.md).
			return fail(ev, FirstFormatStop), nil
		case err == nil && rep.Pass:
			return Verdict{Pass: true, Evidence: ev}, nil
		case err == nil:
			return fail(ev, "commitments not reproduced"), nil
		case errors.Is(err, verify.ErrMismatch), errors.Is(err, verify.ErrTokens), errors.Is(err, verify.ErrCommitment), errors.Is(err, verify.ErrModelMismatch):
			return fail(ev, err.Error()), nil
		}
		return Verdict{}, err
	}
}

// chatMessages are the coordinator's stored messages as the miner got
// them (same fields, same JSON: the prompt hash is over that JSON).
func chatMessages(in []store.ChatMessage) []minerproto.ChatMessage {
	out := make([]minerproto.ChatMessage, len(in))
	for i, m := range in {
		out[i] = minerproto.ChatMessage{Role: m.Role, Content: m.Content, Images: m.Images}
	}
	return out
}

func fail(ev []byte, reason string) Verdict {
	if len(reason) > audits.MaxReason {
		reason = reason[:audits.MaxReason]
	}
	for len(reason) > 0 && !utf8.ValidString(reason) { // a cut through a rune
		reason = reason[:len(reason)-1]
	}
	if ev == nil {
		h := sha256.Sum256([]byte(reason))
		ev = h[:]
	}
	return Verdict{Pass: false, Evidence: ev, Reason: reason}
}

// evidence is the SHA-256 of the recomputation's report: each chunk's
// statistics, which the verifier can show to back its claim.
func evidence(rep verify.Report) []byte {
	b, _ := json.Marshal(rep.Chunks)
	h := sha256.Sum256(b)
	return h[:]
}

// Reexecute checks a data-processing or training job (package jobkind:
// deterministic, so an honest result is reproduced byte for byte) by
// running it again on its input file. The output's SHA-256 must be the
// receipt's result hash and its work units the receipt's tokens out,
// else the job fails with the reason. A job whose spec does not parse or
// does not run on its input, yet was signed as done, fails too. A prompt
// or input that is not the one the receipt and spec commit to is no
// verdict (ErrWrongData: the coordinator's fault, not the miner's).
// Evidence is the SHA-256 of the re-executed output.
func Reexecute(ctx context.Context, job coordinator.AuditJob, input []byte, workers int) (Verdict, error) {
	r, err := jobs.DecodeReceipt(job.Receipt)
	if err != nil {
		return fail(nil, "the job's receipt does not decode: "+err.Error()), nil
	}
	if ph := minerproto.PromptHash(job.Prompt, nil); r.Model != job.Model || !bytes.Equal(ph[:], r.PromptHash) {
		return Verdict{}, fmt.Errorf("%w: model %s or prompt not the receipt's", ErrWrongData, job.Model)
	}
	spec, err := jobkind.ParseSpec(job.Prompt)
	if err != nil {
		return fail(nil, "the job's spec does not parse, yet a result was signed: "+err.Error()), nil
	}
	sum := sha256.Sum256(input)
	if hex.EncodeToString(sum[:]) != spec.Input.SHA256 {
		return Verdict{}, fmt.Errorf("%w: the input file's SHA-256 is %x, the spec's %s", ErrWrongData, sum, spec.Input.SHA256)
	}
	res, err := jobkind.Execute(ctx, spec, input, spec.Input.SHA256, max(workers, 1), nil)
	if err != nil {
		if ctx.Err() != nil {
			return Verdict{}, ctx.Err()
		}
		return fail(nil, "the job does not run on its input, yet a result was signed: "+err.Error()), nil
	}
	out := sha256.Sum256([]byte(res.Text))
	// The miner signed either the output itself (inline) or, when its
	// coordinator keeps files, a reference naming the output's SHA-256 and
	// size (jobkind.FileResult): both are determined by the output, so the
	// re-executed output must give one of the two.
	signed := bytes.Equal(out[:], r.ResultHash)
	if !signed {
		if ref, err := jobkind.NewFileResult(r.Model, spec, []byte(res.Text)); err == nil {
			rh := sha256.Sum256([]byte(ref))
			signed = bytes.Equal(rh[:], r.ResultHash)
		}
	}
	switch {
	case !signed:
		return fail(out[:], fmt.Sprintf("re-execution gives a result with SHA-256 %x (inline or as a stored file), which is not what the receipt signs (%x)", out, r.ResultHash)), nil
	case uint64(res.Units) != r.TokensOut:
		return fail(out[:], fmt.Sprintf("re-execution does %d work units, the receipt claims %d", res.Units, r.TokensOut)), nil
	}
	return Verdict{Pass: true, Evidence: out[:]}, nil
}

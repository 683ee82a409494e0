package coordinator

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// minerConn is an admitted miner session.
type minerConn struct {
	addr         address.Address
	pub          ed25519.PublicKey
	models       []string
	slots        int
	backend      string
	hardware     string
	tokensPerSec float64
	firstTokenMs float64        // moving average of dispatch → first streamed token; 0 until a first token is seen
	running      map[string]int // job id → attempt
	failures     uint64
	send         chan minerproto.Envelope // to the session's writer; closed when the session is dropped
	connected    time.Time
	vision       []string // models of models it accepts image inputs for (its hello)
}

func (m *minerConn) view(reg ChainMiner) *sched.Miner {
	return &sched.Miner{
		Address: m.addr, Models: m.models, PricePer1k: reg.PricePer1k, Slots: m.slots,
		Running: len(m.running), TokensPerSec: m.tokensPerSec, Settled: reg.JobsSettled,
		Failures: m.failures, Stake: reg.Stake, GPU: reg.GPU, GPUMemoryMB: reg.GPUMemoryMB, Vision: m.vision,
	}
}

// observeFirstToken folds the time from an attempt's dispatch to its
// first token into the miner's moving average (the first sample sets it).
func (m *minerConn) observeFirstToken(dispatched, now time.Time) {
	if dispatched.IsZero() || !now.After(dispatched) {
		return // dispatched before a restart (the time is not kept), or no time passed
	}
	ms := float64(now.Sub(dispatched)) / float64(time.Millisecond)
	if m.firstTokenMs == 0 {
		m.firstTokenMs = ms
	} else {
		m.firstTokenMs = 0.8*m.firstTokenMs + 0.2*ms
	}
}

// handle processes one message from a miner's session: each becomes a
// lifecycle event of the job it names (a message about an attempt that
// moved on is dropped by the lifecycle).
func (s *Service) handle(_ context.Context, mc *minerConn, e minerproto.Envelope) {
	if e.Type == minerproto.TypeResult {
		s.handleResult(mc, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lj := s.live[e.JobID]
	if lj == nil {
		return
	}
	ev := lifecycle.Event{Miner: mc.addr, Attempt: e.Attempt}
	switch e.Type {
	case minerproto.TypeAck:
		ev.Kind = lifecycle.Ack
	case minerproto.TypeReject:
		ev.Kind, ev.Why, ev.Exclude = lifecycle.Requeue, "miner declined: "+e.Reason, true
	case minerproto.TypeToken:
		ev.Kind = lifecycle.Token
		if !s.applyLocked(lj, ev) {
			return
		}
		now := s.cfg.Now()
		if lj.hub.token(e.Text, lifecycle.Released(*lj.job, now)) {
			s.metrics.firstToken.Observe(now.Sub(lj.job.Created).Seconds())
			mc.observeFirstToken(lj.dispatched, now)
		}
		return
	case minerproto.TypeFailed:
		if e.Retryable {
			ev.Kind, ev.Why, ev.Exclude = lifecycle.Requeue, "miner failed: "+e.Message, true
		} else {
			ev.Kind, ev.Why = lifecycle.Fail, e.Message
		}
	default:
		return
	}
	if s.applyLocked(lj, ev) && e.Type == minerproto.TypeFailed {
		mc.failures++ // its record: a declined job is no failure
	}
}

// handleResult checks a miner's result and receipt (outside the lock: a
// signature check is the slowest thing a message needs) and completes
// the job, or sends it elsewhere if the receipt is bad.
func (s *Service) handleResult(mc *minerConn, e minerproto.Envelope) {
	s.mu.Lock()
	lj := s.live[e.JobID]
	if lj == nil || lj.job.Miner != mc.addr || lj.job.Attempt != e.Attempt && e.Attempt != 0 {
		s.mu.Unlock()
		return // a late result of a job that moved on: the first valid result won
	}
	j := *lj.job
	s.mu.Unlock()

	err := s.checkReceipt(&j, mc, e)
	if err == nil {
		err = s.checkPrivateResult(&j, mc, e) // private.go
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if lj = s.live[e.JobID]; lj == nil {
		return
	}
	if err != nil {
		s.log.Warn("receipt rejected", "job", e.JobID, "miner", mc.addr.String(), "err", err)
		if s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Requeue, Miner: mc.addr, Attempt: j.Attempt, Why: "receipt rejected: " + err.Error(), Exclude: true}) {
			mc.failures++
		}
		return
	}
	now := s.cfg.Now()
	if !j.Started.IsZero() && e.TokensOut > 0 {
		rate := float64(e.TokensOut) / now.Sub(j.Started).Seconds()
		mc.tokensPerSec = 0.8*mc.tokensPerSec + 0.2*rate
	}
	if j.Private {
		lj.job.PrivateReceipt, lj.job.ZKBlinding = e.PrivateReceipt, e.ZKBlinding
	}
	s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Complete, Miner: mc.addr, Attempt: j.Attempt, Now: now,
		Result: lifecycle.Result{Text: e.Text, TokensIn: e.TokensIn, TokensOut: e.TokensOut, FinishReason: e.FinishReason, Receipt: e.Receipt, Attestation: e.Attestation}})
}

// checkReceipt verifies a miner's result before anything is paid: the
// receipt is signed by the session's key and describes exactly this job,
// this result text and the agreed price.
func (s *Service) checkReceipt(j *store.Job, mc *minerConn, e minerproto.Envelope) error {
	r, err := jobs.DecodeReceipt(e.Receipt)
	if err != nil {
		return err
	}
	if err := r.Verify(mc.pub); err != nil {
		return err
	}
	res := sha256.Sum256([]byte(e.Text))
	switch {
	case hex.EncodeToString(r.JobID) != j.ID:
		return fmt.Errorf("receipt is for job %x", r.JobID)
	case r.ChainID != s.chainID:
		return fmt.Errorf("receipt is for chain %q", r.ChainID)
	case string(r.Customer) != string(j.Customer[:]):
		return fmt.Errorf("receipt names another customer")
	case r.Model != j.Model:
		return fmt.Errorf("receipt names model %q", r.Model)
	case hex.EncodeToString(r.PromptHash) != j.PromptHash:
		return fmt.Errorf("receipt's prompt hash does not match the job")
	case string(r.ResultHash) != string(res[:]):
		return fmt.Errorf("receipt's result hash does not match the result text")
	case r.TokensOut != uint64(e.TokensOut) || r.TokensIn != uint64(e.TokensIn):
		return fmt.Errorf("receipt's token counts differ from the result")
	case len(r.AttestHash) > 0 && !attestationMatches(r.AttestHash, e.Attestation): // audits.go
		return fmt.Errorf("receipt's attestation hash does not match the attestation sent")
	case len(r.AttestHash) > 0 && !attestedCounts(e.Attestation, r.TokensIn, r.TokensOut): // audits.go
		return fmt.Errorf("receipt's token counts differ from the tokens its attestation lists")
	case r.TokensOut > uint64(j.MaxTokens):
		return fmt.Errorf("%d tokens out, job allows %d", r.TokensOut, j.MaxTokens)
	case r.Price != jobs.PriceFor(r.TokensOut, j.PricePer1k):
		return fmt.Errorf("receipt charges %s, %d tokens at %s per 1k is %s", r.Price, r.TokensOut, j.PricePer1k, jobs.PriceFor(r.TokensOut, j.PricePer1k))
	}
	return nil
}

// admit registers an authenticated miner session. It returns an error if
// the address is not an active registered miner with that key.
func (s *Service) admit(mc *minerConn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg, ok := s.registry[mc.addr]
	if !ok || reg.Status != "active" {
		return fmt.Errorf("%s is not an active miner on chain: `aitbc miner start` registers it with a stake", mc.addr)
	}
	if reg.PubKey != hex.EncodeToString(mc.pub) {
		return fmt.Errorf("%s is registered with another key", mc.addr)
	}
	if old := s.miners[mc.addr]; old != nil {
		s.dropLocked(old, "replaced by a new session")
	}
	mc.running = map[string]int{}
	mc.connected = s.cfg.Now()
	s.miners[mc.addr] = mc
	s.sampleUsageLocked()
	s.log.Info("miner connected", "miner", mc.addr.String(), "models", mc.models, "slots", mc.slots, "backend", mc.backend)
	s.poke()
	return nil
}

// drop ends a miner's session: its running jobs go to other miners.
func (s *Service) drop(mc *minerConn, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.miners[mc.addr] == mc {
		s.dropLocked(mc, why)
	}
}

// dropLocked removes mc (which must be the map's entry) and closes its
// send channel, which ends its session's writer.
func (s *Service) dropLocked(mc *minerConn, why string) {
	delete(s.miners, mc.addr)
	close(mc.send)
	s.sampleUsageLocked()
	for id, attempt := range mc.running {
		if lj := s.live[id]; lj != nil {
			s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Requeue, Miner: mc.addr, Attempt: attempt, Why: "miner lost: " + why})
		}
	}
	s.log.Info("miner disconnected", "miner", mc.addr.String(), "why", why)
}

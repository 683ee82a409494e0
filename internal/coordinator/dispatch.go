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
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
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
	running      map[string]int // job id → attempt
	failures     uint64
	send         chan minerproto.Envelope
	connected    time.Time
}

func (m *minerConn) view(reg miners.View) *sched.Miner {
	return &sched.Miner{
		Address: m.addr, Models: m.models, PricePer1k: reg.PricePer1k, Slots: m.slots,
		Running: len(m.running), TokensPerSec: m.tokensPerSec, Settled: reg.JobsSettled,
		Failures: m.failures, Stake: reg.Stake,
	}
}

func (s *Service) dispatchLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
			s.expireQueued(ctx)
		}
		s.dispatchOnce(ctx)
	}
}

// expireQueued ends the queued jobs whose TTL passed (the chain refunds
// any escrow by itself).
func (s *Service) expireQueued(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	for model, ids := range s.queue.byModel {
		rest := ids[:0]
		for _, id := range ids {
			lj := s.live[id]
			if lj == nil || lj.job.Status != store.StatusQueued {
				continue
			}
			if !now.Before(lj.job.Expires) {
				s.finishLocked(ctx, lj, store.StatusExpired, "no miner completed the job before its TTL; the escrow is refunded on chain")
				continue
			}
			rest = append(rest, id)
		}
		s.queue.set(model, rest)
	}
}

// dispatchOnce places every queued job it can, oldest first per model. A
// model that no connected miner serves, or whose miners are all busy, is
// skipped without looking at its jobs.
func (s *Service) dispatchOnce(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue.len() == 0 {
		return
	}
	snap := s.snapshotLocked()
	free := map[string]int{} // model → free slots among miners serving it
	for _, m := range snap {
		for _, name := range m.Models {
			free[name] += max(m.Slots-m.Running, 0)
		}
	}
	for model, ids := range s.queue.byModel {
		if free[model] == 0 {
			continue
		}
		rest := ids[:0:0]
		for i, id := range ids {
			lj := s.live[id]
			if lj == nil || lj.job.Status != store.StatusQueued {
				continue
			}
			if free[model] == 0 {
				rest = append(rest, ids[i:]...)
				break
			}
			j := lj.job
			excl := excludedMiners(j)
			view := snap
			if len(s.allocs) > 0 {
				// Slots other tenants hold are not free for this job. A fresh
				// view counts this pass's placements too (they are in each
				// miner's running set).
				view = s.snapshotForLocked(j.TenantID)
			}
			m, np := s.sched.Place(sched.Job{Model: j.Model, MaxTokens: uint64(j.MaxTokens), MaxPrice: j.MaxPrice, Exclude: excl}, view)
			if np != nil {
				if np.Reason == sched.TooPricey {
					s.finishLocked(ctx, lj, store.StatusFailed, np.Error())
					continue
				}
				j.Error = np.Error() // why it waits, shown in status
				rest = append(rest, id)
				continue
			}
			if !s.dispatchLocked(ctx, lj, s.miners[m.Address]) {
				rest = append(rest, id)
				continue
			}
			for _, sm := range snap { // count the placement in the pass's shared view
				if sm.Address == m.Address {
					sm.Running++
				}
			}
			for _, name := range m.Models {
				free[name]--
			}
		}
		s.queue.set(model, rest)
	}
}

// waitReasonLocked says why a queued job waits, from the miners connected now.
func (s *Service) waitReasonLocked(j *store.Job) string {
	_, np := s.sched.Place(sched.Job{Model: j.Model, MaxTokens: uint64(j.MaxTokens), MaxPrice: j.MaxPrice, Exclude: excludedMiners(j)}, s.snapshotForLocked(j.TenantID))
	if np == nil {
		return "next in line for a miner"
	}
	return np.Error()
}

// excludedMiners are the miners that already failed j.
func excludedMiners(j *store.Job) map[address.Address]bool {
	excl := map[address.Address]bool{}
	for _, e := range j.Excluded {
		if a, err := address.Parse(e); err == nil {
			excl[a] = true
		}
	}
	return excl
}

// dispatchLocked sends lj to mc and starts its ack timer.
func (s *Service) dispatchLocked(ctx context.Context, lj *liveJob, mc *minerConn) bool {
	j := lj.job
	reg := s.registry[mc.addr]
	j.Attempt++
	j.Status, j.Miner, j.PricePer1k, j.Error, j.Updated = store.StatusDispatched, mc.addr, reg.PricePer1k, "", s.cfg.Now().UTC()
	msg := minerproto.Envelope{Type: minerproto.TypeJob, Job: &minerproto.Job{
		ID: j.ID, Attempt: j.Attempt, Model: j.Model, Prompt: j.Prompt, PromptHash: j.PromptHash,
		MaxTokens: j.MaxTokens, Temperature: j.Temperature, TopP: j.TopP, Seed: j.Seed, Stop: j.Stop,
		Customer: j.Customer.String(), PricePer1k: reg.PricePer1k.String(), ChainID: s.chainID,
	}}
	for _, m := range j.Messages {
		msg.Job.Messages = append(msg.Job.Messages, minerproto.ChatMessage(m))
	}
	select {
	case mc.send <- msg:
	default:
		j.Attempt--
		j.Status, j.Miner = store.StatusQueued, address.Address{}
		return false
	}
	mc.running[j.ID] = j.Attempt
	s.persistLocked(ctx, j)
	s.metrics.dispatches.Inc()
	lj.hub.publish(Event{Type: EventStatus, Status: j.Status, Miner: mc.addr.String()})
	attempt, miner := j.Attempt, mc.addr
	lj.ackTimer = time.AfterFunc(s.cfg.AckTimeout, func() { s.ackTimeout(j.ID, miner, attempt) })
	// The chain learns of the placement without holding the job up: the
	// coordinator's nonces keep create → assign → settle in order.
	if j.Payment == "deposit" && !j.OnChain {
		// Even if a create was sent before, it may have been lost with a
		// mempool (a restart): the writer asks the chain first.
		s.enqueueLocked(chainOp{kind: opCreate, jobID: j.ID})
	}
	s.enqueueLocked(chainOp{kind: opAssign, jobID: j.ID, miner: mc.addr, attempt: attempt})
	return true
}

func (s *Service) persistLocked(ctx context.Context, j *store.Job) {
	if err := s.cfg.Store.PutJob(ctx, j); err != nil {
		s.log.Error("store job", "job", j.ID, "err", err)
	}
}

func (s *Service) ackTimeout(id string, miner address.Address, attempt int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lj := s.live[id]
	if lj == nil || lj.job.Status != store.StatusDispatched || lj.job.Miner != miner || lj.job.Attempt != attempt {
		return
	}
	s.log.Warn("job not acknowledged", "job", id, "miner", miner.String())
	if mc := s.miners[miner]; mc != nil {
		mc.failures++
	}
	s.requeueLocked(context.Background(), lj, miner, "miner did not acknowledge the job in time", true)
}

// requeueLocked takes a job back from miner and queues it at the front;
// with exclude (the miner failed it) it never goes to that miner again.
func (s *Service) requeueLocked(ctx context.Context, lj *liveJob, miner address.Address, why string, exclude bool) {
	j := lj.job
	if mc := s.miners[miner]; mc != nil {
		delete(mc.running, j.ID)
	}
	if lj.ackTimer != nil {
		lj.ackTimer.Stop()
	}
	if exclude {
		j.Excluded = append(j.Excluded, miner.String())
	}
	if j.Attempt >= s.cfg.MaxAttempts {
		s.finishLocked(ctx, lj, store.StatusFailed, fmt.Sprintf("gave up after %d attempts; last: %s", j.Attempt, why))
		return
	}
	j.Status, j.Miner, j.Error, j.Updated = store.StatusQueued, address.Address{}, why, s.cfg.Now().UTC()
	lj.hub.reset()
	lj.hub.publish(Event{Type: EventStatus, Status: "requeued", Error: why})
	s.persistLocked(ctx, j)
	s.queue.pushFront(j.Model, j.ID)
	s.poke()
}

// finishLocked ends a job that will not be settled here.
func (s *Service) finishLocked(ctx context.Context, lj *liveJob, status, why string) {
	j := lj.job
	if mc := s.miners[j.Miner]; mc != nil {
		delete(mc.running, j.ID)
	}
	if lj.ackTimer != nil {
		lj.ackTimer.Stop()
	}
	j.Status, j.Error, j.Updated = status, why, s.cfg.Now().UTC()
	s.unreserveLocked(lj)
	s.persistLocked(ctx, j)
	lj.hub.publish(Event{Type: EventDone, Status: status, Error: why})
	delete(s.live, j.ID)
	s.recent.add(cloneJob(j))
	s.metrics.finished.WithLabelValues(status).Inc()
	s.log.Info("job finished", "job", j.ID, "status", status, "why", why)
}

// current returns the live job id if miner holds attempt of it.
func (s *Service) currentLocked(id string, miner address.Address, attempt int) *liveJob {
	lj := s.live[id]
	if lj == nil || lj.job.Miner != miner || (attempt != 0 && lj.job.Attempt != attempt) {
		return nil
	}
	if lj.job.Status != store.StatusDispatched && lj.job.Status != store.StatusRunning {
		return nil
	}
	return lj
}

// handle processes one message from a miner's session.
func (s *Service) handle(ctx context.Context, mc *minerConn, e minerproto.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Type {
	case minerproto.TypeStatus:
		return
	case minerproto.TypeAck:
		if lj := s.currentLocked(e.JobID, mc.addr, e.Attempt); lj != nil && lj.job.Status == store.StatusDispatched {
			lj.ackTimer.Stop()
			lj.job.Status, lj.job.Started, lj.job.Updated = store.StatusRunning, s.cfg.Now().UTC(), s.cfg.Now().UTC()
			s.persistLocked(ctx, lj.job)
			lj.hub.publish(Event{Type: EventStatus, Status: store.StatusRunning, Miner: mc.addr.String()})
		}
	case minerproto.TypeReject:
		if lj := s.currentLocked(e.JobID, mc.addr, e.Attempt); lj != nil {
			s.requeueLocked(ctx, lj, mc.addr, "miner declined: "+e.Reason, true)
		}
	case minerproto.TypeToken:
		if lj := s.currentLocked(e.JobID, mc.addr, e.Attempt); lj != nil {
			if lj.job.Status == store.StatusDispatched { // a token implies the ack
				lj.ackTimer.Stop()
				lj.job.Status, lj.job.Started = store.StatusRunning, s.cfg.Now().UTC()
			}
			if lj.hub.seq == 0 {
				s.metrics.firstToken.Observe(s.cfg.Now().Sub(lj.job.Created).Seconds())
			}
			lj.hub.publish(Event{Type: EventToken, Text: e.Text})
		}
	case minerproto.TypeFailed:
		if lj := s.currentLocked(e.JobID, mc.addr, e.Attempt); lj != nil {
			if e.Retryable {
				mc.failures++
				s.requeueLocked(ctx, lj, mc.addr, "miner failed: "+e.Message, true)
			} else {
				s.finishLocked(ctx, lj, store.StatusFailed, e.Message)
			}
		}
	case minerproto.TypeResult:
		lj := s.currentLocked(e.JobID, mc.addr, e.Attempt)
		if lj == nil {
			return // a late result of a job that moved on: the first valid result won
		}
		if err := s.checkReceipt(lj.job, mc, e); err != nil {
			mc.failures++
			s.log.Warn("receipt rejected", "job", e.JobID, "miner", mc.addr.String(), "err", err)
			s.requeueLocked(ctx, lj, mc.addr, "receipt rejected: "+err.Error(), true)
			return
		}
		j := lj.job
		delete(mc.running, j.ID)
		now := s.cfg.Now().UTC()
		if !j.Started.IsZero() && e.TokensOut > 0 {
			rate := float64(e.TokensOut) / now.Sub(j.Started).Seconds()
			mc.tokensPerSec = 0.8*mc.tokensPerSec + 0.2*rate
		}
		j.Status, j.Result, j.TokensIn, j.TokensOut, j.FinishReason, j.Receipt = store.StatusCompleted, e.Text, e.TokensIn, e.TokensOut, e.FinishReason, e.Receipt
		j.Completed, j.Updated, j.Error = now, now, ""
		s.persistLocked(ctx, j)
		if lj.hub.text.Len() == 0 && e.Text != "" { // the miner sent no tokens: stream the whole text
			lj.hub.publish(Event{Type: EventToken, Text: e.Text})
		}
		lj.hub.publish(Event{Type: EventStatus, Status: store.StatusCompleted})
		lj.settling = true
		s.enqueueLocked(chainOp{kind: opSettle, jobID: j.ID})
		s.poke()
	}
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
	for id := range mc.running {
		if lj := s.live[id]; lj != nil && lj.job.Miner == mc.addr && (lj.job.Status == store.StatusDispatched || lj.job.Status == store.StatusRunning) {
			s.requeueLocked(context.Background(), lj, mc.addr, "miner lost: "+why, false)
		}
	}
	s.log.Info("miner disconnected", "miner", mc.addr.String(), "why", why)
}

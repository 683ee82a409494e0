package coordinator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// Several coordinators on one shared store (store.Shared, PostgreSQL):
// each drives the active jobs it holds the lease of, renews those leases
// while it lives, and takes over the jobs whose lease expired because
// their coordinator died. A customer following a job another coordinator
// drives gets its status changes and result from the store, woken by the
// store's notifications (followRemote).

// sharedEveryDiv: leases are renewed, and expired ones looked for, every
// lease/sharedEveryDiv: three renewals fit in one lease, so one slow
// round trip does not lose a job.
const sharedEveryDiv = 3

// adoptBatch caps the jobs one pass takes over, so that a coordinator
// coming up beside a dead one's thousands of jobs spreads them over
// passes (and over the other coordinators that look too).
const adoptBatch = 256

// sharedLoop renews leases and takes over expired ones until ctx ends. It
// returns at once when the store is not shared.
func (s *Service) sharedLoop(ctx context.Context) {
	sh, ok := s.cfg.Store.(store.Shared)
	if !ok {
		return
	}
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		_ = sh.Listen(ctx, func(id, status string) { s.remoteChanged(ctx, id, status) })
	}()
	defer func() { <-listening }() // Run returns with nothing of it left running
	every := s.cfg.Lease / sharedEveryDiv
	if every <= 0 {
		every = store.DefaultLease / sharedEveryDiv
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.renewLeases(ctx, sh)
		s.adoptExpired(ctx, sh)
		s.balance(ctx, sh)
	wait:
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.balanceKick:
			// A miner's slot came free: offers it can serve are taken back
			// (or others' taken) now, not at the next tick.
			s.balance(ctx, sh)
			goto wait
		}
	}
}

// kickBalance asks the shared loop for a balance pass now (a slot came
// free). It never blocks.
func (s *Service) kickBalance() {
	select {
	case s.balanceKick <- struct{}{}:
	default:
	}
}

// renewLeases extends the leases of every live job and lets go of those
// another coordinator took over while this one was cut off.
func (s *Service) renewLeases(ctx context.Context, sh store.Shared) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.live))
	for id := range s.live {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	lost, err := sh.RenewLeases(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("renewing job leases failed", "jobs", len(ids), "err", err)
		}
		return
	}
	if len(lost) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range lost {
		if lj := s.live[id]; lj != nil {
			if lj.offered {
				s.metrics.offersTaken.WithLabelValues("by_other").Inc()
			} else {
				s.metrics.leases.WithLabelValues("expired").Inc()
			}
			s.letGoLocked(ctx, lj)
		}
	}
}

// letGoLocked forgets a job another coordinator drives now (it took it
// over, or took it on offer): its miner here is told to stop (the new
// coordinator dispatches it again), followers here get the rest of the
// job from the store, and nothing of it is written or sent from here any
// more (the store refuses the writes anyway).
func (s *Service) letGoLocked(ctx context.Context, lj *liveJob) {
	j := lj.job
	if lj.ackTimer != nil {
		lj.ackTimer.Stop()
	}
	if !j.Miner.IsZero() {
		if mc := s.miners[j.Miner]; mc != nil {
			if _, ok := mc.running[j.ID]; ok {
				delete(mc.running, j.ID)
				s.tellMinerLocked(j.Miner, minerproto.Envelope{Type: minerproto.TypeCancel, JobID: j.ID, Attempt: j.Attempt, Reason: "taken over by another coordinator"})
			}
		}
	}
	s.dropReservationLocked(j) // its new coordinator reserves it
	s.stopRelayLocked(j.ID)    // its new coordinator relays its tokens
	if lj.hub.followed() {
		// Customers following the job here keep their stream: it goes on
		// from the store, as for any job another coordinator drives.
		go s.watchStore(ctx, j, s.storeReader(j.ID), hubEmitter(lj.hub))
	} else {
		// Nobody reads it (a later Follow reads the store): no watcher.
		lj.hub.done(Event{Type: EventDone, Status: j.Status, Code: "job_moved"})
	}
	delete(s.live, j.ID)
	if lj.offered {
		s.log.Info("job taken on offer by another coordinator", "job", j.ID)
	} else {
		s.log.Warn("job taken over by another coordinator (this one was cut off longer than a lease)", "job", j.ID, "status", j.Status)
	}
	s.poke()
}

// adoptExpired takes over jobs whose coordinator stopped renewing.
func (s *Service) adoptExpired(ctx context.Context, sh store.Shared) {
	got, err := sh.ClaimExpired(ctx, adoptBatch)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("taking over expired jobs failed", "err", err)
		}
		return
	}
	if len(got) == 0 {
		return
	}
	s.mu.Lock()
	for _, j := range got {
		s.adoptLocked(j)
	}
	s.mu.Unlock()
	s.metrics.leases.WithLabelValues("taken_over").Add(float64(len(got)))
	s.log.Info("took over jobs from a coordinator that stopped", "jobs", len(got))
	s.poke()
}

// claimSettlement asks the shared store whether this coordinator may send
// job id's settlement (it holds the lease); a store that is not shared
// always lets it. Called off the lock, from the chain writer.
func (s *Service) claimSettlement(ctx context.Context, id string) bool {
	sh, ok := s.cfg.Store.(store.Shared)
	if !ok {
		return true
	}
	err := sh.ClaimSettlement(ctx, id)
	if err == nil {
		return true
	}
	if errors.Is(err, store.ErrLeaseLost) {
		s.log.Info("settlement left to the coordinator that drives the job", "job", id, "err", err)
	} else {
		s.log.Warn("settlement guard", "job", id, "err", err)
	}
	return false
}

// remoteChanged is the store's notification that a job changed on some
// coordinator: followers of it here look again. A stream request
// (store.StreamRequest) is for the job's driver: it relays the job's
// tokens if it is this coordinator (relay.go).
func (s *Service) remoteChanged(ctx context.Context, id, status string) {
	if status == store.StreamRequest {
		s.startRelay(ctx, id)
		return
	}
	s.mu.Lock()
	ws := s.remote[id]
	delete(s.remote, id)
	s.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// remoteWait returns a channel closed at the next change of job id, and a
// function that stops waiting (a waiter that gave up must not stay in the
// map until a change that may never come).
func (s *Service) remoteWait(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	if s.remote == nil {
		s.remote = map[string][]chan struct{}{}
	}
	s.remote[id] = append(s.remote[id], ch)
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		ws := s.remote[id]
		if i := slices.Index(ws, ch); i >= 0 {
			ws = slices.Delete(ws, i, i+1)
		}
		if len(ws) == 0 {
			delete(s.remote, id)
		} else {
			s.remote[id] = ws
		}
	}
}

// remotePoll bounds how long a follower of another coordinator's job waits
// without a notification (one lost while the listening connection was
// down) before it reads the store anyway.
const remotePoll = 2 * time.Second

// followRemote follows a job another coordinator drives: status changes as
// the store records them, tokens as its driver relays them (relay.go),
// then the rest of the result and done. It returns nil when the store is
// not shared.
func (s *Service) followRemote(t *store.Tenant, j *store.Job) *Subscription {
	if _, ok := s.cfg.Store.(store.Shared); !ok {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Event, 16)
	go func() {
		defer close(out)
		s.metrics.remoteFollowers.Inc()
		defer s.metrics.remoteFollowers.Dec()
		s.watchStore(ctx, j, func(ctx context.Context) (*store.Job, error) { return s.Job(ctx, t, j.ID) },
			func(e Event) bool {
				select {
				case out <- e:
					return true
				case <-ctx.Done():
					return false
				}
			})
	}()
	return &Subscription{Job: j, Attempt: j.Attempt, Events: out, Cancel: cancel}
}

// storeReader reads job id from the store, its output gated.
func (s *Service) storeReader(id string) func(context.Context) (*store.Job, error) {
	return func(ctx context.Context) (*store.Job, error) {
		j, err := s.cfg.Store.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		return gate(j, s.cfg.Now()), nil
	}
}

// hubEmitter publishes watched events into a hub whose job moved away, so
// that its readers' streams go on.
func hubEmitter(h *hub) func(Event) bool {
	return func(e Event) bool {
		switch e.Type {
		case EventToken:
			h.mu.Lock()
			newer := e.Attempt > h.attempt
			h.mu.Unlock()
			if newer {
				h.restart(Event{Type: EventStatus, Status: StatusRequeued, Attempt: e.Attempt})
			}
			h.token(e.Text, true)
		case EventDone:
			h.done(e)
		case EventStatus:
			if e.Status == StatusRequeued { // the relayed tokens moved to a new attempt
				h.restart(e)
			} else {
				h.status(e)
			}
		default:
			h.status(e)
		}
		return true
	}
}

// watchStore follows job j in the store (woken by the store's
// notifications, or every remotePoll) and emits its status changes, the
// tokens its driver relays (asking it to, at the start, at each status
// change and after each quiet poll: a request can be lost, and a job can
// change driver), then, once its output is released, what the relayed
// tokens lack of the stored result, and done when it ends. Tokens go out
// in order, each once: a gap in the relayed ones stops their use, and the
// result fills in the rest; a result of another attempt than the tokens
// (or not beginning with them) restarts the text ("requeued").
// It returns when the job ended, emit returns false, or ctx ends.
func (s *Service) watchStore(ctx context.Context, j *store.Job, read func(context.Context) (*store.Job, error), emit func(Event) bool) {
	tr, relayed := s.cfg.Store.(tokenRelay)
	last, sentText := j.Status, false
	var attempt, seq int // the last token emitted
	var text strings.Builder
	gap := false
	ask := relayed
	var asked time.Time
	for ctx.Err() == nil {
		wake, unwait := s.remoteWait(j.ID)
		// Asked again every remotePoll, tokens flowing or not: the driver
		// stops relaying when the asks stop (relay.go, followerGone).
		if relayed && !sentText && time.Since(asked) >= remotePoll {
			ask = true
		}
		if ask {
			ask, asked = false, time.Now()
			if err := tr.RequestStream(ctx, j.ID); err != nil && ctx.Err() == nil {
				s.log.Debug("asking for a job's tokens failed", "job", j.ID, "err", err)
			}
		}
		cur, err := read(ctx)
		if err != nil {
			unwait()
			if ctx.Err() == nil {
				emit(Event{Type: EventDone, Status: last, Error: err.Error(), Code: "job_unavailable"})
			}
			return
		}
		if cur.Status != last {
			ask = relayed && cur.Active()
			st := cur.Status
			if st == store.StatusSettled && last != store.StatusCompleted {
				// Settled between two reads: it was completed first, as
				// a follower of the driving coordinator sees it.
				st = store.StatusCompleted
			}
			if (cur.Active() || st != cur.Status) && !emit(Event{Type: EventStatus, Status: st, Miner: addrOrZero(cur.Miner), Attempt: cur.Attempt}) {
				unwait()
				return
			}
		}
		last = cur.Status
		if relayed && !sentText && !gap {
			toks, err := tr.RelayedTokens(ctx, j.ID, attempt, seq)
			if err != nil && ctx.Err() == nil {
				s.log.Debug("reading relayed tokens failed", "job", j.ID, "err", err)
			}
			for _, t := range toks {
				if t.Attempt != attempt {
					if t.Seq != 1 {
						gap = true // the start of an attempt is gone: the result tells it
						break
					}
					if seq > 0 && !emit(Event{Type: EventStatus, Status: StatusRequeued, Attempt: t.Attempt}) {
						unwait()
						return
					}
					attempt, seq = t.Attempt, 0
					text.Reset()
				}
				if t.Seq != seq+1 {
					gap = true
					break
				}
				if !emit(Event{Type: EventToken, Text: t.Text, Seq: t.Seq, Attempt: t.Attempt}) {
					unwait()
					return
				}
				seq = t.Seq
				text.WriteString(t.Text)
			}
		}
		if !sentText && cur.Result != "" && (cur.Status == store.StatusCompleted || !cur.Active()) {
			sentText = true
			var evs []Event
			switch {
			case seq > 0 && attempt == cur.Attempt && strings.HasPrefix(cur.Result, text.String()):
				if rest := cur.Result[text.Len():]; rest != "" {
					evs = append(evs, Event{Type: EventToken, Text: rest, Seq: seq + 1, Attempt: attempt})
				}
			case seq > 0:
				evs = append(evs, Event{Type: EventStatus, Status: StatusRequeued, Attempt: cur.Attempt},
					Event{Type: EventToken, Text: cur.Result, Seq: 1, Attempt: cur.Attempt})
			default:
				evs = append(evs, Event{Type: EventToken, Text: cur.Result, Seq: 1, Attempt: cur.Attempt})
			}
			for _, e := range evs {
				if !emit(e) {
					unwait()
					return
				}
			}
		}
		if !cur.Active() {
			unwait()
			emit(Event{Type: EventDone, Status: cur.Status, Error: cur.Error, Code: cur.ErrorCode})
			return
		}
		select {
		case <-wake:
		case <-time.After(remotePoll):
			ask = relayed && !sentText
		case <-ctx.Done():
		}
		unwait()
	}
}

// fitsHere reports whether a miner connected here could ever take j (one
// busy now will free up): an offered job is taken only then, so that it
// does not fail here as too expensive while another coordinator's miners
// would run it.
func (s *Service) fitsHere(j *store.Job) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	prov, known := s.boundProviderLocked(j)
	if !known {
		return false
	}
	_, np := s.checker.Place(sched.Job{Model: j.Model, MaxTokens: uint64(j.MaxTokens), MaxPrice: j.MaxPrice, Exclude: excludedMiners(j), Tenant: j.TenantID,
		Provider: prov, ProviderMiners: s.servingLocked(prov), Vision: jobHasImages(j)}, s.snapshotLocked())
	return np == nil || np.Reason == sched.AllBusy
}

// balance lets the coordinators' miners serve each other's queues. Queued
// jobs of a model no miner here has a free slot for are offered; offers of
// models that have free slots here again are withdrawn (those another
// coordinator took meanwhile are let go at the next renewal); and where
// miners here have free slots beyond the local queue, jobs the other
// coordinators offered are taken.
func (s *Service) balance(ctx context.Context, sh store.Shared) {
	type modelNeed struct{ free, queued int }
	var offer, withdraw []string
	offering := map[string]bool{}
	needs := map[string]*modelNeed{}
	s.mu.Lock()
	for _, mc := range s.miners {
		free := max(0, mc.slots-len(mc.running))
		for _, m := range mc.models {
			if needs[m] == nil {
				needs[m] = &modelNeed{}
			}
			needs[m].free += free
		}
	}
	for model := range s.queue.byModel {
		ids := s.compactQueueLocked(model)
		n := needs[model]
		if n == nil || n.free == 0 {
			// No miner here serves the model: offer at once. All busy:
			// offer what has waited a whole pass already, so that a
			// moment's full house here does not send work away.
			for _, id := range ids {
				lj := s.live[id]
				if lj.busyPasses++; n != nil && lj.busyPasses < 2 {
					continue
				}
				lj.offered, lj.busyPasses = true, 0
				offer = append(offer, id)
				offering[id] = true
			}
			continue
		}
		n.queued += len(ids)
	}
	// Offers are taken back oldest first, as the queue would have run them.
	var offered []*liveJob
	for id, lj := range s.live {
		if n := needs[lj.job.Model]; lj.offered && !offering[id] && n != nil && n.free > n.queued {
			offered = append(offered, lj)
		}
	}
	slices.SortFunc(offered, func(a, b *liveJob) int {
		if c := a.job.Created.Compare(b.job.Created); c != 0 {
			return c
		}
		return strings.Compare(a.job.ID, b.job.ID)
	})
	for _, lj := range offered {
		if n := needs[lj.job.Model]; n.free > n.queued {
			withdraw = append(withdraw, lj.job.ID)
			n.queued++
		}
	}
	s.mu.Unlock()

	if len(offer) > 0 {
		if err := sh.Offer(ctx, offer); err != nil {
			s.log.Warn("offering jobs to the other coordinators failed", "jobs", len(offer), "err", err)
			withdraw = append(withdraw, offer...) // take them back here
		} else {
			s.metrics.offersMade.Add(float64(len(offer)))
		}
	}
	if len(withdraw) > 0 {
		kept, err := sh.Withdraw(ctx, withdraw)
		if err != nil {
			s.log.Warn("withdrawing job offers failed", "err", err)
		}
		s.mu.Lock()
		var back []*liveJob
		for _, id := range kept {
			if lj := s.live[id]; lj != nil && lj.offered {
				lj.offered = false
				if lj.job.Status == store.StatusQueued {
					back = append(back, lj)
				}
			}
		}
		// They waited longer than what is queued here now: they go first,
		// oldest first.
		slices.SortFunc(back, func(a, b *liveJob) int { return b.job.Created.Compare(a.job.Created) })
		for _, lj := range back {
			s.queue.pushFront(lj.job.Model, lj.job.ID)
		}
		s.mu.Unlock()
		if len(kept) > 0 {
			s.poke()
		}
	}
	for model, n := range needs {
		if n.free <= n.queued {
			continue
		}
		got, err := sh.ClaimOffered(ctx, model, n.free-n.queued, s.fitsHere)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("taking offered jobs failed", "model", model, "err", err)
			}
			continue
		}
		if len(got) == 0 {
			continue
		}
		s.mu.Lock()
		for _, j := range got {
			s.adoptLocked(j)
		}
		s.mu.Unlock()
		s.metrics.offersTaken.WithLabelValues("here").Add(float64(len(got)))
		s.log.Info("took jobs another coordinator had no miner for", "model", model, "jobs", len(got))
		s.poke()
	}
}

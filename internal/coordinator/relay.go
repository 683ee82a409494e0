package coordinator

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// Live tokens across coordinators. A customer following a job that
// another coordinator of a shared store drives asks that coordinator
// (store notification "<id> follow") to relay the job's tokens; the
// driver then follows the job's hub from its start, as a local follower
// would (so only released tokens go out, in order, a requeue included),
// and writes them to the store in batches with a notification; the
// follower's coordinator reads them in order (watchStore) and ends with
// the stored result, which fills whatever it missed.

// tokenRelay is what a shared store offers to relay tokens
// (store.Postgres).
type tokenRelay interface {
	RequestStream(ctx context.Context, id string) error
	RelayTokens(ctx context.Context, id string, toks []store.Token) error
	RelayedTokens(ctx context.Context, id string, attempt, seq int) ([]store.Token, error)
	DropRelayedTokens(ctx context.Context, id string) error
}

// relayBatch caps the tokens one store write carries: under load a relay
// writes what piled up since its last write in one statement.
const relayBatch = 256

// A follower asks for a job's tokens again every remotePoll while it
// follows (watchStore), tokens flowing or not; a relay that has heard no
// ask for followerGone stops: its followers left (the customer hung up,
// its coordinator died), and writing tokens no one reads costs the
// database a write per batch for the rest of the job. A follower that
// comes back asks again and a new relay writes the job's tokens from the
// start (rows already there are kept as they are).
const (
	followerGone     = 3 * remotePoll
	followerCheckGap = remotePoll
)

// startRelay relays job id's tokens to the store, if this coordinator
// drives the job and does not relay it already.
func (s *Service) startRelay(ctx context.Context, id string) {
	tr, ok := s.cfg.Store.(tokenRelay)
	if !ok {
		return
	}
	s.mu.Lock()
	lj := s.live[id]
	if r := s.relays[id]; r != nil {
		r.heard.Store(s.cfg.Now().UnixNano()) // a follower is still there
	}
	if lj == nil || s.relays[id] != nil {
		s.mu.Unlock()
		return
	}
	if s.relays == nil {
		s.relays = map[string]*relayRun{}
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &relayRun{cancel: cancel}
	r.heard.Store(s.cfg.Now().UnixNano())
	s.relays[id] = r
	h := lj.hub
	s.mu.Unlock()
	s.metrics.relaysStarted.Inc()
	go s.relay(rctx, tr, id, h, r)
}

// relayRun is one job's relay, so that an ending relay forgets itself and
// not a later one of the same job. heard is when a follower last asked
// for the job's tokens (unix nanoseconds of the coordinator's clock).
type relayRun struct {
	cancel context.CancelFunc
	heard  atomic.Int64
}

// followersLeft reports whether no follower asked for r's tokens within
// followerGone.
func (s *Service) followersLeft(r *relayRun) bool {
	return s.cfg.Now().Sub(time.Unix(0, r.heard.Load())) > followerGone
}

// stopRelayLocked stops relaying job id (it moved to another coordinator,
// which relays it from now on). Its tokens stay for the followers.
func (s *Service) stopRelayLocked(id string) {
	if r := s.relays[id]; r != nil {
		r.cancel()
		delete(s.relays, id)
	}
}

func (s *Service) relay(ctx context.Context, tr tokenRelay, id string, h *hub, r *relayRun) {
	events, stop := h.subscribe(0, false) // not a customer: a job moving away needs no watcher for it
	defer stop()
	defer r.cancel()
	check := time.NewTicker(followerCheckGap)
	defer check.Stop()
	closed, left := false, false
	for !closed && !left {
		var batch []store.Token
		add := func(e Event, ok bool) {
			if !ok {
				closed = true
			} else if e.Type == EventToken {
				batch = append(batch, store.Token{Attempt: e.Attempt, Seq: e.Seq, Text: e.Text})
			}
		}
		select {
		case e, ok := <-events:
			add(e, ok)
		case <-check.C:
			left = s.followersLeft(r)
		case <-ctx.Done():
			return
		}
	drain:
		for !closed && len(batch) < relayBatch {
			select {
			case e, ok := <-events:
				add(e, ok)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			if err := tr.RelayTokens(ctx, id, batch); err != nil && ctx.Err() == nil {
				// Followers then get these tokens with the result.
				s.log.Warn("relaying tokens failed", "job", id, "err", err)
			} else if err == nil {
				s.metrics.relayedTokens.Add(float64(len(batch)))
			}
		}
	}
	// The job ended (its followers end with the stored result), or its
	// followers left: the rows go either way.
	if left {
		s.log.Info("relay stopped: no follower asked for the job's tokens", "job", id, "for", followerGone)
	}
	s.mu.Lock()
	if s.relays[id] == r {
		delete(s.relays, id)
	}
	s.mu.Unlock()
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer dcancel()
	if err := tr.DropRelayedTokens(dctx, id); err != nil {
		s.log.Debug("dropping relayed tokens failed (a prune drops them)", "job", id, "err", err)
	}
}

package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/swarm"
)

// Split jobs (docs/DISTRIBUTED.md): a job whose model no connected miner
// serves whole, or whose customer asks for it (split: true), runs through
// a route of span servers found in the chain's agent records. The
// coordinator is the route's driver: it tokenizes the prompt, relays the
// hidden states from span to span (swarm.Pipeline: min-latency routing,
// bans doubling on failure, failover by replaying the session), streams
// each token to the customer as it would a miner's, and settles the job
// with the servers' stage receipts (jobs/settle_stages). It is its own
// "miner" in the job's lifecycle: the job is never assigned on chain.

// SplitModel is what the driver needs of a model: its layer count, its
// tokenizer and its stop tokens (the engine's model gives them).
type SplitModel struct {
	Layers int
	Encode func(prompt string) []int
	Piece  func(prev, id int) string // the text of token id after prev
	Stop   []int
}

// SplitConfig turns split jobs on (a nil Dir leaves them off).
type SplitConfig struct {
	Dir   swarm.Directory                      // the span servers: swarm.ChainPeers over the node
	Model func(name string) (SplitModel, bool) // the models the coordinator can tokenize
	// PricePer1k is what split inference costs per 1,000 output tokens,
	// shared by the stages by layers × tokens (DefaultSplitPrice).
	PricePer1k coin.Amount
	HTTP       *http.Client
	Bans       *swarm.Bans // shared by every split job (nil: one set per job)
}

// DefaultSplitPrice is SplitConfig.PricePer1k's default: 1 AITBC per
// 1,000 output tokens, the devnet miners' price.
const DefaultSplitPrice = coin.Unit

func (c SplitConfig) price() coin.Amount {
	if c.PricePer1k == 0 {
		return DefaultSplitPrice
	}
	return c.PricePer1k
}

// placeCheck is marketCheck with split jobs: it returns the job's max
// price and whether the job runs split. A job the customer did not ask
// to split runs split only when no miner serves its model whole and the
// span servers cover every layer.
func (s *Service) placeCheck(ctx context.Context, r *JobRequest) (coin.Amount, bool, error) {
	sp := s.cfg.Split
	if !r.Split {
		maxPrice, err := s.marketCheck(r)
		if err == nil || sp.Dir == nil || !errors.Is(err, ErrModelNotServed) && !errors.Is(err, ErrNoMiners) {
			return maxPrice, false, err
		}
		if _, ok := sp.Model(r.Model); !ok {
			return maxPrice, false, err
		}
	}
	if sp.Dir == nil {
		return 0, false, errf(ErrInvalidRequest, "this coordinator does not route split jobs")
	}
	m, ok := sp.Model(r.Model)
	switch {
	case !ok:
		return 0, false, errf(ErrModelNotServed, "model %q cannot be split here (its tokenizer is not known)", r.Model)
	case len(r.Messages) > 0:
		return 0, false, errf(ErrInvalidRequest, "a split job takes a prompt, not messages")
	case r.Temperature != nil && *r.Temperature != 0 || len(r.Stop) > 0:
		return 0, false, errf(ErrInvalidRequest, "a split job is greedy: no temperature and no stop strings")
	case r.ServiceID != "":
		return 0, false, errf(ErrInvalidRequest, "a split job runs under no marketplace service")
	}
	peers, err := sp.Dir.Peers(ctx, r.Model)
	if err != nil {
		return 0, false, fmt.Errorf("coordinator: span servers: %w", err)
	}
	if _, err := swarm.Route(r.Model, 0, m.Layers, peers, swarm.MinLatency, banned(sp.Bans)); err != nil {
		return 0, false, errf(ErrModelNotServed, "%v", err) // says which layers have no server
	}
	maxPrice := r.MaxPrice
	if maxPrice == 0 {
		maxPrice = s.params.MaxCost(jobs.PriceFor(uint64(r.MaxTokens), sp.price()))
	}
	return maxPrice, true, nil
}

func banned(b *swarm.Bans) func(string) bool {
	if b == nil {
		return nil
	}
	return b.Banned
}

// startSplitLocked places a split job on the coordinator itself and starts
// driving it.
func (s *Service) startSplitLocked(lj *liveJob) {
	if s.cfg.Split.Dir == nil || s.cfg.Split.Model == nil {
		// Recovered by a coordinator that routes no split jobs.
		s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Fail, Why: "this coordinator does not route split jobs"})
		return
	}
	ev := lifecycle.Event{Kind: lifecycle.Dispatch, Miner: s.cfg.Address, PricePer1k: s.cfg.Split.price(), Now: s.cfg.Now()}
	if !s.applyLocked(lj, ev) {
		return
	}
	lj.dispatched = ev.Now
	if j := lj.job; j.Payment == "deposit" && !j.OnChain && lj.createSent.IsZero() {
		s.sendCreateLocked(lj, false)
	}
	go s.runSplit(lj.job.ID, lj.job.Attempt)
}

var errSplitGone = errors.New("coordinator: the split job ended")

// runSplit drives one split job through the span servers and completes
// it with its stage settlement, or fails it.
func (s *Service) runSplit(id string, attempt int) {
	sp := s.cfg.Split
	s.mu.Lock()
	lj := s.live[id]
	if lj == nil {
		s.mu.Unlock()
		return
	}
	j := *lj.job
	s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Ack, Miner: s.cfg.Address, Attempt: attempt})
	s.mu.Unlock()
	fail := func(why string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if lj := s.live[id]; lj != nil {
			s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Fail, Miner: s.cfg.Address, Attempt: attempt, Why: why})
		}
	}
	m, ok := sp.Model(j.Model)
	if !ok {
		fail("model " + j.Model + " cannot be split here")
		return
	}
	// Bounded by the job's TTL, measured on the service's clock.
	ctx, cancel := context.WithTimeout(s.splitCtx, j.Expires.Sub(s.cfg.Now()))
	defer cancel()
	ids := m.Encode(j.Prompt)
	raw, _ := hex.DecodeString(j.ID)
	p := &swarm.Pipeline{HTTP: sp.HTTP, Dir: sp.Dir, Bans: sp.Bans, Mode: swarm.MinLatency, Log: s.log.With("job", id)}
	prev := ids[len(ids)-1]
	var text strings.Builder
	res, err := p.Generate(ctx, swarm.GenerateRequest{Model: j.Model, Layers: m.Layers, Prompt: ids, MaxTokens: j.MaxTokens, Stop: m.Stop,
		Job: raw, ChainID: s.chainID}, func(tok, _ int) error {
		piece := m.Piece(prev, tok)
		prev = tok
		text.WriteString(piece)
		s.mu.Lock()
		defer s.mu.Unlock()
		lj := s.live[id]
		if lj == nil || !s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Token, Miner: s.cfg.Address, Attempt: attempt}) {
			return errSplitGone
		}
		lj.hub.token(piece, lifecycle.Released(*lj.job, s.cfg.Now()))
		return nil
	})
	if err != nil {
		if s.splitCtx.Err() != nil {
			// The coordinator is stopping: the job stays as stored and a
			// restarted coordinator runs it again (docs/DISTRIBUTED.md).
			return
		}
		if !errors.Is(err, errSplitGone) {
			s.log.Warn("split job failed", "job", id, "err", err)
			fail("split inference: " + err.Error())
		}
		return
	}
	res64 := sha256.Sum256([]byte(text.String()))
	set := jobs.MsgSettleStages{JobID: raw, ResultHash: res64[:], TokensIn: uint64(len(ids)), TokensOut: uint64(len(res.Tokens)),
		Layers: uint32(m.Layers), PricePer1k: sp.price(), Route: uint32(res.RouteStages), Stages: res.Stages}
	// The chain would refuse what does not check: better to fail the job
	// now (its escrow is refunded at the TTL) than to send it.
	if err := set.Check(jobs.StageJob{ID: raw, ChainID: s.chainID, Model: j.Model, MaxTokens: uint64(j.MaxTokens)}); err != nil {
		fail("stage receipts: " + err.Error())
		return
	}
	b, err := tx.Marshal(set)
	if err != nil {
		fail(err.Error())
		return
	}
	finish := "length"
	if res.Stopped {
		finish = "stop"
	}
	s.log.Info("split job done", "job", id, "tokens", len(res.Tokens), "stages", len(res.Stages), "repairs", res.Repairs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if lj := s.live[id]; lj != nil {
		s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Complete, Miner: s.cfg.Address, Attempt: attempt, Now: s.cfg.Now(),
			Result: lifecycle.Result{Text: text.String(), TokensIn: len(ids), TokensOut: len(res.Tokens), FinishReason: finish, Receipt: b}})
	}
}

// settleMsg is a completed job's settlement: its miner's receipt, or a
// split job's stage settlement.
func settleMsg(j *store.Job) (*tx.Msg, error) {
	if j.Split {
		var set jobs.MsgSettleStages
		if err := tx.Unmarshal(j.Receipt, &set); err != nil {
			return nil, err
		}
		msg := jobs.NewSettleStagesMsg(set)
		return &msg, nil
	}
	r, err := jobs.DecodeReceipt(j.Receipt)
	if err != nil {
		return nil, err
	}
	msg := jobs.NewSettleMsg(*r)
	return &msg, nil
}

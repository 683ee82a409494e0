// Package coordinator is AITBC's off-chain job router. It accepts jobs from
// tenants (REST, WebSocket, OpenAI- and Ollama-compatible APIs), checks that
// each is paid for on chain, places it on a connected miner with the
// scheduler, relays streamed tokens, stores results, verifies the miner's
// signed receipt and settles the job on chain. Its state is in a Store, so
// a restarted coordinator re-drives everything it had not finished.
//
// See docs/COORDINATOR.md. Imported by the coordinator command and devnet.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/rpc"
)

// Chain is what the coordinator reads from a node: the chain's identity,
// and the modules' queries (jobs.QueryJob, miners.QueryAll, ...) through
// GetJSON. *rpc.Client satisfies it.
type Chain interface {
	module.Getter
	Chain(ctx context.Context) (rpc.ChainInfo, error)
}

// Sender signs messages with the coordinator's key and submits them,
// assigning nonces in order. A walletd.Service with the coordinator's
// wallet unlocked, wrapped by SenderFunc, is one.
type Sender interface {
	Send(ctx context.Context, msg tx.Msg) (txHash string, err error)
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, msg tx.Msg) (string, error)

// Send implements Sender.
func (f SenderFunc) Send(ctx context.Context, msg tx.Msg) (string, error) { return f(ctx, msg) }

// Config configures a coordinator.
type Config struct {
	Store    store.Store
	Chain    Chain
	Sender   Sender
	Address  address.Address // the coordinator's chain address (its Sender's key)
	Registry *prometheus.Registry
	Logger   *slog.Logger

	AckTimeout       time.Duration // a dispatched job not acked by then goes elsewhere (5 s)
	DefaultTTL       time.Duration // 900 s
	DefaultMaxTokens int           // 256
	MaxPromptBytes   int           // 64 KiB
	MaxAttempts      int           // dispatches before a job fails (5)
	RefreshEvery     time.Duration // miner registry and settlement follow-up (1 s)
	Now              func() time.Time
}

func (c *Config) defaults() {
	if c.AckTimeout == 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = 900 * time.Second
	}
	if c.DefaultMaxTokens == 0 {
		c.DefaultMaxTokens = 256
	}
	if c.MaxPromptBytes == 0 {
		c.MaxPromptBytes = 64 << 10
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
}

// Service is a running coordinator.
type Service struct {
	cfg     Config
	log     *slog.Logger
	chainID string
	params  jobs.Params
	sched   *sched.Scheduler
	metrics *metrics

	mu       sync.Mutex
	miners   map[address.Address]*minerConn  // connected, admitted miners
	registry map[address.Address]miners.View // on-chain registry, refreshed
	live     map[string]*liveJob             // every active job
	queue    *jobQueue                       // job ids waiting for a miner, per model
	reserved map[string]coin.Amount          // per tenant: deposit reserved by jobs not yet created on chain
	wake     chan struct{}

	chainOps chan chainOp
	started  time.Time
	routes   []string

	recent  recentJobs             // finished jobs, so polling clients do not hit the store
	allocs  map[string]*Allocation // tenant/agent → reserved slots
	samples []usageSample          // slot use every 10 s

	keysMu sync.RWMutex
	keys   map[string]*store.Tenant // API key hash → tenant, filled on first use
}

// liveJob is an active job and its stream.
type liveJob struct {
	job      *store.Job
	hub      *hub
	ackTimer *time.Timer
	settling bool // a settle tx is in flight
	reserved bool // its max price counts in reserved[tenant]
}

// New builds a coordinator over its store and chain. Call Run to start it.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.defaults()
	if cfg.Store == nil || cfg.Chain == nil || cfg.Sender == nil || cfg.Address.IsZero() {
		return nil, errors.New("coordinator: store, chain, sender and address are required")
	}
	ci, err := cfg.Chain.Chain(ctx)
	if err != nil {
		return nil, fmt.Errorf("coordinator: chain: %w", err)
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger, chainID: ci.ChainID, params: jobs.DefaultParams(),
		sched:    sched.New(jobs.DefaultParams(), uint64(cfg.Now().UnixNano())),
		miners:   map[address.Address]*minerConn{},
		registry: map[address.Address]miners.View{},
		live:     map[string]*liveJob{},
		queue:    newJobQueue(),
		reserved: map[string]coin.Amount{},
		wake:     make(chan struct{}, 1),
		keys:     map[string]*store.Tenant{},
		allocs:   map[string]*Allocation{},
		chainOps: make(chan chainOp, 4096),
		started:  cfg.Now(),
	}
	s.metrics = newMetrics(cfg.Registry, s)
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Address is the coordinator's chain address.
func (s *Service) Address() address.Address { return s.cfg.Address }

// ChainID is the chain the coordinator settles on.
func (s *Service) ChainID() string { return s.chainID }

// recover loads every active job from the store: queued and in-flight jobs
// are queued again (a miner that held one is gone with the old process),
// completed ones are settled by the follow-up loop.
func (s *Service) recover(ctx context.Context) error {
	active, err := s.cfg.Store.ActiveJobs(ctx)
	if err != nil {
		return fmt.Errorf("coordinator: recover: %w", err)
	}
	for _, j := range active {
		lj := &liveJob{job: j, hub: newHub()}
		s.reserveLocked(lj)
		switch j.Status {
		case store.StatusQueued, store.StatusDispatched, store.StatusRunning:
			j.Status, j.Miner = store.StatusQueued, address.Address{}
			s.queue.push(j.Model, j.ID)
		case store.StatusCompleted:
			lj.hub.publish(Event{Type: EventToken, Text: j.Result})
		}
		s.live[j.ID] = lj
	}
	if len(active) > 0 {
		s.log.Info("recovered jobs", "active", len(active), "queued", s.queue.len())
	}
	return nil
}

// Run drives dispatch, the chain writer and the follow-up loop until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); s.usageLoop(ctx) }()
	go func() { defer wg.Done(); s.dispatchLoop(ctx) }()
	go func() { defer wg.Done(); s.chainWriter(ctx) }()
	go func() { defer wg.Done(); s.followLoop(ctx) }()
	s.poke()
	wg.Wait()
	return nil
}

// reserveLocked counts a deposit job's max price against its tenant's
// deposit until the chain has created it.
func (s *Service) reserveLocked(lj *liveJob) {
	if lj.job.Payment == "deposit" && !lj.job.OnChain && !lj.reserved {
		s.reserved[lj.job.TenantID] += lj.job.MaxPrice
		lj.reserved = true
	}
}

// unreserveLocked stops counting it: it is on chain (the deposit itself
// fell) or finished without reaching the chain.
func (s *Service) unreserveLocked(lj *liveJob) {
	if lj.reserved {
		s.reserved[lj.job.TenantID] -= lj.job.MaxPrice
		if s.reserved[lj.job.TenantID] == 0 {
			delete(s.reserved, lj.job.TenantID)
		}
		lj.reserved = false
	}
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

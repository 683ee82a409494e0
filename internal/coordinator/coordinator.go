// Package coordinator is AITBC's off-chain job router. It accepts jobs from
// tenants (REST, WebSocket, OpenAI- and Ollama-compatible APIs), checks that
// each is paid for on chain, places it on a connected miner with the
// scheduler, relays streamed tokens, stores results, verifies the miner's
// signed receipt and settles the job on chain. Its state is in a Store, so
// a restarted coordinator re-drives everything it had not finished.
//
// The parts: package lifecycle is the job state machine (every status
// change goes through its Step, applied here by applyLocked); package
// sched places queued jobs (a pure plan this package applies); package
// chainwriter sends the coordinator's transactions and store.Writer
// persists job snapshots, both off the coordinator's lock, which guards
// memory only. The payment gate (lifecycle's windows) decides when a job's
// output may be shown; the hub holds the rest. The transports (http.go,
// compat.go, session.go) are thin layers over the Service's methods.
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
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/chainwriter"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

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
	Chain    Chain     // a node's REST client; used through FromRPC unless View is set
	View     ChainView // what the coordinator reads from the chain (overrides Chain)
	Sender   Sender
	Address  address.Address // the coordinator's chain address (its Sender's key)
	Registry *prometheus.Registry
	Logger   *slog.Logger

	AckTimeout       time.Duration // a dispatched job not acked by then goes elsewhere (5 s)
	DefaultTTL       time.Duration // 900 s
	DefaultMaxTokens int           // 256
	MaxPromptBytes   int           // 64 KiB
	MaxAttempts      int           // dispatches before a job fails (5)
	RefreshEvery     time.Duration // miner registry and chain follow-up (1 s)
	TickEvery        time.Duration // the dispatcher's periodic pass: overdue jobs, and placements nothing woke it for (1 s)
	// Margin is how long before a payment window closes, or a job's TTL
	// ends, the coordinator stops releasing its output: time for its own
	// transaction to land (30 s; at most a quarter of a job's TTL).
	Margin time.Duration
	Now    func() time.Time

	// Limits against abuse (guard.go; docs/SECURITY.md has each with its
	// default). Zero takes the default; a negative value turns it off.
	Limits Limits

	// Files keeps job files (datasets, results) by hash (files.go); a nil
	// Files.Store turns the /v1/files routes off.
	Files Files

	// Lease is the job lease of a shared store (store.Postgres): leases
	// are renewed every third of it, and expired ones taken over as often.
	// It should equal the store's PostgresOptions.Lease (0: its default).
	Lease time.Duration

	// OperatorKey opens the operator routes (GET /v1/admin/jobs: every
	// tenant's jobs); empty keeps them closed (admin.go).
	OperatorKey string

	// Split routes jobs through span servers (split.go); zero: off.
	Split SplitConfig
	// Prover proves private jobs' settlements (private.go); nil refuses
	// private jobs.
	Prover Prover
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
	if c.TickEvery == 0 {
		c.TickEvery = time.Second
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = time.Second
	}
	if c.Margin == 0 {
		c.Margin = 30 * time.Second
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
	if c.View == nil && c.Chain != nil {
		c.View = FromRPC(c.Chain)
	}
	c.Limits = c.Limits.withDefaults()
}

// Service is a running coordinator.
type Service struct {
	// splitCtx bounds the goroutines that drive split jobs: it ends when
	// Run returns, so a coordinator stopped in process (a devnet, a test)
	// leaves no job running on until its TTL.
	splitCtx  context.Context
	splitStop context.CancelFunc

	cfg          Config
	log          *slog.Logger
	view         ChainView
	chainID      string
	params       jobs.Params
	releaseDelay time.Duration
	limits       lifecycle.Limits
	sched        *sched.Scheduler // the dispatch loop's only
	metrics      *metrics
	writer       *store.Writer
	chain        *chainwriter.Writer

	// mu guards the coordinator's memory below. Nothing under it does I/O
	// or blocks: store writes go to writer, transactions to chain, miner
	// messages to a buffered channel without waiting.
	mu         sync.Mutex
	checker    *sched.Scheduler               // feasibility checks for Submit and wait reasons
	miners     map[address.Address]*minerConn // connected, admitted miners
	registry   map[address.Address]ChainMiner // on-chain registry, refreshed
	trust      trustView                      // miners' reputation and delegated stake, bound services' providers (services.go)
	live       map[string]*liveJob            // every active job
	submitting map[string]string              // ids being stored by Submit → tenant
	queue      *jobQueue                      // job ids waiting for a miner, per model
	reserved   map[string]*tenantReservations // tenant → what its deposit jobs hold
	followPass int
	wake       chan struct{}
	started    time.Time
	routes     []string

	recent  recentJobs             // finished jobs, so polling clients do not hit the store
	allocs  map[string]*Allocation // tenant/agent → reserved slots
	samples []usageSample          // slot use every 10 s

	keysMu sync.RWMutex
	keys   map[string]*cachedKey // API key hash → tenant, filled on first use

	guard *guard // rate limits, replay memory, pre-authentication slots (guard.go)

	remote      map[string][]chan struct{} // job id → followers here of a job another coordinator drives (shared.go)
	relays      map[string]*relayRun       // job id → relay of its tokens to followers on other coordinators (relay.go)
	balanceKick chan struct{}              // a slot came free: balance now (shared.go)
}

// liveJob is an active job and its stream.
type liveJob struct {
	job          *store.Job
	hub          *hub
	ackTimer     *time.Timer
	dispatched   time.Time // when the current attempt was sent to its miner
	assignSeen   bool      // the chain showed it assigned: no customer can cancel it any more
	resultStored bool      // the completed job is durably stored: its settlement may go out
	settling     bool      // a settle tx is in flight
	settleSent   time.Time // when
	createSent   time.Time // when its create_for was queued
	offered      bool      // offered to the other coordinators of a shared store: not dispatched here (shared.go)
	busyPasses   int       // balance passes it waited queued with every miner here busy
}

// reservation is a deposit job's max price, counted against its tenant's
// deposit until a deposit read shows the escrow taken from it.
type reservation struct {
	amount  coin.Amount
	created bool      // its create_for was seen committed ...
	height  int64     // ... in the state of this height (0: unknown)
	ended   time.Time // the job ended before its create_for was seen: it may still land until then (its TTL)
}

// New builds a coordinator over its store and chain. Call Run to start it.
func New(ctx context.Context, cfg Config) (*Service, error) {
	cfg.defaults()
	if cfg.Store == nil || cfg.View == nil || cfg.Sender == nil || cfg.Address.IsZero() {
		return nil, errors.New("coordinator: store, chain, sender and address are required")
	}
	p, err := cfg.View.Params(ctx)
	if err != nil {
		return nil, fmt.Errorf("coordinator: chain: %w", err)
	}
	seed := uint64(cfg.Now().UnixNano())
	splitCtx, splitStop := context.WithCancel(context.Background())
	s := &Service{
		splitCtx: splitCtx, splitStop: splitStop,
		cfg: cfg, log: cfg.Logger, view: cfg.View, chainID: p.ChainID, params: p.Jobs, releaseDelay: p.ReleaseDelay,
		limits:      lifecycle.Limits{MaxAttempts: cfg.MaxAttempts, Margin: cfg.Margin},
		sched:       sched.New(p.Jobs, seed),
		checker:     sched.New(p.Jobs, seed+1),
		writer:      store.NewWriter(cfg.Store, cfg.Logger),
		chain:       chainwriter.New(cfg.Sender, cfg.Logger),
		miners:      map[address.Address]*minerConn{},
		registry:    map[address.Address]ChainMiner{},
		live:        map[string]*liveJob{},
		submitting:  map[string]string{},
		queue:       newJobQueue(),
		reserved:    map[string]*tenantReservations{},
		wake:        make(chan struct{}, 1),
		balanceKick: make(chan struct{}, 1),
		keys:        map[string]*cachedKey{},
		allocs:      map[string]*Allocation{},
		started:     cfg.Now(),
	}
	s.metrics = newMetrics(cfg.Registry, s)
	s.guard = newGuard(cfg.Limits, cfg.Now)
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Address is the coordinator's chain address.
func (s *Service) Address() address.Address { return s.cfg.Address }

// ChainID is the chain the coordinator settles on.
func (s *Service) ChainID() string { return s.chainID }

// recover loads every active job from the store: jobs a miner held are
// queued again (the miner is gone with the old process), completed ones
// are settled by the follow-up loop.
func (s *Service) recover(ctx context.Context) error {
	active, err := s.cfg.Store.ActiveJobs(ctx)
	if err != nil {
		return fmt.Errorf("coordinator: recover: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range active {
		s.adoptLocked(j)
	}
	if len(active) > 0 {
		s.log.Info("recovered jobs", "active", len(active), "queued", s.queue.len())
	}
	return nil
}

// adoptLocked makes a stored active job live here: at start (recover), or
// when this coordinator takes over a job from one that died (shared.go).
// Jobs a miner held are queued again (the miner was the old process's),
// completed ones are settled by the follow-up loop.
func (s *Service) adoptLocked(j *store.Job) {
	if _, dup := s.live[j.ID]; dup {
		return
	}
	lj := &liveJob{job: j, hub: newHub(j.Attempt + 1), resultStored: j.Status == store.StatusCompleted}
	s.live[j.ID] = lj
	s.reserveLocked(j)
	switch j.Status {
	case store.StatusQueued:
		s.queue.push(j.Model, j.ID)
	case store.StatusDispatched, store.StatusRunning:
		s.applyLocked(lj, lifecycle.Event{Kind: lifecycle.Recover})
	case store.StatusCompleted:
		lj.hub.token(j.Result, lifecycle.Released(*j, s.cfg.Now()))
		lj.hub.status(Event{Type: EventStatus, Status: store.StatusCompleted, Attempt: j.Attempt})
	}
	if j.Payment == "deposit" && !j.OnChain && (j.Attempt > 0 || j.Status == store.StatusCompleted) {
		// It was dispatched, so its create_for was sent, and may have
		// been lost with a mempool: the writer asks the chain before
		// sending it again.
		s.sendCreateLocked(lj, true)
	}
	if lj.job.Split && lj.job.Status == store.StatusQueued {
		s.startSplitLocked(lj) // through span servers again, from the start (split.go)
	}
}

// Run drives dispatch, the writers and the follow-up loop until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){s.usageLoop, s.dispatchLoop, s.chain.Run, s.writer.Run, s.followLoop, s.pruneLoop, s.sharedLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	s.poke()
	wg.Wait()
	s.splitStop()
	return nil
}

// tenantReservations is what a tenant's deposit jobs hold against its
// deposit. Jobs not yet created on chain are summed as they come and go
// (every submission checks the sum: with thousands queued, adding them up
// each time made submissions slower the deeper the queue). The few whose
// create_for was seen, or that ended with one perhaps in flight, wait in
// closing until a deposit read reflects them or their TTL passes.
type tenantReservations struct {
	open    map[string]coin.Amount // job id → max price
	openSum coin.Amount
	closing map[string]reservation
}

// reservations returns tenant's reservations, creating them.
func (s *Service) reservations(tenant string) *tenantReservations {
	tr := s.reserved[tenant]
	if tr == nil {
		tr = &tenantReservations{open: map[string]coin.Amount{}, closing: map[string]reservation{}}
		s.reserved[tenant] = tr
	}
	return tr
}

// tidy forgets tenant's reservations when none is left.
func (s *Service) tidy(tenant string) {
	if tr := s.reserved[tenant]; tr != nil && len(tr.open) == 0 && len(tr.closing) == 0 {
		delete(s.reserved, tenant)
	}
}

// reserveLocked counts a deposit job's max price against its tenant's
// deposit until the chain has taken its escrow from the deposit.
func (s *Service) reserveLocked(j *store.Job) {
	if j.Payment != "deposit" || j.OnChain {
		return
	}
	tr := s.reservations(j.TenantID)
	if _, dup := tr.open[j.ID]; dup {
		return
	}
	tr.open[j.ID] = j.MaxPrice
	tr.openSum += j.MaxPrice
}

// closeLocked moves a job's reservation from open to closing as r.
func (s *Service) closeLocked(j *store.Job, r func(amount coin.Amount) reservation) {
	tr := s.reserved[j.TenantID]
	if tr == nil {
		return
	}
	amt, ok := tr.open[j.ID]
	if !ok {
		return
	}
	delete(tr.open, j.ID)
	tr.openSum -= amt
	tr.closing[j.ID] = r(amt)
}

// createdLocked notes that a deposit job's create_for was seen committed
// at height: its reservation ends once a deposit read is at least as new.
func (s *Service) createdLocked(j *store.Job, height int64) {
	s.closeLocked(j, func(amt coin.Amount) reservation { return reservation{amount: amt, created: true, height: height} })
	if tr := s.reserved[j.TenantID]; tr != nil {
		if r, ok := tr.closing[j.ID]; ok && !r.created {
			r.created, r.height = true, height
			tr.closing[j.ID] = r
		}
	}
}

// unreserveLocked ends a finished job's reservation, unless its escrow may
// be taken from the deposit: a create_for seen committed (the next deposit
// read that reflects it ends the reservation) or one sent and not seen (it
// may still land; the follow-up loop looks for it until the job's TTL).
func (s *Service) unreserveLocked(j *store.Job) {
	s.closeLocked(j, func(amt coin.Amount) reservation { return reservation{amount: amt, ended: j.Expires} })
}

// dropReservationLocked ends a reservation whose create_for can never land.
func (s *Service) dropReservationLocked(j *store.Job) {
	tr := s.reserved[j.TenantID]
	if tr == nil {
		return
	}
	if amt, ok := tr.open[j.ID]; ok {
		delete(tr.open, j.ID)
		tr.openSum -= amt
	}
	delete(tr.closing, j.ID)
	s.tidy(j.TenantID)
}

// reservedLocked is what tenant's jobs hold against a deposit read at
// height: jobs not yet created on chain, and jobs created in a state newer
// than the read (the read still counts their escrow in the deposit).
// Reservations the read already reflects are dropped.
func (s *Service) reservedLocked(tenant string, height int64) coin.Amount {
	tr := s.reserved[tenant]
	if tr == nil {
		return 0
	}
	sum := tr.openSum
	now := s.cfg.Now()
	for id, r := range tr.closing {
		if r.created && r.height <= height || !r.ended.IsZero() && !now.Before(r.ended) {
			delete(tr.closing, id)
			continue
		}
		sum += r.amount
	}
	s.tidy(tenant)
	return sum
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

package coordinator

import (
	"context"
	"net/http"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/ratelimit"
)

// Limits are the coordinator's limits against abuse: how often a client
// address may register and a tenant may write, how much a tenant may hold
// at once, what an allocation costs in deposit cover, and how much an
// unauthenticated miner connection may send. docs/SECURITY.md lists them
// with their defaults. Zero takes the default; a negative value turns a
// limit off.
type Limits struct {
	// RegisterRate is POST /v1/tenants per second from one client address
	// (0.2: one every 5 s) after a burst of RegisterBurst (5).
	RegisterRate  float64
	RegisterBurst int
	// WriteRate is write requests (submit, allocate, deallocate) per
	// second for one tenant (50) after a burst of WriteBurst (500).
	WriteRate  float64
	WriteBurst int
	// ListingRate is listings per second the coordinator signs and pays
	// the fee for on one tenant's behalf (POST /v1/services/register;
	// 10 an hour) after a burst of ListingBurst (10): without it a
	// tenant could make the coordinator pay a transaction fee per
	// request at the write rate.
	ListingRate  float64
	ListingBurst int
	// MaxActiveJobs is a tenant's jobs queued or running at once (1,000).
	MaxActiveJobs int
	// MaxActiveBytes is the prompt bytes of a tenant's active jobs
	// together (32 MiB): what a tenant may make the coordinator store and
	// hold in memory before its jobs finish.
	MaxActiveBytes int
	// MaxKeysPerTenant is the API keys registration gives one address (10).
	MaxKeysPerTenant int
	// MaxAllocations is a tenant's live allocations at once (16).
	MaxAllocations int
	// AllocPrice is the deposit cover an allocation needs per slot-hour
	// (1 AITBC): a tenant's allocations together may hold at most its
	// spendable deposit, less what its jobs reserve.
	AllocPrice coin.Amount
	// MaxPendingHellos is miner connections that have not authenticated
	// yet (64); more are answered 503 before the WebSocket upgrade.
	MaxPendingHellos int
	// MaxHelloBytes is the largest message before authentication (16 KiB).
	MaxHelloBytes int64
	// MaxMinerMessage is the largest message from an admitted miner (16 MiB).
	MaxMinerMessage int64
	// Retention is how long jobs that ended (settled, failed, expired) are
	// kept, with their results and receipts, counted from their creation
	// (30 days); the store is pruned every PruneEvery (1 h). Stores that
	// cannot prune keep everything.
	Retention  time.Duration
	PruneEvery time.Duration
}

// Defaults of Limits.
const (
	DefaultRegisterRate     = 0.2
	DefaultRegisterBurst    = 5
	DefaultWriteRate        = 50
	DefaultWriteBurst       = 500
	DefaultListingRate      = 10.0 / 3600
	DefaultListingBurst     = 10
	DefaultMaxActiveJobs    = 1000
	DefaultMaxActiveBytes   = 32 << 20
	DefaultMaxAllocations   = 16
	DefaultMaxKeysPerTenant = 10
	DefaultAllocPrice       = coin.Unit
	DefaultMaxPendingHellos = 64
	DefaultMaxHelloBytes    = 16 << 10
	DefaultMaxMinerMessage  = 16 << 20
	DefaultRetention        = 30 * 24 * time.Hour
	DefaultPruneEvery       = time.Hour
)

func (l Limits) withDefaults() Limits {
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defi := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	deff(&l.RegisterRate, DefaultRegisterRate)
	defi(&l.RegisterBurst, DefaultRegisterBurst)
	deff(&l.WriteRate, DefaultWriteRate)
	defi(&l.WriteBurst, DefaultWriteBurst)
	deff(&l.ListingRate, DefaultListingRate)
	defi(&l.ListingBurst, DefaultListingBurst)
	defi(&l.MaxActiveJobs, DefaultMaxActiveJobs)
	defi(&l.MaxActiveBytes, DefaultMaxActiveBytes)
	defi(&l.MaxAllocations, DefaultMaxAllocations)
	defi(&l.MaxKeysPerTenant, DefaultMaxKeysPerTenant)
	defi(&l.MaxPendingHellos, DefaultMaxPendingHellos)
	if l.AllocPrice == 0 {
		l.AllocPrice = DefaultAllocPrice
	}
	if l.MaxHelloBytes == 0 {
		l.MaxHelloBytes = DefaultMaxHelloBytes
	}
	if l.MaxMinerMessage == 0 {
		l.MaxMinerMessage = DefaultMaxMinerMessage
	}
	if l.Retention == 0 {
		l.Retention = DefaultRetention
	}
	if l.PruneEvery <= 0 {
		l.PruneEvery = DefaultPruneEvery
	}
	return l
}

// jobPruner is a store that can delete old jobs (store.SQLite).
type jobPruner interface {
	PruneJobs(ctx context.Context, before time.Time) (int, error)
}

// prune deletes jobs that ended more than Retention ago (by creation).
func (s *Service) prune(ctx context.Context) {
	s.pruneFiles(ctx) // files.go: job files past their retention
	p, ok := s.cfg.Store.(jobPruner)
	if !ok || s.cfg.Limits.Retention < 0 {
		return
	}
	n, err := p.PruneJobs(ctx, s.cfg.Now().Add(-s.cfg.Limits.Retention))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("pruning old jobs failed", "err", err)
	case n > 0:
		s.log.Info("pruned old jobs", "jobs", n, "retention", s.cfg.Limits.Retention)
	}
}

// pruneLoop prunes at start and every PruneEvery.
func (s *Service) pruneLoop(ctx context.Context) {
	s.prune(ctx)
	t := time.NewTicker(s.cfg.Limits.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.prune(ctx)
		}
	}
}

// guard holds the coordinator's limiters. Used registration signatures
// are in the store (Service.useRegistration), to survive restarts.
type guard struct {
	lim       Limits
	now       func() time.Time
	registers *ratelimit.Limiter // by client address
	writes    *ratelimit.Limiter // by tenant id
	listings  *ratelimit.Limiter // coordinator-paid listings, by tenant id
	hellos    chan struct{}      // a slot per unauthenticated miner connection (nil: no cap)
}

func newGuard(l Limits, now func() time.Time) *guard {
	g := &guard{lim: l, now: now}
	if l.RegisterRate > 0 {
		g.registers = ratelimit.New(ratelimit.Config{Rate: l.RegisterRate, Burst: l.RegisterBurst, Now: now})
	}
	if l.WriteRate > 0 {
		g.writes = ratelimit.New(ratelimit.Config{Rate: l.WriteRate, Burst: l.WriteBurst, Now: now})
	}
	if l.ListingRate > 0 {
		g.listings = ratelimit.New(ratelimit.Config{Rate: l.ListingRate, Burst: l.ListingBurst, Now: now})
	}
	if l.MaxPendingHellos > 0 {
		g.hellos = make(chan struct{}, l.MaxPendingHellos)
	}
	return g
}

// allow answers 429 rate_limited with Retry-After and returns false when
// key is over l's rate.
func allow(w http.ResponseWriter, l *ratelimit.Limiter, key, what string) bool {
	ok, wait := l.Allow(key)
	if !ok {
		httpx.WriteRateLimited(w, wait, what)
	}
	return ok
}

// enterHello takes a pre-authentication slot; false when all are taken.
func (g *guard) enterHello() bool {
	if g.hellos == nil {
		return true
	}
	select {
	case g.hellos <- struct{}{}:
		return true
	default:
		return false
	}
}

func (g *guard) leaveHello() {
	if g.hellos != nil {
		<-g.hellos
	}
}

// allocCost is the deposit cover of slots for d at the allocation price
// (rounded up to whole seconds).
func (l Limits) allocCost(slots int, d time.Duration) coin.Amount {
	if l.AllocPrice <= 0 || slots <= 0 || d <= 0 {
		return 0
	}
	secs := uint64((d + time.Second - 1) / time.Second)
	return l.AllocPrice.MulDiv(uint64(slots)*secs, 3600)
}

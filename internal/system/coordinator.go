package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/blob"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/walletd"
)

// CoordinatorConfig configures a coordinator.
type CoordinatorConfig struct {
	Listen string // API address, host:port
	Store  string // SQLite file, one coordinator at a time (it is locked beside it); or a postgres:// URL several share
	// FilesDir holds the job files tenants upload (docs/JOBS.md). Empty:
	// beside an SQLite store (<store>.files); with a postgres:// store in
	// the database itself, which every coordinator of the store shares
	// (or in a directory given here, one they all share). "off": no files.
	FilesDir string
	// Wallet signs the coordinator's chain transactions; it is unlocked at
	// start (its address is the coordinator's) and locked again at stop.
	Wallet   walletd.WalletSender
	Chain    coordinator.Chain    // nil: this system's node
	Registry *prometheus.Registry // its metrics, served at /metrics; nil: a new one
	Logger   *slog.Logger         // nil: discard
	// Limits are the API server's limits (zero: the defaults). Per API key
	// limits and tenant quotas are in Options.
	Limits httpx.Limits
	// Options are the coordinator's own settings (quotas, rate limits,
	// retention, session limits); zero fields take the defaults.
	Options coordinator.Config
	// Announce, when set, is the public URL and region the coordinator
	// announces on chain (the coordinators module) once it runs, so that
	// clients and miners given no coordinator find it.
	Announce *coordinator.Announcement
}

// Coordinator is a running coordinator.
type Coordinator struct {
	Service *coordinator.Service
	Store   store.Store
	addr    net.Addr
	svc     *service
}

// StartCoordinator locks and opens the store, binds the API address,
// unlocks the signing wallet, builds the coordinator (which re-queues the
// jobs its store holds), then runs its loops and serves its API. Stopping
// it shuts the API down and joins the loops and the miners' sessions
// before the store closes.
func (s *System) StartCoordinator(ctx context.Context, cfg CoordinatorConfig) (*Coordinator, error) {
	if s.Coordinator != nil {
		return nil, errors.New("system: a coordinator already runs in this system")
	}
	if cfg.Chain == nil && s.Node != nil && s.Node.Client() != nil {
		cfg.Chain = s.Node.Client()
	}
	if cfg.Chain == nil {
		return nil, errors.New("coordinator: no chain node (start one in this system or give its client)")
	}
	if cfg.Wallet.S == nil || cfg.Wallet.Name == "" {
		return nil, errors.New("coordinator: a signing wallet is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Announce != nil {
		if err := cfg.Announce.Check(); err != nil {
			return nil, fmt.Errorf("coordinator: announcement: %w", err)
		}
	}
	sv, err := s.begin("coordinator")
	if err != nil {
		return nil, err
	}
	shared := store.IsPostgresURL(cfg.Store)
	if !shared { // a PostgreSQL store is shared on purpose; an SQLite file takes one coordinator
		release, err := lockPath(cfg.Store+".lock", "coordinator store "+cfg.Store, "is a coordinator already running on it?")
		if err != nil {
			return nil, s.abort(sv, err)
		}
		sv.onClose(release)
	}
	ln, err := sv.listen(cfg.Listen, "coordinator")
	if err != nil {
		return nil, s.abort(sv, err)
	}
	w := cfg.Wallet
	info, err := w.S.Unlock(ctx, w.Name, w.Password, walletd.MaxUnlockTimeout)
	if err != nil {
		return nil, s.abort(sv, fmt.Errorf("coordinator: wallet %s: %w", w.Name, err))
	}
	sv.onClose(func() error {
		_, _ = w.S.Lock(context.Background(), w.Name)
		return nil
	})
	// On a shared store this coordinator's leases carry its host and API
	// address: stable across restarts, so a restarted coordinator takes
	// its own jobs back at once instead of after the lease.
	host, _ := os.Hostname()
	st, err := store.Open(ctx, cfg.Store, store.PostgresOptions{Owner: host + "/" + ln.Addr().String(), Lease: cfg.Options.Lease, Logger: cfg.Logger})
	if err != nil {
		return nil, s.abort(sv, err)
	}
	sv.onClose(st.Close)
	opts := cfg.Options
	if dir := filesDir(cfg); opts.Files.Store == nil && dir != "" {
		// Job files are content-addressed in a directory (docs/JOBS.md).
		if opts.Files.Store, err = blob.NewFS(dir, blob.DefaultRetention, nil); err != nil {
			return nil, s.abort(sv, err)
		}
	} else if pg, ok := st.(*store.Postgres); ok && opts.Files.Store == nil && cfg.FilesDir == "" {
		// A shared store keeps the job files in its database: no
		// directory for the coordinators to share.
		opts.Files.Store = pg.Files(blob.DefaultRetention, nil)
	}
	opts.Store, opts.Chain, opts.Sender, opts.Address = st, cfg.Chain, w, info.Address
	opts.Registry, opts.Logger = cfg.Registry, cfg.Logger
	c, err := coordinator.New(ctx, opts)
	if err != nil {
		return nil, s.abort(sv, err)
	}
	sv.goRun(c.Run)
	sv.serveHTTP(ln, c.Handler(), "coordinator", cfg.Logger, cfg.Limits)
	if a := cfg.Announce; a != nil {
		sv.goRun(func(ctx context.Context) error {
			return coordinator.AnnounceLoop(ctx, cfg.Chain, w, info.Address, *a, 3*time.Second, cfg.Logger)
		})
	}
	co := &Coordinator{Service: c, Store: st, addr: ln.Addr(), svc: sv}
	s.Coordinator = co
	return co, nil
}

// Addr is where the API listens.
func (c *Coordinator) Addr() net.Addr { return c.addr }

// URL is the API's base URL.
func (c *Coordinator) URL() string { return "http://" + c.addr.String() }

// filesDir is where a coordinator keeps job files in a directory, "" for
// none: beside an SQLite store by default; a shared (postgres://) store
// keeps them in its database unless a directory (one its coordinators all
// share) is given. Never a path made from the URL: it would name the
// database and its password.
func filesDir(cfg CoordinatorConfig) string {
	switch {
	case cfg.FilesDir == "off":
		return ""
	case cfg.FilesDir != "":
		return cfg.FilesDir
	case cfg.Store == ":memory:" || store.IsPostgresURL(cfg.Store):
		return ""
	}
	return cfg.Store + ".files"
}

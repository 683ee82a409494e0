// Package system is AITBC's composition root: the one place that builds
// the services from a configuration and wires them together — the chain
// node with its REST API, the wallet daemon, the coordinator and miners.
// The web pages, the exchange and the oracle join the same way: a
// XConfig, a StartX method that returns a running *X, a field in Config and
// in System.
//
// Every service has the same life:
//
//	start: bind its listeners first (a busy port fails before anything
//	       else is opened), open its stores, build it, start its goroutines;
//	run:   until its context ends (System.Close, or the service's Stop);
//	stop:  its context ends, its goroutines are joined (HTTP servers shut
//	       down, in-flight handlers and WebSocket sessions returned), then
//	       its stores close, in reverse order of opening.
//
// A System stops its services in the reverse order of their start, each
// fully stopped before the one started before it. A StartX that fails
// stops what it had begun and returns the error; the caller then closes
// the System, which stops the services already running. Nothing is left
// listening or open.
//
// Imported by the commands that run services (devnet, node start,
// coordinator start, miner start, wallet daemon), by internal/devnet, by
// the benchmarks and by tests. The service packages (coordinator, miner,
// walletd, …) and the CLI's other commands never import the chain's
// application or the node: only this package assembles them
// (boundaries_test.go holds that rule).
package system

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// Config describes a whole system. A nil part is not run in this process;
// parts that need another (the wallet daemon a node, the coordinator a
// node and a signer, a miner a coordinator) use the one started here
// unless their config names one elsewhere.
type Config struct {
	Log         *slog.Logger // the system's own messages; nil: discard
	Node        *NodeConfig
	Wallet      *WalletConfig
	Coordinator *CoordinatorConfig
	Miners      []MinerConfig
	Web         *WebConfig
	Exchange    *ExchangeConfig
}

// System is a set of running services. Start services from one goroutine
// and do not Close while a StartX runs; Errors, Close and a Miner's Stop
// may be called from any goroutine.
type System struct {
	Node        *Node        // nil unless StartNode ran
	Wallet      *Wallet      // nil unless StartWallet ran
	Coordinator *Coordinator // nil unless StartCoordinator ran
	Miners      []*Miner
	Web         *Web      // nil unless StartWeb ran
	Exchange    *Exchange // nil unless StartExchange ran

	log  *slog.Logger
	errs chan error

	mu       sync.Mutex
	services []*service // in start order
	closed   bool
}

// New returns an empty system; add services with the StartX methods and
// stop them all with Close.
func New(log *slog.Logger) *System {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &System{log: log, errs: make(chan error, 16)}
}

// Start builds and starts every part of cfg in order: node, wallet
// daemon, coordinator, miners, web pages. On error it stops what it had started and
// returns nil and the error.
func Start(ctx context.Context, cfg Config) (*System, error) {
	s := New(cfg.Log)
	if err := s.start(ctx, cfg); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *System) start(ctx context.Context, cfg Config) error {
	if cfg.Node != nil {
		if _, err := s.StartNode(ctx, *cfg.Node); err != nil {
			return err
		}
	}
	if cfg.Wallet != nil {
		if _, err := s.StartWallet(ctx, *cfg.Wallet); err != nil {
			return err
		}
	}
	if cfg.Coordinator != nil {
		if _, err := s.StartCoordinator(ctx, *cfg.Coordinator); err != nil {
			return err
		}
	}
	for _, mc := range cfg.Miners {
		if _, err := s.StartMiner(ctx, mc); err != nil {
			return err
		}
	}
	if cfg.Web != nil {
		if _, err := s.StartWeb(ctx, *cfg.Web); err != nil {
			return err
		}
	}
	if cfg.Exchange != nil {
		if _, err := s.StartExchange(ctx, *cfg.Exchange); err != nil {
			return err
		}
	}
	return nil
}

// Run starts cfg, calls ready (if not nil) once every part runs, and runs
// until ctx ends or a service fails; then it stops everything. It returns
// the start error, ready's error or the service's failure, with any error
// from stopping; nil after a clean stop.
func Run(ctx context.Context, cfg Config, ready func(*System) error) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	if ready != nil {
		if err := ready(s); err != nil {
			return errors.Join(err, s.Close())
		}
	}
	return s.Wait(ctx)
}

// Wait blocks until ctx ends or a service fails, then closes the system.
// It returns the failure (nil when ctx ended) joined with Close's error.
func (s *System) Wait(ctx context.Context) error {
	var failed error
	select {
	case <-ctx.Done():
	case failed = <-s.errs:
	}
	return errors.Join(failed, s.Close())
}

// Errors reports services that fail while they run (an HTTP server that
// stops serving, a miner that cannot register). Failures while stopping
// are returned by Close instead.
func (s *System) Errors() <-chan error { return s.errs }

// Close stops every service, newest first: each one's goroutines are
// joined before its stores close. It returns what went wrong while
// stopping. Safe to call more than once and on a partly started system.
func (s *System) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	svcs := s.services
	s.services = nil
	s.mu.Unlock()
	var errs []error
	for i := len(svcs) - 1; i >= 0; i-- {
		errs = append(errs, svcs[i].stop())
	}
	return errors.Join(errs...)
}

// report passes a running service's failure to Errors, dropping it when
// nobody has read the earlier ones.
func (s *System) report(err error) {
	select {
	case s.errs <- err:
	default:
		s.log.Error("service failed", "err", err)
	}
}

// begin registers a new service, so that Close stops it even if its start
// does not complete. It fails once the system is closed.
func (s *System) begin(name string) (*service, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("system: closed")
	}
	sv := newService(s, name)
	s.services = append(s.services, sv)
	return sv, nil
}

// abort stops a service whose start failed and forgets it; it returns
// err, joined with anything that went wrong while stopping.
func (s *System) abort(sv *service, err error) error {
	s.mu.Lock()
	for i, x := range s.services {
		if x == sv {
			s.services = append(s.services[:i], s.services[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if serr := sv.stop(); serr != nil {
		s.log.Warn("stopping after a failed start", "service", sv.name, "err", serr)
	}
	return err
}

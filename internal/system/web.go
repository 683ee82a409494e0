package system

import (
	"context"
	"errors"
	"net"

	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/web"
)

// WebConfig configures the web pages (explorer, marketplace, miner
// dashboard). Its nil sources are this system's: Node its node's REST
// API, Market the market module over that node, Coordinator its
// coordinator's API (or none), Wallets and Submitter its wallet daemon
// (or no sign-in).
type WebConfig struct {
	Listen string // host:port (127.0.0.1:8016)
	// Listener, when set, is an address already bound (Listen is then only
	// its name): StartWeb serves on it, and closes it if it fails.
	Listener net.Listener
	// Limits are the pages' server limits (zero: DefaultWebLimits).
	Limits httpx.Limits
	web.Config
}

// DefaultWebLimits are the pages' server limits: the defaults of every
// service, forms of at most 64 KiB (sign-in, Become a Provider), and a
// pace for posts from one address that a person filling forms never hits.
func DefaultWebLimits() httpx.Limits {
	return httpx.Limits{MaxBody: 64 << 10, WriteRate: 5, WriteBurst: 20}
}

// Web is the running web server.
type Web struct {
	Server *web.Server
	addr   net.Addr
	svc    *service
}

// StartWeb binds the pages' address, builds the server over this
// system's services (or those the config names) and serves it. Stopping
// it ends the live streams first, so that open pages do not hold the
// shutdown, then shuts the server down.
func (s *System) StartWeb(ctx context.Context, cfg WebConfig) (w *Web, err error) {
	if cfg.Listener != nil {
		defer func() {
			if err != nil {
				_ = cfg.Listener.Close()
			}
		}()
	}
	if s.Web != nil {
		return nil, errors.New("system: a web server already runs in this system")
	}
	wc := cfg.Config
	if wc.Node == nil && s.Node != nil && s.Node.Client() != nil {
		wc.Node = s.Node.Client()
	}
	if wc.Node == nil {
		return nil, errors.New("web: no chain node (start one in this system or give its client)")
	}
	if wc.Market == nil {
		// The market module runs on every node of this chain: the pages
		// read it over the same node's routes.
		wc.Market = web.ChainMarket{Node: wc.Node}
	}
	if wc.Coordinator == nil && s.Coordinator != nil {
		wc.Coordinator = web.CoordinatorClient{URL: s.Coordinator.URL()}
	}
	// The pages act for customers: they get the daemon without its
	// service wallets (walletd.Config.ServiceWallets).
	if wc.Wallets == nil && s.Wallet != nil {
		wc.Wallets = s.Wallet.Server.Customers()
	}
	if wc.Submitter == nil && s.Wallet != nil {
		wc.Submitter = s.Wallet.Server.Customers()
	}
	sv, err := s.begin("web")
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if cfg.Listener != nil {
		ln = cfg.Listener
		sv.onClose(func() error {
			_ = ln.Close() // already closed by Shutdown when it was served
			return nil
		})
	} else if ln, err = sv.listen(cfg.Listen, "web"); err != nil {
		return nil, s.abort(sv, err)
	}
	srv, err := web.New(wc)
	if err != nil {
		return nil, s.abort(sv, err)
	}
	sv.goRun(srv.Run)
	limits := cfg.Limits
	if limits.IsZero() {
		limits = DefaultWebLimits()
	}
	sv.serveHTTP(ln, srv.Handler(), "web", wc.Logger, limits)
	w = &Web{Server: srv, addr: ln.Addr(), svc: sv}
	s.Web = w
	return w, nil
}

// Addr is where the pages are served.
func (w *Web) Addr() net.Addr { return w.addr }

// URL is the pages' base URL.
func (w *Web) URL() string { return "http://" + w.addr.String() }

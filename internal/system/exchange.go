package system

import (
	"context"
	"errors"
	"net"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/exchange"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/walletd"
)

// ExchangeConfig configures the exchange API (port 8001). Its nil sources
// are this system's: Node its node's REST API, Wallets its wallet daemon
// (customers' wallets only; none: reads and sign-in only).
type ExchangeConfig struct {
	Listen   string       // host:port (127.0.0.1:8001)
	Listener net.Listener // an address already bound, as WebConfig's
	Limits   httpx.Limits // zero: DefaultWebLimits (small JSON bodies, paced writes)
	exchange.Config
	// Maker, when set, runs a market maker beside the API, signing with
	// MakerWallets (a devnet's own daemon, where its wallet is a service
	// wallet).
	Maker        *exchange.MakerConfig
	MakerWallets exchange.Wallets
	// SessionsPath is the SQLite file signed-in sessions are kept in, so
	// that a restart signs no one out ("": in memory only). Ignored when
	// Config.Sessions is set.
	SessionsPath string
}

// Exchange is the running exchange API.
type Exchange struct {
	Server *exchange.Server
	addr   net.Addr
}

// StartExchange binds the exchange API's address, builds the server over
// this system's node and wallet daemon (or those the config names) and
// serves it with its WebSocket feed.
func (s *System) StartExchange(ctx context.Context, cfg ExchangeConfig) (x *Exchange, err error) {
	if cfg.Listener != nil {
		defer func() {
			if err != nil {
				_ = cfg.Listener.Close()
			}
		}()
	}
	if s.Exchange != nil {
		return nil, errors.New("system: an exchange API already runs in this system")
	}
	xc := cfg.Config
	if xc.Node == nil && s.Node != nil && s.Node.Client() != nil {
		xc.Node = s.Node.Client()
	}
	if xc.Node == nil {
		return nil, errors.New("exchange: no chain node (start one in this system or give its client)")
	}
	if xc.Wallets == nil && s.Wallet != nil {
		xc.Wallets = customerWallets{s.Wallet.Server.Customers(), s.Wallet.Server.Service()}
	}
	sv, err := s.begin("exchange")
	if err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln != nil {
		sv.onClose(func() error { _ = ln.Close(); return nil })
	} else if ln, err = sv.listen(cfg.Listen, "exchange"); err != nil {
		return nil, s.abort(sv, err)
	}
	if xc.Sessions == nil && cfg.SessionsPath != "" {
		if xc.Sessions, err = exchange.OpenSessionStore(ctx, cfg.SessionsPath); err != nil {
			return nil, s.abort(sv, err)
		}
		sv.onClose(xc.Sessions.Close)
	}
	srv, err := exchange.NewServer(xc)
	if err != nil {
		return nil, s.abort(sv, err)
	}
	sv.goRun(func(ctx context.Context) error { srv.RunFeed(ctx); return nil })
	if cfg.Maker != nil {
		if cfg.MakerWallets == nil {
			return nil, s.abort(sv, errors.New("exchange: a market maker needs a wallet daemon to sign with"))
		}
		sv.goRun(exchange.NewMaker(xc.Node, cfg.MakerWallets, *cfg.Maker).Run)
	}
	limits := cfg.Limits
	if limits.IsZero() {
		limits = DefaultWebLimits()
	}
	sv.serveHTTP(ln, srv.Handler(), "exchange", xc.Log, limits)
	x = &Exchange{Server: srv, addr: ln.Addr()}
	s.Exchange = x
	return x, nil
}

// Addr is where the exchange API is served.
func (x *Exchange) Addr() net.Addr { return x.addr }

// URL is the exchange API's base URL.
func (x *Exchange) URL() string { return "http://" + x.addr.String() }

// customerWallets is the daemon's customer signer with the wallets'
// addresses: the exchange checks a wallet is the signed-in address
// before it asks the daemon to sign for it.
type customerWallets struct {
	walletd.CustomerSigner
	svc *walletd.Service
}

func (c customerWallets) Address(ctx context.Context, name string) (address.Address, error) {
	return c.svc.Address(ctx, name)
}

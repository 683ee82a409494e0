package system

import (
	"context"
	"errors"
	"net"

	"github.com/aitbc/aitbc/internal/walletd"
)

// WalletConfig configures the wallet daemon. A nil Node uses this
// system's node.
type WalletConfig struct {
	walletd.Config
}

// Wallet is a running wallet daemon.
type Wallet struct {
	Server *walletd.Server
	addr   net.Addr
	svc    *service
}

// StartWallet builds the wallet daemon, binds its address and serves it.
// Stopping it shuts the server down and locks every unlocked wallet.
func (s *System) StartWallet(ctx context.Context, cfg WalletConfig) (*Wallet, error) {
	if s.Wallet != nil {
		return nil, errors.New("system: a wallet daemon already runs in this system")
	}
	if cfg.Node == nil && s.Node != nil && s.Node.Client() != nil {
		cfg.Node = s.Node.Client()
	}
	sv, err := s.begin("wallet daemon")
	if err != nil {
		return nil, err
	}
	cfg.Limits = listenerLimits(cfg.Limits)
	srv, err := walletd.NewServer(cfg.Config)
	if err != nil {
		return nil, s.abort(sv, err)
	}
	addr, err := srv.Listen()
	if err != nil {
		return nil, s.abort(sv, err)
	}
	// Run serves on the listener Listen opened and closes it when the
	// service stops; it also wipes the keys held unlocked.
	sv.goRun(srv.Run)
	w := &Wallet{Server: srv, addr: addr, svc: sv}
	s.Wallet = w
	return w, nil
}

// Addr is where the daemon listens.
func (w *Wallet) Addr() net.Addr { return w.addr }

// URL is the daemon's base URL.
func (w *Wallet) URL() string { return "http://" + w.addr.String() }

// Service is the daemon's wallet service (keystore and signing), for
// services of the same process that sign through it.
func (w *Wallet) Service() *walletd.Service { return w.Server.Service() }

package devnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// The devnet hosts its providers (docs/MARKETPLACE.md, "A devnet hosts
// its providers"): when a wallet held by the devnet's wallet daemon lists
// a service and no miner serves it, the devnet runs a miner on the
// built-in engine for it — what a real provider does with `aitbc miner
// start --provider ADDR` and `aitbc market add-miner`. The miner's key is
// a wallet of its own in the devnet home (HostedMinerWallet), funded by
// genesis-ops with its stake and fees (HostedMinerFunds), so the
// provider's balance is only what its marketplace does; the devnet signs
// both halves of the consent, holding both keys. Config.NoHosting (aitbc
// devnet --host-providers=false) turns it off.

// HostedMinerFunds is what genesis-ops sends a hosted miner's wallet: the
// miner registry's minimum stake and 10 AITBC for its heartbeats' fees.
const HostedMinerFunds = 110 * coin.Unit

// hostedStake is the hosted miner's registration stake.
const hostedStake = 100 * coin.Unit

// hostEvery is how often the devnet looks for listings nobody serves;
// hosting a provider that failed (its wallet signs with another password)
// is tried again after hostRetry.
const (
	hostEvery = 500 * time.Millisecond
	hostRetry = 30 * time.Second
)

// HostedMinerWallet names the wallet of the miner a devnet runs for
// provider p (the address's last 12 characters: no seed's grep for a
// "<name>:" line matches it).
func HostedMinerWallet(p address.Address) string {
	s := p.String()
	return "devnet-host-" + s[len(s)-12:]
}

// hoster runs the hosted miners.
type hoster struct {
	d       *Devnet
	ks      *keystore.Store
	builtin backend.Backend
	running map[address.Address]bool      // providers whose miner runs in this process
	failed  map[address.Address]time.Time // when hosting a provider last failed: retried after hostRetry
	cancel  context.CancelFunc
	done    chan struct{}

	mu     sync.Mutex
	miners []*miner.Miner // started, for Devnet.Hosted
}

// Hosted returns the miners the devnet runs for its providers.
func (d *Devnet) Hosted() []*miner.Miner {
	if d.host == nil {
		return nil
	}
	d.host.mu.Lock()
	defer d.host.mu.Unlock()
	return append([]*miner.Miner(nil), d.host.miners...)
}

// startHosting starts looking for providers to host, until Close.
func (d *Devnet) startHosting(ks *keystore.Store, builtin backend.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &hoster{d: d, ks: ks, builtin: builtin, running: map[address.Address]bool{}, failed: map[address.Address]time.Time{},
		cancel: cancel, done: make(chan struct{})}
	d.host = h
	go func() {
		defer close(h.done)
		t := time.NewTicker(hostEvery)
		defer t.Stop()
		for {
			if err := h.pass(ctx); err != nil && ctx.Err() == nil {
				d.cfg.Log.Warn("devnet: hosting providers", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stop ends the hosting loop and waits for it (the miners it started stop
// with the system).
func (h *hoster) stop() {
	h.cancel()
	<-h.done
}

// pass hosts every provider held by the wallet daemon whose active
// listings no miner serves.
func (h *hoster) pass(ctx context.Context) error {
	node := h.d.Node.Client()
	list, err := market.QueryServices(ctx, node, market.ServiceFilter{})
	if err != nil {
		return err
	}
	wallets, err := h.d.Wallets.Service().List(ctx)
	if err != nil {
		return err
	}
	held := map[address.Address]string{}
	for _, w := range wallets {
		held[w.Address] = w.Name
	}
	seen := map[address.Address]bool{}
	for _, s := range list.Services {
		p := s.Provider
		name, ok := held[p]
		if !ok || seen[p] || h.running[p] || time.Since(h.failed[p]) < hostRetry {
			continue
		}
		seen[p] = true
		if err := h.host(ctx, p, name); err != nil && ctx.Err() == nil {
			h.failed[p] = time.Now()
			h.d.cfg.Log.Warn("devnet: hosting a provider", "provider", name, "err", err)
		}
	}
	return nil
}

// host runs a miner for provider p (wallet name) unless a miner not of
// the devnet's serves it: funds the miner's wallet, has the provider name
// it, and starts it (it registers and names the provider).
func (h *hoster) host(ctx context.Context, p address.Address, name string) error {
	node := h.d.Node.Client()
	pv, err := market.QueryProvider(ctx, node, p)
	if err != nil {
		return err
	}
	mname := HostedMinerWallet(p)
	if len(pv.Serving) > 0 {
		info, err := h.ks.Get(mname)
		if err != nil || !slices.Contains(pv.Serving, info.Address) {
			return nil // served by a miner of its own or of its choosing
		}
	}
	pw := h.d.cfg.GenesisPassword
	maddr, err := h.ks.EnsureWallet(mname, pw)
	if err != nil {
		return err
	}
	svc := h.d.Wallets.Service()
	var pending []string
	acct, err := node.Account(ctx, maddr)
	if err != nil {
		return err
	}
	_, regErr := miners.Query(ctx, node, maddr)
	registered := regErr == nil // a restarted devnet's hosted miner is registered: it needs no funds
	if !registered && acct.Balance < hostedStake {
		sub, err := svc.SignAndSubmit(ctx, GenesisWallet, pw, bank.NewSendMsg(maddr, HostedMinerFunds), 0)
		if err != nil {
			return fmt.Errorf("funding the hosted miner: %w", err)
		}
		pending = append(pending, sub.TxHash)
	}
	named := slices.ContainsFunc(pv.Miners, func(l market.MinerLink) bool { return l.Miner == maddr })
	if !named {
		hash, err := h.signAsProvider(ctx, name, market.NewAddMinerMsg(maddr))
		if err != nil {
			return fmt.Errorf("the provider's consent (market add-miner --miner %s --wallet %s): %w", maddr, name, err)
		}
		pending = append(pending, hash)
	}
	for _, hash := range pending {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		res, err := node.WaitTx(wctx, hash, 100*time.Millisecond)
		cancel()
		if err != nil {
			return err
		}
		if res.Status != "committed" {
			return fmt.Errorf("transaction %s refused: %s", hash, res.Error)
		}
	}
	key, err := h.ks.Unlock(mname, pw)
	if err != nil {
		return err
	}
	log := h.d.cfg.Log.With("service", "miner", "hosted_for", name)
	// With the oracle on, it is an agent that reports its work, as the
	// devnet's own miners are (oracle.go).
	runner, err := h.d.walletAgent(key, mname, miner.BackendRunner{B: h.builtin}, log)
	if err != nil {
		return err
	}
	m, err := h.d.sys.StartMiner(ctx, system.MinerConfig{
		Miner: miner.Config{
			Coordinator: rotated(h.d.CoordinatorURLs, 0),
			Key:         key,
			Sender:      walletd.WalletSender{S: svc, Name: mname, Password: pw},
			Runner:      runner, PricePer1k: h.d.cfg.MinerPrice, Stake: hostedStake,
			Slots: h.d.cfg.MinerSlots, Hardware: "devnet (cpu), hosted for " + name, HeartbeatEvery: time.Minute,
			JobKinds: true, Provider: &p,
			Logger: log,
		},
		Key: key, Register: true,
	})
	if err != nil {
		return err
	}
	h.running[p] = true
	h.mu.Lock()
	h.miners = append(h.miners, m.Miner)
	h.mu.Unlock()
	h.d.cfg.Log.Info("devnet: hosting a provider's miner", "provider", name, "miner", maddr.String())
	return nil
}

// signAsProvider signs msg with the provider's wallet: with the key the
// daemon holds unlocked (a password just given, the password grace), or
// else the devnet's password (the seeds' wallets use it).
func (h *hoster) signAsProvider(ctx context.Context, name string, msg tx.Msg) (string, error) {
	svc := h.d.Wallets.Service()
	sub, err := svc.SignAndSubmit(ctx, name, "", msg, 0)
	if err == nil {
		return sub.TxHash, nil
	}
	sub, err2 := svc.SignAndSubmit(ctx, name, h.d.cfg.GenesisPassword, msg, 0)
	if err2 != nil {
		return "", errors.Join(err, err2)
	}
	return sub.TxHash, nil
}

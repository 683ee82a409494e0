package devnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/audit"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/system"
)

// VerifierWallet is the devnet verifier's wallet (aitbc devnet
// --spot-check): bonded at the audits module's min_bond, it re-checks the
// jobs drawn for a spot check, as `aitbc verifier start` would.
const VerifierWallet = "devnet-verifier"

// verifierOn reports whether the devnet runs its verifier: spot checks
// asked for with Config.SpotCheckBps, and a coordinator to fetch jobs from.
func (d *Devnet) verifierOn() bool {
	return d.cfg.SpotCheckBps > 0 && d.cfg.CoordinatorListen != "off"
}

// auditsGenesis sets the audits module's genesis: Config.Audits (or the
// defaults) with Config.SpotCheckBps when that is set. Nothing when
// neither is: the module's defaults check nothing.
func (d *Devnet) auditsGenesis(spec *system.ChainSpec) error {
	if d.cfg.Audits == nil && d.cfg.SpotCheckBps == 0 {
		return nil
	}
	p := audits.DefaultParams()
	if d.cfg.Audits != nil {
		p = *d.cfg.Audits
	}
	if d.cfg.SpotCheckBps > 0 {
		p.SpotCheckBps = d.cfg.SpotCheckBps
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("devnet: audits genesis: %w", err)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if spec.Modules == nil {
		spec.Modules = map[string]json.RawMessage{}
	}
	spec.Modules[audits.Name] = raw
	return nil
}

// startVerifier registers the verifier wallet (once: a restarted devnet
// finds it registered) with the chain's min_bond and runs the verifier
// service in process over the node, the first coordinator and the wallet
// daemon, with the built-in engine on the home's models.
func (d *Devnet) startVerifier(ctx context.Context, ks *keystore.Store) error {
	if !d.verifierOn() {
		return nil
	}
	pw, node, svc := d.cfg.GenesisPassword, d.Node.Client(), d.Wallets.Service()
	key, err := ks.Unlock(VerifierWallet, pw)
	if err != nil {
		return fmt.Errorf("devnet: wallet %s: %w", VerifierWallet, err)
	}
	submit := func(ctx context.Context, msg tx.Msg) (string, error) {
		s, err := svc.SignAndSubmit(ctx, VerifierWallet, pw, msg, 0)
		return s.TxHash, err
	}
	addr := address.FromPubKey(key.PublicKey())
	if v, err := audits.QueryVerifier(ctx, node, addr); err != nil || v.Bond == 0 {
		p, err := audits.QueryParams(ctx, node)
		if err != nil {
			return fmt.Errorf("devnet: audits params: %w", err)
		}
		// A home made without --spot-check has no verifier wallet in its
		// genesis: genesis-ops funds it, as genesis would have.
		if acc, err := node.Account(ctx, addr); err != nil {
			return fmt.Errorf("devnet: verifier %s: %w", addr, err)
		} else if acc.Balance < p.MinBond+coin.Unit {
			s, err := svc.SignAndSubmit(ctx, GenesisWallet, pw, bank.NewSendMsg(addr, ServiceBalance), 0)
			if err != nil {
				return fmt.Errorf("devnet: funding verifier %s: %w", VerifierWallet, err)
			}
			if t, err := node.WaitTx(ctx, s.TxHash, 50*time.Millisecond); err != nil || t.Status != "committed" {
				return fmt.Errorf("devnet: funding verifier %s: %v (%s)", VerifierWallet, err, t.Status)
			}
		}
		h, err := submit(ctx, audits.NewRegisterMsg(p.MinBond))
		if err != nil {
			return fmt.Errorf("devnet: registering verifier %s: %w", VerifierWallet, err)
		}
		// Committed before the first job settles, so the first draw can
		// pick it.
		if t, err := node.WaitTx(ctx, h, 50*time.Millisecond); err != nil || t.Status != "committed" {
			return fmt.Errorf("devnet: registering verifier %s: %v (%s)", VerifierWallet, err, t.Status)
		}
	}
	// Every coordinator of the devnet: a job is checked from whichever
	// holds it (and the chain backs), not only from the first.
	s, err := audit.New(audit.Config{Key: key, Node: node, Locate: audit.Coordinators(node, d.CoordinatorURLs, false, ""),
		Submit: submit, Check: audit.Recheck(d.cfg.Home, 1), Poll: min(d.cfg.BlockTime, 2*time.Second),
		Logger: d.cfg.Log.With("service", "verifier")})
	if err != nil {
		return err
	}
	vctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(vctx)
	}()
	d.verifier = &verifierRun{addr: addr, cancel: cancel, done: done}
	return nil
}

// verifierRun is the devnet's running verifier.
type verifierRun struct {
	addr   address.Address
	cancel context.CancelFunc
	done   chan struct{}
}

// VerifierAddress is the devnet verifier's address (zero when none runs).
func (d *Devnet) VerifierAddress() address.Address {
	if d.verifier == nil {
		return address.Address{}
	}
	return d.verifier.addr
}

func (d *Devnet) closeVerifier() {
	if d.verifier == nil {
		return
	}
	d.verifier.cancel()
	<-d.verifier.done
	d.verifier = nil
}

// bannerVerifier adds the verifier's line to the banner.
func (d *Devnet) bannerVerifier(w io.Writer) {
	if d.verifier != nil {
		fmt.Fprintf(w, "Spot checks     %.2f%% of attested jobs, re-checked by verifier %s (wallet %s; aitbc audits list)\n",
			float64(d.cfg.SpotCheckBps)/100, d.verifier.addr, VerifierWallet)
	}
}

// SpotCheckBps turns a fraction of jobs to check (aitbc devnet
// --spot-check 0.1) into the audits module's basis points: 0 (off) to 1
// (every attested job), in steps of 0.0001.
func SpotCheckBps(fraction float64) (uint64, error) {
	if math.IsNaN(fraction) || fraction < 0 || fraction > 1 {
		return 0, fmt.Errorf("devnet: spot-check fraction %v: want 0 to 1 (e.g. 0.1 for a tenth of the jobs)", fraction)
	}
	bps := uint64(math.Round(fraction * 10_000))
	if fraction > 0 && bps == 0 {
		return 0, fmt.Errorf("devnet: spot-check fraction %v is below the least step, 0.0001", fraction)
	}
	return bps, nil
}

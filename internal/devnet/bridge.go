package devnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/btcnode"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// BridgeWallet is the devnet's one bridge operator (1-of-1).
const BridgeWallet = "devnet-bridge"

// BTC is a devnet's Bitcoin side (aitbc devnet --btc): a btcd regtest node
// on loopback, a test Bitcoin wallet its blocks pay, and the bridge daemon
// signing as BridgeWallet.
type BTC struct {
	Node   *btcnode.Node
	Wallet *btcnode.Wallet
	// XPrv is the bridge's key (from <home>/bridge/seed); the genesis has
	// its xpub.
	XPrv     string
	Operator walletd.WalletSender
	// Daemon is the running bridge daemon (nil with BTCManual).
	Daemon    *bridge.Daemon
	StateFile string
	// Archive keeps the regtest chain's blocks across restarts: btcd wipes
	// its regtest chain at each start, and the archive gives it back
	// (btcnode.Archive), so the bridge resumes where it was.
	Archive *btcnode.Archive

	cancel context.CancelFunc
	done   chan struct{}
}

// BridgeSeedFile holds the seed of a devnet's bridge key.
func BridgeSeedFile(home string) string { return filepath.Join(home, "bridge", "seed") }

// BTCRPCFile holds the regtest node's RPC URL (with its user and password)
// while the devnet runs: `aitbc exchange reserves` reads it.
func BTCRPCFile(home string) string { return filepath.Join(home, "btc", "rpc-url") }

// bridgeKey returns the devnet bridge's key pair, creating its seed once.
func bridgeKey(home string) (xprv, xpub string, err error) {
	path := BridgeSeedFile(home)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		seed := make([]byte, 32)
		if _, err := rand.Read(seed); err != nil {
			return "", "", err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", "", err
		}
		b = []byte(hex.EncodeToString(seed))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return "", "", err
		}
	} else if err != nil {
		return "", "", err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return "", "", fmt.Errorf("bridge seed %s: %w", path, err)
	}
	return cb.AccountKey(seed, "regtest")
}

// bridgeGenesis puts the bridge's parameters in the devnet's genesis: the
// key's xpub, one operator, one confirmation.
func (d *Devnet) bridgeGenesis(spec *system.ChainSpec, operator address.Address) error {
	_, xpub, err := bridgeKey(d.cfg.Home)
	if err != nil {
		return err
	}
	p := cb.DefaultParams()
	p.Network, p.XPub, p.Operators, p.Threshold, p.Confirmations = "regtest", xpub, []string{operator.String()}, 1, max(1, d.cfg.BTCConfirmations)
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if spec.Modules == nil {
		spec.Modules = map[string]json.RawMessage{}
	}
	spec.Modules[cb.Name] = raw
	return nil
}

// startBTC starts the regtest node (mined past segwit's activation, its
// coinbase to the test wallet), and unless BTCManual the bridge daemon and
// a miner that mines a block whenever transactions wait.
func (d *Devnet) startBTC(ctx context.Context, wallets *walletd.Service) error {
	log := d.cfg.Log.With("service", "bitcoin")
	xprv, _, err := bridgeKey(d.cfg.Home)
	if err != nil {
		return err
	}
	v, err := cb.Query(ctx, d.Node.Client())
	if err != nil {
		return err
	}
	if !v.Enabled {
		return fmt.Errorf("devnet: --btc on a home whose chain was created without a bridge: use a fresh --home")
	}
	bin, err := btcnode.Binary(ctx, "")
	if err != nil {
		return fmt.Errorf("devnet: bitcoin node: %w", err)
	}
	dir := filepath.Join(d.cfg.Home, "btc")
	archive, err := btcnode.OpenArchive(filepath.Join(dir, "blocks.archive"))
	if err != nil {
		return fmt.Errorf("devnet: bitcoin node: %w", err)
	}
	if _, err := os.Stat(filepath.Join(d.cfg.Home, "bridge", "state.json")); err == nil && archive.Height() == 0 {
		// A home from before the archive: btcd wiped the regtest chain the
		// bridge read, so the daemon will find its blocks missing and
		// halt, as it must.
		log.Warn("devnet --btc: this home's regtest chain was not archived, so the btc minted in an earlier session has no bitcoin behind it; the bridge will halt. Use a fresh --home for the Bitcoin bridge")
	}
	w, err := btcnode.LoadOrCreateWallet(filepath.Join(dir, "wallet.key"))
	if err != nil {
		return err
	}
	n, err := btcnode.Start(ctx, btcnode.Config{Binary: bin, Dir: dir, MiningAddr: w.Addr, Log: log})
	if err != nil {
		return fmt.Errorf("devnet: bitcoin node: %w", err)
	}
	w.Attach(n)
	b := &BTC{Node: n, Wallet: w, XPrv: xprv, Operator: walletd.WalletSender{S: wallets, Name: BridgeWallet, Password: d.cfg.GenesisPassword},
		StateFile: filepath.Join(d.cfg.Home, "bridge", "state.json"), Archive: archive, done: make(chan struct{})}
	d.BTC = b
	// btcd started a new regtest chain: give it the last session's back
	// before anything mines on it.
	if got, err := archive.Restore(n.Client); err != nil {
		return fmt.Errorf("devnet: bitcoin node: %w", err)
	} else if got > 0 {
		log.Info("regtest chain restored from the archive", "blocks", got)
	}
	if h, err := n.Height(); err != nil {
		return err
	} else if h < btcnode.SegwitHeight+10 {
		if _, err := n.Mine(int(btcnode.SegwitHeight + 10 - h)); err != nil {
			return err
		}
	}
	if err := archive.Sync(n.Client); err != nil {
		return fmt.Errorf("devnet: archiving the regtest chain: %w", err)
	}
	if err := os.WriteFile(BTCRPCFile(d.cfg.Home), []byte(n.URL()+"\n"), 0o600); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	if d.cfg.BTCManual {
		close(b.done)
		return nil
	}
	b.Daemon, err = bridge.New(ctx, bridge.Config{XPrv: xprv, StateFile: b.StateFile, Poll: 200 * time.Millisecond,
		BTC: n.Client, Chain: d.Node.Client(), Operator: b.Operator, Registry: d.Registry, Log: d.cfg.Log.With("service", "bridge")})
	if err != nil {
		return fmt.Errorf("devnet: bridge daemon: %w", err)
	}
	go func() {
		defer close(b.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		go func() { _ = b.Daemon.Run(rctx) }()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			// a block whenever a transaction waits: deposits and the
			// bridge's payments confirm within a second or two
			if pool, err := n.Client.GetRawMempool(); err == nil && len(pool) > 0 {
				if _, err := n.Mine(1); err != nil {
					log.Warn("regtest mining", "err", err)
				}
			}
			// Every block, whoever mined it, into the archive.
			if err := archive.Sync(n.Client); err != nil {
				log.Warn("archiving the regtest chain", "err", err)
			}
		}
	}()
	return nil
}

// closeBTC stops the daemon, the miner and the node.
func (d *Devnet) closeBTC() {
	if d.BTC == nil {
		return
	}
	if d.BTC.cancel != nil {
		d.BTC.cancel()
		<-d.BTC.done
	}
	if d.BTC.Archive != nil {
		if err := d.BTC.Archive.Sync(d.BTC.Node.Client); err != nil {
			d.cfg.Log.Warn("archiving the regtest chain", "err", err)
		}
	}
	d.BTC.Node.Stop()
	_ = os.Remove(BTCRPCFile(d.cfg.Home))
}

// PayTestBTC pays sat satoshis to a regtest address from the test Bitcoin
// wallet of the devnet running at home (aitbc exchange btc-faucet), and
// returns the transaction id. The devnet mines it within a second or two.
func PayTestBTC(ctx context.Context, home, to string, sat int64) (string, error) {
	raw, err := os.ReadFile(BTCRPCFile(home))
	if err != nil {
		return "", fmt.Errorf("no devnet --btc running at %s: %w", home, err)
	}
	c, err := bridge.DialBTC(strings.TrimSpace(string(raw)))
	if err != nil {
		return "", err
	}
	defer c.Shutdown()
	a, err := btcutil.DecodeAddress(to, btcnode.Params())
	if err != nil || !a.IsForNet(btcnode.Params()) {
		return "", fmt.Errorf("%w: %q is not a regtest address", cb.ErrBTCAddress, to)
	}
	w, err := btcnode.LoadOrCreateWallet(filepath.Join(home, "btc", "wallet.key"))
	if err != nil {
		return "", err
	}
	w.Attach(btcnode.Remote(c))
	h, err := w.Send(a, sat, 2_000)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// bannerBTC adds the Bitcoin side to the devnet's banner.
func (d *Devnet) bannerBTC(w io.Writer) {
	if d.BTC == nil {
		return
	}
	h, _ := d.BTC.Node.Height()
	fmt.Fprintf(w, `  bitcoin regtest  %s (height %d; RPC URL in %s)
  test BTC wallet  %s (mined to; pay from it: aitbc exchange btc-faucet --to ADDR --amount 0.5)
  bridge           1-of-1, operator wallet %s, %d confirmation(s) (docs/BRIDGE.md)
Try:  aitbc exchange deposit-address --asset btc --wallet %s
`, d.BTC.Node.RPCAddr, h, BTCRPCFile(d.cfg.Home), d.BTC.Wallet.Addr, BridgeWallet, max(1, d.cfg.BTCConfirmations), GenesisWallet)
	if d.ExchangeURL() != "" {
		// the market maker's asks make the seed's purchase possible
		fmt.Fprintf(w, "      aitbc exchange buy --amount 1000 --pay btc --wallet %s   (pay the address it shows with btc-faucet)\n", GenesisWallet)
	}
}

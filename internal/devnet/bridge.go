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
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/btcnode"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// BridgeWallet is the devnet's first bridge operator (the only one of a
// 1-of-1 bridge); BridgeOperatorWallet names the others.
const BridgeWallet = "devnet-bridge"

// BridgeOperatorWallet is the wallet of bridge operator i (0-based).
func BridgeOperatorWallet(i int) string {
	if i == 0 {
		return BridgeWallet
	}
	return fmt.Sprintf("%s-%d", BridgeWallet, i+1)
}

// bridgeOperators is the devnet bridge's n and m (1-of-1 unless set).
func (d *Devnet) bridgeOperators() (n, m int) {
	n, m = max(1, d.cfg.BTCOperators), max(1, d.cfg.BTCThreshold)
	return n, min(m, n)
}

func (d *Devnet) bridgeWallets() []string {
	n, _ := d.bridgeOperators()
	var out []string
	for i := range n {
		out = append(out, BridgeOperatorWallet(i))
	}
	return out
}

// BTC is a devnet's Bitcoin side (aitbc devnet --btc): a btcd regtest node
// on loopback, a test Bitcoin wallet its blocks pay, and the bridge daemon
// signing as BridgeWallet.
type BTC struct {
	Node   *btcnode.Node
	Wallet *btcnode.Wallet
	// XPrv is the first operator's Bitcoin key (from <home>/bridge/seed);
	// the genesis has its xpub. XPrvs, Operators and StateFiles are every
	// operator's (XPrvs[0] == XPrv).
	XPrv     string
	Operator walletd.WalletSender
	// Daemon is the first operator's running bridge daemon (nil with
	// BTCManual); Daemons every operator's.
	Daemon     *bridge.Daemon
	StateFile  string
	XPrvs      []string
	Operators  []walletd.WalletSender
	StateFiles []string
	Daemons    []*bridge.Daemon
	// Threshold is the genesis's m.
	Threshold int
	// Archive keeps the regtest chain's blocks across restarts: btcd wipes
	// its regtest chain at each start, and the archive gives it back
	// (btcnode.Archive), so the bridge resumes where it was.
	Archive *btcnode.Archive

	cancel context.CancelFunc
	done   chan struct{}
}

// BridgeSeedFile holds the seed of a devnet's (first operator's) bridge key.
func BridgeSeedFile(home string) string { return bridgeSeedFile(home, 0) }

// bridgeSeedFile holds operator i's seed: seed, seed-2, seed-3...
func bridgeSeedFile(home string, i int) string {
	if i == 0 {
		return filepath.Join(home, "bridge", "seed")
	}
	return filepath.Join(home, "bridge", fmt.Sprintf("seed-%d", i+1))
}

// bridgeStateFile is operator i's daemon's state file.
func bridgeStateFile(home string, i int) string {
	if i == 0 {
		return filepath.Join(home, "bridge", "state.json")
	}
	return filepath.Join(home, "bridge", fmt.Sprintf("state-%d.json", i+1))
}

// BTCRPCFile holds the regtest node's RPC URL (with its user and password)
// while the devnet runs: `aitbc exchange reserves` reads it.
func BTCRPCFile(home string) string { return filepath.Join(home, "btc", "rpc-url") }

// bridgeKey returns operator i's key pair, creating its seed once.
func bridgeKey(home string, i int) (xprv, xpub string, err error) {
	path := bridgeSeedFile(home, i)
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

// bridgeGenesis puts the bridge's parameters in the devnet's genesis:
// each operator's wallet and xpub, the threshold, one confirmation, and a
// proposer timeout of 5 blocks (a stopped operator's turn passes on within
// seconds).
func (d *Devnet) bridgeGenesis(spec *system.ChainSpec, addrs map[string]address.Address) error {
	n, m := d.bridgeOperators()
	p := cb.DefaultParams()
	p.Network, p.Threshold, p.Confirmations, p.ProposeTimeout = "regtest", m, max(1, d.cfg.BTCConfirmations), 5
	for i := range n {
		_, xpub, err := bridgeKey(d.cfg.Home, i)
		if err != nil {
			return err
		}
		p.XPubs = append(p.XPubs, xpub)
		p.Operators = append(p.Operators, addrs[BridgeOperatorWallet(i)].String())
	}
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
	if _, err := os.Stat(bridgeStateFile(d.cfg.Home, 0)); err == nil && archive.Height() == 0 {
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
	b := &BTC{Node: n, Wallet: w, Archive: archive, done: make(chan struct{})}
	// the chain's operators, whatever this run's flags say: a home keeps
	// the bridge its genesis was made with
	for i := range v.Params.Operators {
		xprv, _, err := bridgeKey(d.cfg.Home, i)
		if err != nil {
			return err
		}
		b.XPrvs = append(b.XPrvs, xprv)
		b.Operators = append(b.Operators, walletd.WalletSender{S: wallets, Name: BridgeOperatorWallet(i), Password: d.cfg.GenesisPassword})
		b.StateFiles = append(b.StateFiles, bridgeStateFile(d.cfg.Home, i))
	}
	b.XPrv, b.Operator, b.StateFile, b.Threshold = b.XPrvs[0], b.Operators[0], b.StateFiles[0], v.Params.Threshold
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
	for i := range b.XPrvs {
		// Every operator's metrics on the devnet's registry, told apart by
		// their operator="N" label (bridge.New adds it).
		dm, err := bridge.New(ctx, bridge.Config{XPrv: b.XPrvs[i], StateFile: b.StateFiles[i], Poll: 200 * time.Millisecond,
			BTC: n.Client, Chain: d.Node.Client(), Operator: b.Operators[i], Registry: d.Registry, Log: d.cfg.Log.With("service", "bridge", "operator", i+1)})
		if err != nil {
			cancel()
			close(b.done)
			return fmt.Errorf("devnet: bridge daemon %d: %w", i+1, err)
		}
		b.Daemons = append(b.Daemons, dm)
	}
	b.Daemon = b.Daemons[0]
	var running sync.WaitGroup
	for _, dm := range b.Daemons {
		running.Go(func() { _ = dm.Run(rctx) })
	}
	go func() {
		defer close(b.done)
		defer running.Wait()
		t := time.NewTicker(time.Second)
		defer t.Stop()
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
	bm := d.BTC.Threshold
	var ops []string
	for _, o := range d.BTC.Operators {
		ops = append(ops, o.Name)
	}
	fmt.Fprintf(w, `  bitcoin regtest  %s (height %d; RPC URL in %s)
  test BTC wallet  %s (mined to; pay from it: aitbc exchange btc-faucet --to ADDR --amount 0.5)
  bridge           %d-of-%d P2WSH, operator wallet(s) %s, %d confirmation(s) (docs/BRIDGE.md)
Try:  aitbc exchange deposit-address --asset btc --wallet %s
`, d.BTC.Node.RPCAddr, h, BTCRPCFile(d.cfg.Home), d.BTC.Wallet.Addr, bm, len(d.BTC.Operators), strings.Join(ops, ", "), max(1, d.cfg.BTCConfirmations), GenesisWallet)
	if d.ExchangeURL() != "" {
		// the market maker's asks make the seed's purchase possible
		fmt.Fprintf(w, "      aitbc exchange buy --amount 1000 --pay btc --wallet %s   (pay the address it shows with btc-faucet)\n", GenesisWallet)
	}
}

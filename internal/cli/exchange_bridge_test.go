package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"

	"github.com/btcsuite/btcd/btcutil"

	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/walletd"

	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/btcnode"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// TestBridgeCommandsOnADevnetWithBTC runs the bridge as a user does on
// `aitbc devnet --btc` (a real btcd regtest node, the bridge daemon and
// automatic mining): deposit-address, a payment from the devnet's test
// Bitcoin wallet, the btc minted to the satoshi, a withdrawal paid to a
// fresh Bitcoin address, and reserves that cover the supply; bad input
// gets the chain's specific refusals.
func TestBridgeCommandsOnADevnetWithBTC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and a Bitcoin node")
	}
	clearEnv(t)
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		BTC:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}

	var dep struct {
		Address       string `json:"address"`
		Confirmations int64  `json:"confirmations"`
	}
	if err := json.Unmarshal([]byte(e.ok("exchange", "deposit-address", "--asset", "btc", "--wallet", "genesis-ops", "--password", "123", "-o", "json")), &dep); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dep.Address, "bcrt1q") || dep.Confirmations != 1 {
		t.Fatalf("deposit address %+v", dep)
	}
	again := strings.TrimSpace(strings.Split(e.ok("exchange", "deposit-address", "--wallet", "genesis-ops"), "\n")[0])
	if again != dep.Address {
		t.Fatalf("second deposit-address %q, first %q", again, dep.Address)
	}
	e.fails("bridge carries btc only", "exchange", "deposit-address", "--asset", "eth", "--wallet", "genesis-ops")

	e.ok("exchange", "btc-faucet", "--to", dep.Address, "--amount", "1.23456789")
	btc := func() uint64 {
		var v struct {
			Balances map[string]uint64 `json:"balances"`
		}
		if err := d.Node.Client().GetJSON(ctx, "/api/v1/bank/balances/"+d.Genesis.String(), &v); err != nil {
			t.Fatal(err)
		}
		return v.Balances["btc"]
	}
	var deps []bridge.DepositStatus // --wait follows the deposit until it is minted
	if err := json.Unmarshal([]byte(e.ok("exchange", "deposits", "--asset", "btc", "--wallet", "genesis-ops", "--wait", "1m", "-o", "json")), &deps); err != nil {
		t.Fatal(err)
	}
	if len(deps) != 1 || deps[0].Status != "minted" || deps[0].Amount != 123_456_789 || deps[0].Confirmations < 1 {
		t.Fatalf("deposits %+v", deps)
	}
	if got := btc(); got != 123_456_789 {
		t.Fatalf("genesis-ops holds %d sat of btc, want 123456789", got)
	}

	dest, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	e.fails("not a valid Bitcoin address", "exchange", "withdraw", "--asset", "btc", "--amount", "0.1", "--to", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "--wallet", "genesis-ops", "--password", "123")
	e.fails("less btc than that", "exchange", "withdraw", "--asset", "btc", "--amount", "2", "--to", dest.Addr.EncodeAddress(), "--wallet", "genesis-ops", "--password", "123")
	e.fails("minimum", "exchange", "withdraw", "--asset", "btc", "--amount", "0.00000600", "--to", dest.Addr.EncodeAddress(), "--wallet", "genesis-ops", "--password", "123")
	if got := btc(); got != 123_456_789 {
		t.Fatalf("refused withdrawals changed the balance to %d", got)
	}
	var wd struct {
		Withdrawal cb.WithdrawalView `json:"withdrawal"`
	}
	if err := json.Unmarshal([]byte(e.ok("exchange", "withdraw", "--asset", "btc", "--amount", "0.25", "--to", dest.Addr.EncodeAddress(), "--wallet", "genesis-ops", "--password", "123", "-o", "json")), &wd); err != nil {
		t.Fatal(err)
	}
	if wd.Withdrawal.Amount != 25_000_000 || btc() != 123_456_789-25_000_000 {
		t.Fatalf("withdrawal %+v, balance %d", wd.Withdrawal, btc())
	}
	dest.Attach(d.BTC.Node)
	var wds []cb.WithdrawalView // --wait until the bridge has paid it
	if err := json.Unmarshal([]byte(e.ok("exchange", "withdrawals", "--wallet", "genesis-ops", "--wait", "1m", "-o", "json")), &wds); err != nil {
		t.Fatal(err)
	}
	if len(wds) != 1 || wds[0].Status != "paid" || len(wds[0].PaidTx) != 64 || wds[0].Payout != 25_000_000-wds[0].Fee {
		t.Fatalf("withdrawals %+v", wds)
	}
	waitBridge(t, "the withdrawal paid and confirmed", func() bool {
		w, err := cb.QueryWithdrawal(ctx, d.Node.Client(), wd.Withdrawal.ID)
		bal, berr := dest.Balance()
		return err == nil && w.Status == "paid" && berr == nil && bal == int64(w.Payout)
	})
	var r bridge.ReserveReport
	if err := json.Unmarshal([]byte(e.ok("exchange", "reserves", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.SupplySat != 123_456_789-25_000_000 || r.ReserveSat != int64(r.SupplySat) {
		t.Fatalf("reserves %+v", r)
	}
	var au struct {
		OK         bool `json:"ok"`
		Invariants []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"invariants"`
	}
	if err := json.Unmarshal([]byte(e.ok("chain", "audit", "-o", "json")), &au); err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{}
	for _, in := range au.Invariants {
		checked[in.Name] = in.OK
	}
	if !au.OK || !checked["bridge/reserves"] || !checked["bridge/supply"] || !checked["bridge/pending"] {
		t.Fatalf("chain audit: %+v", au)
	}
}

// waitBridge polls cond until it holds (a generous deadline, not a timing
// assertion: blocks and the bridge's daemon run on their own clocks).
func waitBridge(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBridgeDaemonCommand runs `aitbc exchange bridge-daemon` as an
// operator would, against a devnet's regtest node and chain, signing as
// the bridge's operator through the wallet daemon (its service key): a
// deposit is minted once and the command stops cleanly when told to.
func TestBridgeDaemonCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and a Bitcoin node")
	}
	clearEnv(t)
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		BTC:      true, BTCManual: true, // no daemon of its own: the command is the daemon
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
	var dep struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(e.ok("exchange", "deposit-address", "--wallet", "genesis-ops", "--password", "123", "-o", "json")), &dep); err != nil {
		t.Fatal(err)
	}
	to, err := btcutil.DecodeAddress(dep.Address, btcnode.Params())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.BTC.Wallet.Send(to, 7_654_321, 2_000); err != nil {
		t.Fatal(err)
	}
	var deps []bridge.DepositStatus // not mined yet: the deposit is seen in the mempool
	if err := json.Unmarshal([]byte(e.ok("exchange", "deposits", "--wallet", "genesis-ops", "-o", "json")), &deps); err != nil {
		t.Fatal(err)
	}
	if len(deps) != 1 || deps[0].Status != "mempool" || deps[0].Confirmations != 0 || deps[0].Needed != 1 || deps[0].Amount != 7_654_321 {
		t.Fatalf("deposits before mining: %+v", deps)
	}
	if _, err := d.BTC.Node.Mine(1); err != nil {
		t.Fatal(err)
	}

	xprv := filepath.Join(t.TempDir(), "bridge.xprv")
	if err := os.WriteFile(xprv, []byte(d.BTC.XPrv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(walletd.ServiceKeyPath(home)) // the operator is a service wallet
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(walletd.EnvAPIKey, strings.TrimSpace(string(key)))
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		root := cli.NewRoot("aitbc", strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
		root.SetArgs([]string{"--home", home, "--node", d.RPCURL(), "--wallet-url", d.WalletURL(), "exchange", "bridge-daemon",
			"--btc-rpc", d.BTC.Node.URL(), "--xprv-file", xprv, "--wallet", devnet.BridgeWallet, "--password", "123",
			"--poll", "100ms", "--listen", "off", "--state-file", filepath.Join(t.TempDir(), "state.json")})
		done <- root.ExecuteContext(dctx)
	}()
	minted := func() uint64 {
		v, err := bank.QueryBalances(ctx, d.Node.Client(), d.Genesis)
		if err != nil {
			t.Fatal(err)
		}
		return v.Balances[cb.Denom]
	}
	waitBridge(t, "the daemon command to mint the deposit", func() bool { return minted() == 7_654_321 })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("bridge-daemon after cancel: %v", err)
	}
	if got := minted(); got != 7_654_321 {
		t.Fatalf("minted %d sat, want 7654321 once", got)
	}
}

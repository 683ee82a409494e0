package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// TestDevnetWithBTCKeepsItsBitcoinChainAcrossRestarts: a deposit minted
// before `aitbc devnet --btc` restarts is still there after it (btcd,
// which wipes its regtest chain at each start, is given it back from the
// archive, so the bridge finds the blocks it read), the btc balance is
// unchanged and the audit holds; a deposit made after the restart is
// minted too.
func TestDevnetWithBTCKeepsItsBitcoinChainAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and a Bitcoin node, twice")
	}
	clearEnv(t)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	startDevnet := func() *devnet.Devnet {
		t.Helper()
		p2p, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p2pAddr := p2p.Addr().String()
		p2p.Close()
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
		return d
	}
	d := startDevnet()
	closed := false
	t.Cleanup(func() {
		if !closed {
			d.Close()
		}
	})
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
	var dep struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(e.ok("exchange", "deposit-address", "--asset", "btc", "--wallet", "genesis-ops", "--password", "123", "-o", "json")), &dep); err != nil {
		t.Fatal(err)
	}
	deposits := func(want int) []bridge.DepositStatus {
		t.Helper()
		var deps []bridge.DepositStatus
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if err := json.Unmarshal([]byte(e.ok("exchange", "deposits", "--asset", "btc", "--wallet", "genesis-ops", "--wait", "1m", "-o", "json")), &deps); err != nil {
				t.Fatal(err)
			}
			minted := 0
			for _, d := range deps {
				if d.Status == "minted" {
					minted++
				}
			}
			if minted == want && len(deps) == want {
				return deps
			}
			if time.Now().After(deadline) {
				t.Fatalf("want %d minted deposits: %+v", want, deps)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	btc := func(d *devnet.Devnet) uint64 {
		var v struct {
			Balances map[string]uint64 `json:"balances"`
		}
		if err := d.Node.Client().GetJSON(ctx, "/api/v1/bank/balances/"+d.Genesis.String(), &v); err != nil {
			t.Fatal(err)
		}
		return v.Balances["btc"]
	}
	e.ok("exchange", "btc-faucet", "--to", dep.Address, "--amount", "0.5")
	before := deposits(1)
	if got := btc(d); got != 50_000_000 {
		t.Fatalf("btc before the restart: %d", got)
	}
	tipBefore, _, err := d.BTC.Node.Client.GetBestBlock()
	if err != nil {
		t.Fatal(err)
	}

	d.Close()
	closed = true
	d = startDevnet()
	closed = false
	e.nodeURL, e.walletURL = d.RPCURL(), d.WalletURL()
	// The regtest chain is the one the bridge read: the tip of before is
	// in it (mining may have gone on since).
	if h, err := d.BTC.Node.Client.GetBlockHeaderVerbose(tipBefore); err != nil || h.Confirmations < 1 {
		t.Fatalf("the tip before the restart, after it: %+v %v", h, err)
	}
	after := deposits(1)
	if after[0].Outpoint != before[0].Outpoint || btc(d) != 50_000_000 {
		t.Fatalf("after the restart: %+v (before %+v), btc %d", after, before, btc(d))
	}
	e.ok("exchange", "btc-faucet", "--to", dep.Address, "--amount", "0.25")
	deposits(2)
	if got := btc(d); got != 75_000_000 {
		t.Fatalf("btc after a deposit made after the restart: %d", got)
	}
	var audit struct {
		OK bool `json:"ok"`
	}
	if err := d.Node.Client().GetJSON(ctx, "/api/v1/audit", &audit); err != nil || !audit.OK {
		t.Fatalf("audit after the restart: %+v %v", audit, err)
	}
}

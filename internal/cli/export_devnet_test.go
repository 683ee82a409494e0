package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

func startDevnet(t *testing.T, ctx context.Context, home string) *devnet.Devnet {
	t.Helper()
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestChainExportOnADevnet: a devnet with balances, a stake, a multisig
// and a faucet drip is stopped and exported with `aitbc chain export`
// (refused while it runs, and over an existing file); a copy of its home
// with the exported genesis and fresh chain data starts as a new chain at
// the next height with the same balances, stake and multisig, and `aitbc
// chain audit` passes there.
func TestChainExportOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two chains")
	}
	clearEnv(t)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := startDevnet(t, ctx, home)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
	pw := []string{"--password", "123"}
	for _, w := range []string{"alice", "m1"} {
		e.ok("create", "--name", w, "--password", "123")
	}
	e.ok(append([]string{"send", "--from", "genesis-ops", "--to", e.addrOf("alice"), "--amount", "50", "--wait"}, pw...)...)
	e.ok(append([]string{"multisig", "create", "--name", "ops", "--threshold", "2", "--signers", "genesis-ops,alice,m1", "--wallet", "genesis-ops"}, pw...)...)
	e.ok(append([]string{"faucet", "--address", "m1", "--wallet", "m1"}, pw...)...)
	var validator string
	var si cli.StakingInfo
	if err := json.Unmarshal([]byte(e.ok("staking", "info", "-o", "json")), &si); err != nil {
		t.Fatal(err)
	}
	for _, o := range si.Operators.Operators {
		if o.Kind == "validator" {
			validator = o.Address.String()
		}
	}
	e.ok(append([]string{"stake", "--wallet", "alice", "--amount", "20", "--to", validator}, pw...)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, err := e.run("multisig", "show", "--name", "ops")
		if err == nil && strings.Contains(e.ok("balance", "--name", "m1"), "m1: 1000 AITBC") && strings.Contains(e.ok("staking", "info", "--wallet", "alice"), "staked     20 AITBC") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the faucet drip or the stake did not commit")
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := filepath.Join(t.TempDir(), "genesis.json")
	e.fails("stop the node first", "chain", "export", "--out", out)
	// What the new chain must show, read just before the stop.
	before := map[string]string{}
	read := func(e *walletEnv, into map[string]string) {
		into["alice"] = e.ok("balance", "--name", "alice")
		into["m1"] = e.ok("balance", "--name", "m1")
		st := e.ok("staking", "info", "--wallet", "alice")
		into["staking"] = st[strings.Index(st, "total bonded"):] // the height and the epoch's pots move on
		into["multisig"] = e.ok("multisig", "show", "--name", "ops")
	}
	read(e, before)
	d.Close()

	var sum struct {
		ExportedHeight int64    `json:"exported_height"`
		InitialHeight  int64    `json:"initial_height"`
		Modules        []string `json:"modules"`
	}
	if err := json.Unmarshal([]byte(e.ok("chain", "export", "--out", out, "--chain-id", "aitbc-devnet-2", "-o", "json")), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.InitialHeight != sum.ExportedHeight+1 || len(sum.Modules) < 9 {
		t.Fatalf("export summary %+v", sum)
	}
	e.fails("exists", "chain", "export", "--out", out)
	e.fails("keeps only the latest height", "chain", "export", "--height", "1", "--out", out+".2")

	// A new home: the wallets and the validator's keys and signing state,
	// the exported genesis, no chain data.
	home2 := t.TempDir()
	if err := os.CopyFS(home2, os.DirFS(home)); err != nil {
		t.Fatal(err)
	}
	chain := devnet.ChainHome(home2)
	// No chain data, and a fresh signing state: the validator may have
	// signed past the exported height (CometBFT votes on the next block
	// before the application commits), which would stop it from signing
	// the new chain's first heights; the new chain id makes the old
	// chain's signatures worthless on it (docs/OPERATIONS.md).
	if err := os.RemoveAll(filepath.Join(chain, "data")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(chain, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chain, "data", "priv_validator_state.json"), []byte(`{"height":"0","round":0,"step":0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(chain, "config", "genesis.json"), g, 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := startDevnet(t, ctx, home2)
	defer d2.Close()
	e2 := &walletEnv{t: t, home: home2, nodeURL: d2.RPCURL(), walletURL: d2.WalletURL()}
	after := map[string]string{}
	read(e2, after)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s on the new chain:\n%s\nold:\n%s", k, after[k], v)
		}
	}
	info := e2.ok("chain", "info")
	if !strings.Contains(info, "aitbc-devnet-2") {
		t.Errorf("chain info on the new chain:\n%s", info)
	}
	e2.ok("chain", "audit")
	e2.fails("allowance", append([]string{"faucet", "--address", "m1", "--wallet", "m1"}, pw...)...)
}

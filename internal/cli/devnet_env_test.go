package cli_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// startJobsDevnet starts the in-process devnet the job scenario tests run
// the CLI against: one miner, 150 ms blocks, invariants checked every
// block, every listener on a free loopback port, and a wallet environment
// pointed at its node and wallet daemon. It is closed when the test ends.
func startJobsDevnet(ctx context.Context, t *testing.T) (*devnet.Devnet, *walletEnv) {
	t.Helper()
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	home := t.TempDir()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: 1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
}

// balance is a wallet's AITBC balance as `aitbc balance` prints it.
func (e *walletEnv) balance(name string) coin.Amount {
	e.t.Helper()
	out := e.ok("balance", "--name", name)
	a, err := coin.Parse(strings.TrimSuffix(strings.TrimPrefix(out, name+": "), " AITBC\n"))
	if err != nil {
		e.t.Fatalf("balance printed %q", out)
	}
	return a
}

// waitBalance waits up to 30 s for a wallet's balance to be want.
func (e *walletEnv) waitBalance(name string, want coin.Amount) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for got := e.balance(name); got != want; got = e.balance(name) {
		if time.Now().After(deadline) {
			e.t.Fatalf("balance of %s: %s, want %s", name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

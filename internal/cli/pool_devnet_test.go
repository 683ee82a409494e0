package cli_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// TestPoolCommandsOnADevnet: `aitbc pool create|join|leave|show` against a
// devnet whose miner joins and leaves a pool; bad input is refused with
// the chain's message.
func TestPoolCommandsOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
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
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
	miner := devnet.MinerWallet(0)
	pw := []string{"--password", "123"}

	e.fails("--fee", append([]string{"pool", "create", "--name", "beta", "--fee", "abc", "--wallet", "genesis-ops"}, pw...)...)
	e.fails("pool fee above 100%", append([]string{"pool", "create", "--name", "beta", "--fee", "150", "--wallet", "genesis-ops"}, pw...)...)
	e.ok(append([]string{"pool", "create", "--name", "beta", "--fee", "2.5", "--wallet", "genesis-ops"}, pw...)...)
	e.fails("only an active registered miner joins a pool", append([]string{"pool", "join", "--name", "beta", "--wallet", "genesis-ops"}, pw...)...)
	e.ok(append([]string{"pool", "join", "--name", "beta", "--wallet", miner}, pw...)...)
	e.fails("already in a pool", append([]string{"pool", "join", "--name", "beta", "--wallet", miner}, pw...)...)
	minerAddr := e.addrOf(miner)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, err := e.run("pool", "show", "--name", "beta") // pool_not_found until committed
		if err == nil && strings.Contains(out, "fee        2.50%") && strings.Contains(out, "member     "+minerAddr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool show: %v\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	e.ok(append([]string{"pool", "leave", "--wallet", miner}, pw...)...)
	e.fails("the miner is in no pool", append([]string{"pool", "leave", "--wallet", miner}, pw...)...)
	e.fails("pool not found", "pool", "show", "--name", "nope")
}

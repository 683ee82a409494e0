package cli_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// TestSeedWalletFlowOnADevnet runs the seed's wallet commands against a
// real single-validator chain and the devnet's wallet daemon: create,
// list | grep | cut, send with --password, quick consecutive sends (nonces
// from the node's mempool view plus the daemon's own), send --wait,
// balance, and signing with an unlocked wallet.
func TestSeedWalletFlowOnADevnet(t *testing.T) {
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
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}

	e.ok("create", "--name", "customer-1", "--password", "123")
	to := e.addrOf("customer-1")
	for range 3 { // no waiting between them: consecutive nonces
		e.ok("send", "--from", "genesis-ops", "--to", to, "--amount", "1000", "--password", "123")
	}
	out, errOut, err := e.run("send", "--from", "genesis-ops", "--to", to, "--amount", "0.25", "--password", "123", "--wait")
	if err != nil || !strings.Contains(errOut, "committed in block") {
		t.Fatalf("send --wait: %q %q %v", out, errOut, err)
	}
	// The earlier sends were ahead of it in the same account's nonce order.
	if got := e.ok("balance", "--name", "customer-1"); got != "customer-1: 3000.25 AITBC\n" {
		t.Fatalf("balance printed %q", got)
	}
	e.ok("wallet", "unlock", "--name", "customer-1", "--password", "123", "--timeout", "1m")
	e.ok("send", "--from", "customer-1", "--to", e.addrOf("genesis-ops"), "--amount", "1", "--wait")
	e.ok("wallet", "lock", "--name", "customer-1")
	e.fails("insufficient funds", "send", "--from", "customer-1", "--to", to, "--amount", "1000000", "--password", "123")
	if got := e.ok("balance", "--name", "customer-1"); got != "customer-1: 2999.249 AITBC\n" {
		t.Fatalf("balance after spending printed %q", got)
	}

	// The books balance, and the money the chain's modules hold is in
	// accounts anyone can look at: the devnet's deposit is in jobs.deposits.
	audit := e.ok("chain", "audit")
	for _, want := range []string{"ok   bank/supply", "ok   jobs/deposits", "ok   miners/stake", "ok   jobs/escrow"} {
		if !strings.Contains(audit, want) {
			t.Errorf("chain audit does not report %q:\n%s", want, audit)
		}
	}
	info := e.ok("chain", "info")
	if !strings.Contains(info, "module account  jobs.deposits") {
		t.Fatalf("chain info lists no module accounts:\n%s", info)
	}
	deposits := address.Module(jobs.DepositsAccount).String()
	if got := e.ok("balance", "--address", deposits); !strings.Contains(got, "100000 AITBC") {
		t.Fatalf("balance of the deposits account printed %q, want the devnet's 100000 deposit", got)
	}
	e.fails("module accounts cannot receive transfers", "send", "--from", "customer-1", "--to", deposits, "--amount", "1", "--password", "123")
}

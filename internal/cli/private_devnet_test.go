package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
)

// TestPrivateJobSettlesWithAProofOnADevnet: `ai-submit --private` on a
// devnet (whose genesis holds the verifying key the devnet's setup made):
// the job settles with a zero-knowledge proof, the chain's receipt holds
// a commitment and no token counts or price, and every balance moves by
// exactly the settlement, to the unit.
func TestPrivateJobSettlesWithAProofOnADevnet(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
	coord := []string{"--coordinator", d.CoordinatorURL()}
	balance := func(name string) coin.Amount {
		t.Helper()
		out := e.ok("balance", "--name", name)
		a, err := coin.Parse(strings.TrimSuffix(strings.TrimPrefix(out, name+": "), " AITBC\n"))
		if err != nil {
			t.Fatalf("balance printed %q", out)
		}
		return a
	}
	waitBalance := func(name string, want coin.Amount) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for got := balance(name); got != want; got = balance(name) {
			if time.Now().After(deadline) {
				t.Fatalf("balance of %s: %s, want %s", name, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	e.ok("create", "--name", "customer-1", "--password", "123")
	e.ok("send", "--from", "genesis-ops", "--to", e.addrOf("customer-1"), "--amount", "500", "--password", "123")
	waitBalance("customer-1", 500*coin.Unit)
	minerWallet := devnet.MinerWallet(0)
	cb, mb := balance("customer-1"), balance(minerWallet)

	out := e.ok(append(coord, "ai-submit", "--wallet", "customer-1", "--prompt", "Prince Andrew", "--payment", "120",
		"--max-tokens", "40", "--private", "--password", "123", "--output", "json")...)
	var sub coordinator.JobView
	if err := json.Unmarshal([]byte(out), &sub); err != nil || sub.JobID == "" {
		t.Fatalf("ai-submit printed %q: %v", out, err)
	}
	var v coordinator.JobView
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := json.Unmarshal([]byte(e.ok(append(coord, "ai-results", "--job-id", sub.JobID, "--output", "json")...)), &v); err != nil {
			t.Fatal(err)
		}
		if v.Status == "settled" {
			break
		}
		if v.Status == "failed" || v.Status == "expired" || time.Now().After(deadline) {
			t.Fatalf("job %s: %+v", sub.JobID, v)
		}
		time.Sleep(200 * time.Millisecond)
	}

	node := rpc.NewClient(d.RPCURL())
	cj, err := jobs.QueryJob(ctx, node, sub.JobID)
	if err != nil {
		t.Fatal(err)
	}
	// The customer (who sees its own usage at the coordinator) can check
	// the payout against it: the chain paid exactly tokens × price.
	if v.TokensOut == 0 || cj.Paid != jobs.PriceFor(uint64(v.TokensOut), cj.PricePer1k) || cj.Status != "settled" {
		t.Fatalf("chain job %+v, coordinator's %+v", cj, v)
	}
	if cj.Paid+cj.Fee+cj.Commission+cj.Refund != cj.Escrow || cj.Escrow != 120*coin.Unit {
		t.Fatalf("escrow not accounted: %+v", cj)
	}
	const txFee = coin.Unit / 1000
	waitBalance("customer-1", cb-txFee-(cj.Escrow-cj.Refund))
	waitBalance(minerWallet, mb+cj.Paid)

	// The public record: a commitment, no token counts, no price.
	pv, err := jobs.QueryPrivacy(ctx, node, mustID(t, sub.JobID))
	if err != nil || !pv.Private || len(pv.Commitment) != 64 {
		t.Fatalf("privacy %+v %v", pv, err)
	}
	tx, err := node.Tx(ctx, v.Settlement.SettleTx)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(tx.Body)
	if tx.Type != jobs.TypeSettlePrivate || !strings.Contains(string(body), pv.Commitment) ||
		strings.Contains(string(body), "tokens") || strings.Contains(string(body), "price") {
		t.Fatalf("settlement on chain: %s %s", tx.Type, body)
	}
	if got := e.ok("chain", "audit"); strings.Contains(got, "FAIL") {
		t.Fatalf("audit:\n%s", got)
	}
}

func mustID(t *testing.T, s string) []byte {
	t.Helper()
	b, err := jobs.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
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
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, e := startJobsDevnet(ctx, t)
	coord := []string{"--coordinator", d.CoordinatorURL()}
	balance := e.balance
	waitBalance := e.waitBalance
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

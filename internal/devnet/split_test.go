package devnet_test

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/engine"
)

// waitSpanAgents waits (for blocks, not a time) until n span servers are
// active on chain with their endpoints, and returns them.
func waitSpanAgents(t *testing.T, e *env, n int) []agents.View {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		l, err := agents.List(ctx, e.node, agents.Filter{Model: engine.DefaultModel, Capability: "span", ActiveOnly: true})
		ready := 0
		for _, a := range l.Agents {
			if a.Endpoint != "" {
				ready++
			}
		}
		if err == nil && ready == n {
			return l.Agents
		}
		select {
		case <-ctx.Done():
			t.Fatalf("span agents on chain: %+v, %v", l, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestSplitJobThroughTheCoordinator: with --span-miners 2 and no miner
// serving tolstoy-1m whole, a job (asked to split, and one not asked)
// runs through the span servers the coordinator finds on chain. Its text
// equals the whole model's; the chain pays each server its share of
// layers × tokens to the unit, and the escrow is paid out exactly; the
// stage receipts verify offline.
func TestSplitJobThroughTheCoordinator(t *testing.T) {
	e := start(t, devnet.Config{SpanMiners: 2, SpanListen: "127.0.0.1:0", Miners: -1})
	servers := waitSpanAgents(t, e, 2)
	ci, err := e.node.Chain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 30, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, split := range []bool{true, false} {
		before := map[address.Address]coin.Amount{}
		for _, a := range servers {
			before[a.Address] = e.balance(a.Address)
		}
		req := map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 30, "temperature": 0}
		if split {
			req["split"] = true
		}
		job := e.submit(e.d.APIKey, req)
		e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled", "failed", "expired")
		var res coordinator.JobView
		if err := e.call("GET", "/v1/jobs/"+job.JobID+"/results", e.d.APIKey, nil, &res); err != nil {
			t.Fatal(err)
		}
		if res.Status != "settled" || !res.Split || res.Result == nil {
			t.Fatalf("split %v: job %s (split %v, error %q)", split, res.Status, res.Split, res.Error)
		}
		if *res.Result != want.Text {
			t.Fatalf("split output %q, whole model %q", *res.Result, want.Text)
		}
		var set jobs.MsgSettleStages
		if err := tx.Unmarshal(res.StageSettlement, &set); err != nil {
			t.Fatal(err)
		}
		id, _ := hex.DecodeString(job.JobID)
		if err := set.Check(jobs.StageJob{ID: id, ChainID: ci.ChainID, Model: "tolstoy-1m", MaxTokens: 30}); err != nil {
			t.Fatalf("stage receipts do not verify offline: %v", err)
		}
		if set.Route != 2 || len(set.Stages) != 2 {
			t.Fatalf("%d stages, %d in the route; want the two halves", len(set.Stages), set.Route)
		}
		cj, err := jobs.QueryJob(context.Background(), e.node, job.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if cj.Paid+cj.Fee+cj.Commission+cj.Refund != cj.Escrow || cj.Paid != jobs.PriceFor(uint64(len(want.Tokens)), coordinator.DefaultSplitPrice) {
			t.Fatalf("escrow %s paid out as %s + fee %s + commission %s + refund %s", cj.Escrow, cj.Paid, cj.Fee, cj.Commission, cj.Refund)
		}
		h := set.Hash()
		if cj.ReceiptHash != hex.EncodeToString(h[:]) {
			t.Fatalf("the chain anchors %s, the settlement hashes to %x", cj.ReceiptHash, h)
		}
		// Each server's balance grew by its share, less the fees of any
		// heartbeat it sent meanwhile (one a minute).
		fee := app.DefaultParams().MinFee
		var sum coin.Amount
		for _, pay := range set.StagePayments(cj.Paid) {
			got := e.balance(pay.Server) - before[pay.Server]
			short := pay.Amount - got
			if got > pay.Amount || short%fee != 0 || short/fee > 3 {
				t.Errorf("server %s got %s, its share is %s", pay.Server, got, pay.Amount)
			}
			sum += pay.Amount
		}
		if sum != cj.Paid {
			t.Fatalf("shares sum to %s, paid %s", sum, cj.Paid)
		}
	}
}

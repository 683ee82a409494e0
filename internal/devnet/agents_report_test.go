package devnet_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/oracle"
)

// TestServingAgentsReportToTheOracle: on a devnet with its oracle, one
// miner and --span-miners 2, the miner and both span servers are agents
// on chain, and after a job on the miner and a split job through the span
// servers, the oracle holds each one's signed reports with exactly the
// tokens it processed (the miner: the job's tokens in and out; a span
// server: the positions its stage receipt counts), and the epoch commits
// on chain add up to the same figures.
func TestServingAgentsReportToTheOracle(t *testing.T) {
	e := start(t, devnet.Config{SpanMiners: 2, SpanListen: "127.0.0.1:0", OracleListen: "127.0.0.1:0", OracleEpoch: 30 * time.Second, NoHosting: true})
	spans := waitSpanAgents(t, e, 2)
	minerAddr := e.d.Miners[0].Address()

	// A job on the miner: its tokens in and out are what it processed.
	want := map[address.Address]uint64{}
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 20, "temperature": 0})
	whole := e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled", "failed", "expired")
	if whole.Status != "settled" || whole.Split || whole.TokensOut == 0 {
		t.Fatalf("job on the miner: %s (split %v, %d tokens out, %q)", whole.Status, whole.Split, whole.TokensOut, whole.Error)
	}
	want[minerAddr] = uint64(whole.TokensIn + whole.TokensOut)

	// A split job: each span server processed the positions its stage
	// receipt counts (one stage each: no failover here).
	job = e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 20, "temperature": 0, "split": true})
	e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled", "failed", "expired")
	var res coordinator.JobView
	if err := e.call("GET", "/v1/jobs/"+job.JobID+"/results", e.d.APIKey, nil, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != "settled" || !res.Split {
		t.Fatalf("split job: %s (split %v, %q)", res.Status, res.Split, res.Error)
	}
	var set jobs.MsgSettleStages
	if err := tx.Unmarshal(res.StageSettlement, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Stages) != 2 {
		t.Fatalf("%d stages, want the two halves", len(set.Stages))
	}
	for _, s := range set.Stages {
		want[s.ServerAddr()] += s.Tokens
	}
	for _, a := range spans {
		if want[a.Address] == 0 {
			t.Fatalf("span agent %s is not in the split job's stages", a.Address)
		}
	}

	// The miner is an agent on chain like the span servers: its name, the
	// model's hash (the span servers compute the same), inference.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	mv, err := agents.Query(ctx, e.node, minerAddr)
	if err != nil {
		t.Fatalf("the miner's agent record: %v", err)
	}
	if mv.Name != devnet.MinerWallet(0) || mv.ModelHash != spans[0].ModelHash || !slices.Contains(mv.Capabilities, "inference") || !mv.Active {
		t.Fatalf("the miner's agent record: %+v", mv)
	}

	// The oracle's totals reach exactly the work done (reports come every
	// DevnetReportEvery; wait for them, not for a time).
	hc := &http.Client{Timeout: 10 * time.Second}
	metrics := func(a address.Address) oracle.MetricsView {
		var v oracle.MetricsView
		if err := httpx.Do(ctx, hc, "GET", e.d.OracleURL()+"/api/v1/agents/"+a.String()+"/metrics", nil, nil, &v); err != nil {
			t.Fatalf("metrics of %s: %v", a, err)
		}
		return v
	}
	for a, n := range want {
		for {
			v := metrics(a)
			if v.Total.ProcessedTokens > n {
				t.Fatalf("agent %s: the oracle counts %d tokens, it processed %d", a, v.Total.ProcessedTokens, n)
			}
			if v.Total.ProcessedTokens == n {
				if v.Total.TasksCompleted == 0 || v.Total.Reports == 0 {
					t.Fatalf("agent %s: %+v", a, v.Total)
				}
				break
			}
			wait(t, ctx, "the oracle's reports of "+a.String())
		}
	}

	// Every epoch's aggregate is committed on chain by the oracle's key;
	// the committed epochs' tokens add up to the same figures once the
	// epochs holding the work have ended.
	read := map[string]uint64{} // commit tx -> its tokens
	for a, n := range want {
		for {
			var sum uint64
			for _, c := range metrics(a).Commits {
				if c.Error != "" {
					t.Fatalf("agent %s: epoch %d not committed: %s", a, c.Epoch, c.Error)
				}
				if _, ok := read[c.TxHash]; !ok {
					read[c.TxHash] = committedTokens(t, ctx, e, a, c.TxHash)
				}
				sum += read[c.TxHash]
			}
			if sum == n {
				break
			}
			if sum > n {
				t.Fatalf("agent %s: commits of %d tokens, it processed %d", a, sum, n)
			}
			wait(t, ctx, "the epoch commits of "+a.String())
		}
		v, err := agents.Query(ctx, e.node, a)
		if err != nil || v.Metrics == nil {
			t.Fatalf("agent %s has no committed metrics on chain: %+v %v", a, v, err)
		}
	}
}

// committedTokens reads the processed tokens of the agents/metrics
// transaction hash, once committed, checking it is for agent.
func committedTokens(t *testing.T, ctx context.Context, e *env, agent address.Address, hash string) uint64 {
	t.Helper()
	tr, err := e.node.WaitTx(ctx, hash, 200*time.Millisecond)
	if err != nil || tr.Status != "committed" || tr.Type != agents.TypeMetrics {
		t.Fatalf("commit %s: %+v %v", hash, tr, err)
	}
	raw, _ := json.Marshal(tr.Body)
	var body struct {
		Agent           string `json:"agent"`
		ProcessedTokens uint64 `json:"processed_tokens"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Agent != agent.String() {
		t.Fatalf("commit %s: %s %v", hash, raw, err)
	}
	return body.ProcessedTokens
}

// wait pauses before the next poll, failing the test at ctx's deadline.
func wait(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
	case <-time.After(500 * time.Millisecond):
	}
}

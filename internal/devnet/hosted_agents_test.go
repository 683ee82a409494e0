package devnet_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/oracle"
)

// TestHostedProvidersMinerIsAnActiveAgentThatReports: on a devnet with
// its oracle and 150 ms blocks (a 9 s active window), the miner the devnet
// hosts for a provider is an agent on chain like the devnet's own miners:
// named after its wallet, it heartbeats often enough to stay active past
// a whole window after its registration, and the oracle holds its signed
// reports of exactly the tokens of the job it ran.
func TestHostedProvidersMinerIsAnActiveAgentThatReports(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	e := start(t, devnet.Config{Miners: -1, OracleListen: "127.0.0.1:0", OracleEpoch: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p, err := agents.QueryParams(ctx, e.node)
	if err != nil || p.ActiveWindow != agents.DefaultParams().ActiveWindow || len(p.Oracles) != 1 {
		t.Fatalf("agents params %+v %v", p, err)
	}

	w := e.d.Wallets.Service()
	info, err := w.Create(ctx, "lister", "123")
	if err != nil {
		t.Fatal(err)
	}
	commit := func(what string, hash string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res, err := e.node.WaitTx(ctx, hash, 50*time.Millisecond); err != nil || res.Status != "committed" {
			t.Fatalf("%s: %+v %v", what, res, err)
		}
	}
	s, err := w.Send(ctx, devnet.GenesisWallet, "123", info.Address, 50*coin.Unit, 0)
	commit("fund", s.TxHash, err)
	s, err = w.SignAndSubmit(ctx, "lister", "123", market.NewCreateMsg(market.ListingSpec{Name: "hosted", Type: market.TypeAIInference, Price: coin.Unit}), 0)
	commit("list", s.TxHash, err)
	for len(e.d.Hosted()) != 1 {
		wait(t, ctx, "the hosted miner")
	}
	hosted := e.d.Hosted()[0].Address()

	// An agent on chain, named after its wallet, that stays active a whole
	// window after it registered: it has heartbeat since.
	var v agents.View
	for {
		v, err = agents.Query(ctx, e.node, hosted)
		if err == nil && v.QueriedHeight > v.Created+v.ActiveWindow {
			break
		}
		wait(t, ctx, "a window after the hosted miner's agent registration")
	}
	if v.Name != devnet.HostedMinerWallet(info.Address) || !slices.Contains(v.Capabilities, "inference") {
		t.Fatalf("the hosted miner's agent record: %+v", v)
	}
	if !v.Active || v.Heartbeat <= v.Created {
		t.Fatalf("the hosted miner's agent at height %d (window %d): registered %d, last heartbeat %d, active %v",
			v.QueriedHeight, v.ActiveWindow, v.Created, v.Heartbeat, v.Active)
	}

	// A job, which only the hosted miner serves, is reported to the
	// oracle with its tokens.
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 16, "temperature": 0})
	done := e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled", "failed", "expired")
	if done.Status != "settled" || done.Miner != hosted.String() {
		t.Fatalf("job: %s on %s (%q), want settled on the hosted miner %s", done.Status, done.Miner, done.Error, hosted)
	}
	want := uint64(done.TokensIn + done.TokensOut)
	hc := &http.Client{Timeout: 10 * time.Second}
	for {
		var m oracle.MetricsView
		err := httpx.Do(ctx, hc, "GET", e.d.OracleURL()+"/api/v1/agents/"+hosted.String()+"/metrics", nil, nil, &m)
		if err == nil && m.Total.ProcessedTokens == want && m.Total.TasksCompleted == 1 {
			break
		}
		if err == nil && m.Total.ProcessedTokens > want {
			t.Fatalf("the oracle counts %d tokens of %s, it processed %d", m.Total.ProcessedTokens, hosted, want)
		}
		wait(t, ctx, "the oracle's reports of the hosted miner "+hosted.String())
	}
}

package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/node"
	"github.com/aitbc/aitbc/internal/rpc"
)

// gauge returns the value of the sample of family name whose labels
// include want, and whether there is one.
func sample(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// startWithMetrics starts a node whose metrics go to reg.
func startWithMetrics(t *testing.T, home string, reg *prometheus.Registry) *running {
	t.Helper()
	n, err := node.New(node.Config{
		Home: home, BlockTime: 100 * time.Millisecond, DisablePEX: true,
		P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), Registry: reg,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rpc.NewServer(n, node.HTTPError, reg, nil))
	return &running{n: n, client: rpc.NewClient(srv.URL), srv: srv}
}

// Two nodes in one process (as a testnet runs them), of chains with the
// same id: each registry shows its own node's chain, CometBFT's metrics
// included, and neither registration collides.
func TestTwoNodesInOneProcessReportTheirOwnMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	genPriv, genAddr := key(1)
	_, bob := key(2)
	var nodes []*running
	var regs []*prometheus.Registry
	for range 2 {
		home := t.TempDir()
		if _, err := node.InitSingle(home, node.GenesisSpec{ChainID: "aitbc-metrics", App: app.Genesis{
			Params:   app.DefaultParams(),
			Accounts: []app.GenesisAccount{{Name: "genesis-ops", Address: genAddr, Balance: 1_000_000 * coin.Unit}},
		}}); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		r := startWithMetrics(t, home, reg)
		defer r.stop(t)
		nodes, regs = append(nodes, r), append(regs, reg)
	}
	a := nodes[0]
	ci, err := a.client.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for i := uint64(0); i < 3; i++ {
		x := &tx.Tx{ChainID: ci.ChainID, Nonce: i, Fee: ci.MinFee, Msg: bank.NewSendMsg(bob, coin.Unit)}
		x.Sign(genPriv)
		raw, _ := x.Encode()
		res, err := a.client.Submit(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		last = res.TxHash
	}
	if got, err := a.client.WaitTx(ctx, last, 50*time.Millisecond); err != nil || got.Status != "committed" {
		t.Fatalf("last transfer: %+v %v", got, err)
	}
	// Height 3 on both: CometBFT observes a block's interval while it
	// finalizes that block, which may still run when height 2 is first
	// seen, so only a later height guarantees block 2's observation.
	for _, r := range nodes {
		if err := r.n.WaitHeight(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}

	if ci, err = a.client.Chain(ctx); err != nil {
		t.Fatal(err)
	}
	sends := map[string]string{"type": bank.TypeSend, "result": node.ResultOK}
	if v, ok := sample(t, regs[0], "aitbc_chain_txs_total", sends); !ok || v != 3 {
		t.Errorf("node A: bank/send ok = %v (present %v), want 3", v, ok)
	}
	if v, ok := sample(t, regs[1], "aitbc_chain_txs_total", sends); ok {
		t.Errorf("node B counts node A's transfers: %v", v)
	}
	for i, reg := range regs {
		chain := map[string]string{"chain_id": "aitbc-metrics"}
		if h, ok := sample(t, reg, "cometbft_consensus_height", chain); !ok || h < 2 {
			t.Errorf("node %d: cometbft_consensus_height = %v (present %v)", i, h, ok)
		}
		// (cometbft_p2p_peers appears once a peer connects.)
		for _, name := range []string{"cometbft_mempool_size", "cometbft_consensus_rounds", "cometbft_consensus_block_interval_seconds", "cometbft_consensus_num_txs"} {
			if _, ok := sample(t, reg, name, chain); !ok {
				t.Errorf("node %d: no %s", i, name)
			}
		}
		// The supply ledger of one scrape balances, as the audit says.
		g, _ := sample(t, reg, "aitbc_chain_supply_coins", map[string]string{"kind": "genesis"})
		m, _ := sample(t, reg, "aitbc_chain_supply_coins", map[string]string{"kind": "minted"})
		bu, _ := sample(t, reg, "aitbc_chain_supply_coins", map[string]string{"kind": "burned"})
		c, _ := sample(t, reg, "aitbc_chain_supply_coins", map[string]string{"kind": "circulating"})
		if g != ci.GenesisTotal.Float() || m < g || c != m-bu {
			t.Errorf("node %d: supply genesis %v minted %v burned %v circulating %v; chain says genesis %v", i, g, m, bu, c, ci.GenesisTotal.Float())
		}
		if _, ok := sample(t, reg, "aitbc_chain_module_account_balance_coins", map[string]string{"account": bank.FeeCollector}); !ok {
			t.Errorf("node %d: no balance for the fee collector", i)
		}
		// How many rechecks there were depends on block timing; both
		// outcomes are always exported.
		for _, outcome := range []string{"kept", "run"} {
			if _, ok := sample(t, reg, "aitbc_chain_rechecks_total", map[string]string{"outcome": outcome}); !ok {
				t.Errorf("node %d: no aitbc_chain_rechecks_total{outcome=%q}", i, outcome)
			}
		}
	}
	// The transfers' fees were burned on A only.
	burnedA, _ := sample(t, regs[0], "aitbc_chain_supply_coins", map[string]string{"kind": "burned"})
	burnedB, _ := sample(t, regs[1], "aitbc_chain_supply_coins", map[string]string{"kind": "burned"})
	if burnedA <= burnedB {
		t.Errorf("burned: node A %v, node B %v; A paid fees", burnedA, burnedB)
	}
}

// A registry can hold one node's metrics: a second node given the same
// one is refused with an error, not a panic.
func TestNodeRefusesARegistryAnotherNodeUses(t *testing.T) {
	reg := prometheus.NewRegistry()
	var homes []string
	for range 2 {
		home := t.TempDir()
		if _, err := node.InitSingle(home, node.GenesisSpec{ChainID: "aitbc-metrics", App: app.Genesis{Params: app.DefaultParams()}}); err != nil {
			t.Fatal(err)
		}
		homes = append(homes, home)
	}
	first, err := node.New(node.Config{Home: homes[0], P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), Registry: reg}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop()
	_, err = node.New(node.Config{Home: homes[1], P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), Registry: reg}, nil)
	if !errors.Is(err, node.ErrMetricsRegistered) {
		t.Fatalf("second node on the same registry: %v, want ErrMetricsRegistered", err)
	}
}

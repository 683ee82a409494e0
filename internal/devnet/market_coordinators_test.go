package devnet_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/walletd"
)

// fixedRunner answers every job with the same two tokens.
type fixedRunner struct{}

func (fixedRunner) Name() string                             { return "fixed" }
func (fixedRunner) Models(context.Context) ([]string, error) { return []string{"tolstoy-1m"}, nil }
func (fixedRunner) Run(_ context.Context, _ *minerproto.Job, onToken func(string) error) (miner.Output, error) {
	if err := onToken("It was"); err != nil {
		return miner.Output{}, err
	}
	return miner.Output{Text: "It was", TokensIn: 2, TokensOut: 2, FinishReason: "stop"}, nil
}

// TestTwoCoordinatorsShareTheMarketplace: two coordinators on one chain
// (the devnet's, and a second with its own store and key) are two
// marketplaces over the same listings and agreements. A provider — the
// devnet's miner — registers its service through coordinator 1; it is
// listed on coordinator 2; a customer of coordinator 2 buys a job of it
// and submits the job there; the provider's miner, now serving
// coordinator 2, runs it; the job settles once, through coordinator 2,
// and the agreement pays the provider its price: every figure to the
// unit, one settlement and one payout, and the books reconcile.
func TestTwoCoordinatorsShareTheMarketplace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	e := start(t, devnet.Config{Miners: 1})
	ctx := t.Context()
	w := e.d.Wallets.Service()
	wait := func(hash string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if res, err := e.node.WaitTx(wctx, hash, 50*time.Millisecond); err != nil || res.Status != "committed" {
			t.Fatalf("tx %s: %+v %v", hash, res, err)
		}
	}
	fund := func(name string, amount coin.Amount) walletd.WalletInfo {
		t.Helper()
		info, err := w.Create(ctx, name, "pw")
		if err != nil {
			t.Fatal(err)
		}
		sub, err := w.Send(ctx, devnet.GenesisWallet, "123", info.Address, amount, 0)
		if err != nil {
			t.Fatal(err)
		}
		wait(sub.TxHash)
		return info
	}
	prov := e.d.Miners[0].Address()

	// Coordinator 2: its own key (paying its own fees) and store.
	c2w := fund("coordinator-2", 100*coin.Unit)
	st, err := store.OpenSQLite(filepath.Join(t.TempDir(), "c2.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c2, err := coordinator.New(ctx, coordinator.Config{Store: st, Chain: rpc.NewClient(e.d.RPCURL()), Address: c2w.Address,
		Sender: walletd.WalletSender{S: w, Name: "coordinator-2", Password: "pw"}, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	c2ctx, stopC2 := context.WithCancel(ctx)
	c2done := make(chan struct{})
	go func() { _ = c2.Run(c2ctx); close(c2done) }()
	defer func() { stopC2(); <-c2done }()
	hs := httptest.NewServer(c2.Handler())
	defer hs.Close()
	call2 := func(method, path, key string, body, out any) error {
		h := http.Header{}
		if key != "" {
			h.Set("X-API-Key", key)
		}
		return httpx.Do(ctx, nil, method, hs.URL+path, h, body, out)
	}

	// The provider registers its service through coordinator 1, paying
	// the listing fee from its deposit there.
	coord1, err := w.Address(ctx, devnet.CoordinatorWallet)
	if err != nil {
		t.Fatal(err)
	}
	dsub, err := w.SignAndSubmit(ctx, devnet.MinerWallet(0), "123", jobs.NewDepositMsg(coord1, coin.Unit), 0)
	if err != nil {
		t.Fatal(err)
	}
	wait(dsub.TxHash)
	_, provKey, err := e.d.Coordinator.AddTenant(ctx, "provider", prov)
	if err != nil {
		t.Fatal(err)
	}
	var reg market.ServiceView
	svc := map[string]any{"service_id": "tolstoy-shared", "name": "Tolstoy inference", "type": "ai-inference", "model": "tolstoy-1m",
		"auto_accept": true, "pricing": map[string]any{"rate_per_job": 3, "currency": "AITBC"}}
	if err := e.call("POST", "/v1/services/register", provKey, svc, &reg); err != nil || reg.Provider != prov {
		t.Fatalf("register through coordinator 1: %+v %v", reg, err)
	}
	var list market.ServiceList
	if err := call2("GET", "/v1/services?model=tolstoy-1m", "", nil, &list); err != nil || len(list.Services) != 1 ||
		list.Services[0].ID != "tolstoy-shared" || list.Services[0].Provider != prov {
		t.Fatalf("coordinator 2 lists %+v %v", list.Services, err)
	}

	// A customer of coordinator 2 buys one job of the service (auto-accepted)
	// and funds a deposit with coordinator 2.
	cust := fund("customer-2", 1000*coin.Unit)
	sub, err := w.SignAndSubmit(ctx, "customer-2", "pw", market.NewBidMsg("tolstoy-shared", 3*coin.Unit, 1, true), 0)
	if err != nil {
		t.Fatal(err)
	}
	wait(sub.TxHash)
	sub, err = w.SignAndSubmit(ctx, "customer-2", "pw", jobs.NewDepositMsg(c2w.Address, 50*coin.Unit), 0)
	if err != nil {
		t.Fatal(err)
	}
	wait(sub.TxHash)
	_, custKey, err := c2.AddTenant(ctx, "customer-2", cust.Address)
	if err != nil {
		t.Fatal(err)
	}

	// The provider's miner leaves coordinator 1 for coordinator 2.
	e.d.StopMiner(0)
	mv, err := miners.Query(ctx, e.node, prov)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.ForHome(e.home, e.cfg.Keystore...)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ks.Unlock(devnet.MinerWallet(0), "123")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := miner.New(miner.Config{Coordinator: hs.URL, Key: key, Chain: e.node, Runner: fixedRunner{},
		Sender: walletd.WalletSender{S: w, Name: devnet.MinerWallet(0), Password: "123"}, Models: mv.Models, PricePer1k: mv.PricePer1k,
		Stake: mv.Stake, GPU: mv.GPU, GPUMemoryMB: mv.GPUMemoryMB, HeartbeatEvery: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stopMiner := context.WithCancel(ctx)
	mdone := make(chan struct{})
	go func() { _ = m2.Run(mctx); close(mdone) }()
	defer func() { stopMiner(); <-mdone }()

	custBefore := e.balance(cust.Address)
	depBefore, err := jobs.QueryDeposit(ctx, e.node, cust.Address, c2w.Address)
	if err != nil {
		t.Fatal(err)
	}
	var v coordinator.JobView
	job := map[string]any{"service_id": "tolstoy-shared", "model": "tolstoy-1m", "max_tokens": 8,
		"requirements": map[string]any{"prompt": "It was"}, "budget": map[string]any{"max_cost": 5, "currency": "AITBC"}}
	if err := call2("POST", "/v1/jobs/create", custKey, job, &v); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	var b market.JobBinding
	for {
		if err := call2("GET", "/v1/jobs/"+v.JobID+"/status", custKey, nil, &v); err != nil {
			t.Fatal(err)
		}
		if v.Status == "settled" {
			if err := e.node.GetJSON(ctx, "/api/v1/market/jobs/"+v.JobID, &b); err == nil && !b.Pending {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %s (%s%s), binding %+v", v.JobID, v.Status, v.Waiting, v.Error, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v.Miner != prov.String() {
		t.Fatalf("the job ran on %s, not on its provider's miner %s", v.Miner, prov)
	}

	// Settled once on chain, through coordinator 2, paid from the deposit.
	cj, err := jobs.QueryJob(ctx, e.node, v.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if cj.Status != "settled" || cj.Coordinator != c2w.Address || cj.Paid+cj.Fee+cj.Commission+cj.Refund != cj.Escrow {
		t.Fatalf("chain job: %+v", cj)
	}
	depAfter, err := jobs.QueryDeposit(ctx, e.node, cust.Address, c2w.Address)
	if err != nil {
		t.Fatal(err)
	}
	if spent := depBefore.Amount - depAfter.Amount; spent != cj.Escrow-cj.Refund {
		t.Fatalf("deposit spent %s, want the job's cost %s", spent, cj.Escrow-cj.Refund)
	}
	if got := e.balance(cust.Address); got != custBefore {
		t.Fatalf("the customer's balance moved by %s: the job is paid from the deposit, the agreement was locked before", custBefore-got)
	}
	// The agreement paid the provider its price, once.
	var pl market.PayoutList
	if err := e.node.GetJSON(ctx, "/api/v1/market/payouts?service=tolstoy-shared", &pl); err != nil || len(pl.Payouts) != 1 ||
		pl.Payouts[0].Amount != 3*coin.Unit || pl.Payouts[0].JobID != v.JobID || pl.Payouts[0].Kind != market.KindDelivery || pl.Payouts[0].Provider != prov {
		t.Fatalf("payouts: %+v %v", pl, err)
	}
	var al market.AgreementList
	if err := e.node.GetJSON(ctx, "/api/v1/market/agreements?service=tolstoy-shared", &al); err != nil || len(al.Agreements) != 1 {
		t.Fatalf("agreements: %+v %v", al, err)
	}
	if a := al.Agreements[0]; a.Jobs != 1 || a.Delivered != 1 || a.Drawn != 3*coin.Unit || a.Remaining != 0 || a.Status != "completed" {
		t.Fatalf("agreement: %+v", a)
	}
}

package devnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/devnet"
)

// TestDevnetHostsItsProvidersAcrossARestart: a wallet of the devnet's
// daemon that lists a service no miner serves gets a miner the devnet runs
// for it — its own wallet, funded once by genesis-ops, registered, naming
// the provider, named by it — and the miner serves the provider's jobs.
// Restarted on the same home, the devnet starts that miner again without
// funding it twice; a wallet that runs its own miner, and a devnet with
// hosting off, get none.
func TestDevnetHostsItsProvidersAcrossARestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	home := t.TempDir()
	e := start(t, devnet.Config{Home: home, Miners: 1})
	ctx := t.Context()
	w := e.d.Wallets.Service()
	info, err := w.Create(ctx, "lister", "123")
	if err != nil {
		t.Fatal(err)
	}
	send := func(name, pw string, msgDo func() (string, error)) {
		t.Helper()
		hash, err := msgDo()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if res, err := e.node.WaitTx(wctx, hash, 50*time.Millisecond); err != nil || res.Status != "committed" {
			t.Fatalf("%s: %+v %v", name, res, err)
		}
	}
	send("fund", "", func() (string, error) {
		s, err := w.Send(ctx, devnet.GenesisWallet, "123", info.Address, 50*coin.Unit, 0)
		return s.TxHash, err
	})
	send("list", "", func() (string, error) {
		s, err := w.SignAndSubmit(ctx, "lister", "123", market.NewCreateMsg(market.ListingSpec{Name: "hosted", Type: market.TypeAIInference, Price: coin.Unit}), 0)
		return s.TxHash, err
	})
	// The devnet miner lists too: it serves itself, and is not hosted.
	send("miner lists", "", func() (string, error) {
		s, err := w.SignAndSubmit(ctx, devnet.MinerWallet(0), "123", market.NewCreateMsg(market.ListingSpec{Name: "own", Type: market.TypeAIInference, Price: coin.Unit}), 0)
		return s.TxHash, err
	})
	hostedAddr, err := w.Address(ctx, devnet.HostedMinerWallet(info.Address))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		pv, perr := market.QueryProvider(ctx, e.node, info.Address)
		if err == nil && perr == nil && len(pv.Serving) == 1 && pv.Serving[0] == hostedAddr && len(pv.Miners) == 1 && pv.Miners[0].Consented {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not hosted: %+v %v %v", pv, perr, err)
		}
		hostedAddr, err = w.Address(ctx, devnet.HostedMinerWallet(info.Address))
	}
	for deadline := time.Now().Add(30 * time.Second); len(e.d.Hosted()) != 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hosted miners: %d", len(e.d.Hosted()))
		}
	}
	if got := e.d.Hosted()[0].Address(); got != hostedAddr {
		t.Fatalf("hosted miner %s, want %s", got, hostedAddr)
	}
	mv, err := miners.Query(ctx, e.node, hostedAddr)
	if err != nil || mv.Provider == nil || *mv.Provider != info.Address || mv.Stake != 100*coin.Unit || mv.Status != "active" {
		t.Fatalf("hosted miner on chain: %+v %v", mv, err)
	}
	minerAddr := e.d.Miners[0].Address()
	if _, err := w.Address(ctx, devnet.HostedMinerWallet(minerAddr)); err == nil {
		t.Fatal("the devnet hosted a provider that runs its own miner")
	}
	genesisBefore, err := e.node.Account(ctx, e.d.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	e.stop()

	// Restarted: the hosted miner runs again, funded once.
	e2 := start(t, devnet.Config{Home: home, Miners: 1})
	for deadline := time.Now().Add(60 * time.Second); len(e2.d.Hosted()) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restarted devnet did not start its hosted miner again")
		}
	}
	if got := e2.d.Hosted()[0].Address(); got != hostedAddr {
		t.Fatalf("restarted hosted miner %s, want %s", got, hostedAddr)
	}
	if g, err := e2.node.Account(ctx, e2.d.Genesis); err != nil || g.Balance != genesisBefore.Balance {
		t.Fatalf("genesis-ops after the restart: %+v %v, want %s (no second funding)", g, err, genesisBefore.Balance)
	}
	e2.stop()

	// Hosting off: the lister's miner is not started again.
	e3 := start(t, devnet.Config{Home: home, Miners: 1, NoHosting: true})
	h := e3.d.Node.Height()
	if err := e3.d.Node.WaitHeight(ctx, h+10); err != nil { // several hosting passes' worth
		t.Fatal(err)
	}
	if n := len(e3.d.Hosted()); n != 0 {
		t.Fatalf("hosting off, yet %d hosted miners", n)
	}
}

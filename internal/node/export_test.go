package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/node"
)

// TestExportStartsANewChainWhereTheOldStopped: a node commits transfers and
// is stopped; its export (refused while it runs) is the genesis of a new
// chain in a fresh home with the same validator key, which starts at the
// next height with the same balances and supply books and passes the audit.
func TestExportStartsANewChainWhereTheOldStopped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := t.TempDir()
	genPriv, genAddr := key(1)
	_, bob := key(2)
	if _, err := node.InitSingle(home, node.GenesisSpec{ChainID: "aitbc-old", App: app.Genesis{
		Params:   app.DefaultParams(),
		Accounts: []app.GenesisAccount{{Name: "genesis-ops", Address: genAddr, Balance: 1_000 * coin.Unit}},
	}}); err != nil {
		t.Fatal(err)
	}
	r := start(t, home)
	var last string
	for i := uint64(0); i < 3; i++ {
		x := &tx.Tx{ChainID: "aitbc-old", Nonce: i, Fee: app.DefaultParams().MinFee, Msg: bank.NewSendMsg(bob, 10*coin.Unit)}
		x.Sign(genPriv)
		raw, _ := x.Encode()
		res, err := r.client.Submit(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		last = res.TxHash
	}
	if got, err := r.client.WaitTx(ctx, last, 50*time.Millisecond); err != nil || got.Status != "committed" {
		t.Fatalf("last transfer: %+v %v", got, err)
	}
	if _, err := node.Export(home, node.ExportOptions{}); !errors.Is(err, node.ErrNodeRunning) {
		t.Fatalf("export of a running node: %v, want ErrNodeRunning", err)
	}
	oldInfo, err := r.client.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.stop(t)

	doc, err := node.Export(home, node.ExportOptions{ChainID: "aitbc-new"})
	if err != nil {
		t.Fatal(err)
	}
	var g app.Genesis
	if err := json.Unmarshal(doc.AppState, &g); err != nil {
		t.Fatal(err)
	}
	h := g.State.Height
	if doc.ChainID != "aitbc-new" || h < oldInfo.Height || doc.InitialHeight != h+1 {
		t.Fatalf("exported genesis: chain %s, initial height %d, state at %d (old chain was at %d)", doc.ChainID, doc.InitialHeight, h, oldInfo.Height)
	}
	if _, err := node.Export(home, node.ExportOptions{Height: h + 1}); !errors.Is(err, app.ErrExportHeight) {
		t.Errorf("export above the chain's height: %v, want ErrExportHeight", err)
	}
	if _, err := node.Export(home, node.ExportOptions{ChainID: "aitbc-old"}); !errors.Is(err, node.ErrSameChainID) {
		t.Errorf("export keeping the old chain id: %v, want ErrSameChainID", err)
	}
	if d, err := node.Export(home, node.ExportOptions{}); err != nil {
		t.Errorf("export with no chain id: %v", err)
	} else if d.ChainID != "aitbc-old-2" {
		t.Errorf("export with no chain id: chain %q, want aitbc-old-2", d.ChainID)
	}

	fresh := t.TempDir()
	// The validator keeps its keys and its signing state (which guards it
	// against signing a height twice); the chain's data is new.
	for _, f := range []string{"config/priv_validator_key.json", "config/node_key.json", "data/priv_validator_state.json"} {
		b, err := os.ReadFile(filepath.Join(home, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(fresh, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fresh, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := doc.SaveAs(node.GenesisFile(fresh)); err != nil {
		t.Fatal(err)
	}
	n := start(t, fresh)
	defer n.stop(t)
	if err := n.n.WaitHeight(ctx, doc.InitialHeight+1); err != nil {
		t.Fatal(err)
	}
	info, err := n.client.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.ChainID != "aitbc-new" || info.GenesisTotal != oldInfo.GenesisTotal || info.Minted <= oldInfo.Minted || info.Burned < oldInfo.Burned ||
		info.Supply != info.GenesisTotal+info.Minted-info.Burned {
		t.Fatalf("new chain info %+v, old %+v", info, oldInfo)
	}
	if b, _ := n.client.Account(ctx, bob); b.Balance != 30*coin.Unit {
		t.Errorf("bob on the new chain: %s, want 30", b.Balance)
	}
	if o, want := func() coin.Amount { a, _ := n.client.Account(ctx, genAddr); return a.Balance }(), 970*coin.Unit-3*app.DefaultParams().MinFee; o != want {
		t.Errorf("genesis-ops on the new chain: %s, want %s", o, want)
	}
	au, err := n.client.Audit(ctx)
	if err != nil || !au.OK {
		t.Fatalf("audit on the new chain: %+v %v", au, err)
	}
	// The old chain's transactions cannot run on the new one: the chain id
	// differs, and the nonces carried over.
	x := &tx.Tx{ChainID: "aitbc-new", Nonce: 3, Fee: app.DefaultParams().MinFee, Msg: bank.NewSendMsg(bob, coin.Unit)}
	x.Sign(genPriv)
	raw, _ := x.Encode()
	res, err := n.client.Submit(ctx, raw)
	if err != nil {
		t.Fatalf("genesis-ops's next nonce (3) on the new chain: %v", err)
	}
	if got, err := n.client.WaitTx(ctx, res.TxHash, 50*time.Millisecond); err != nil || got.Status != "committed" {
		t.Fatalf("transfer on the new chain: %+v %v", got, err)
	}
}

func TestNextChainID(t *testing.T) {
	for old, want := range map[string]string{
		"aitbc-devnet-1": "aitbc-devnet-2",
		"aitbc-9":        "aitbc-10",
		"aitbc":          "aitbc-2",
		"aitbc-":         "aitbc--2",
		"aitbc-test-007": "aitbc-test-007-2", // not a count
		"aitbc-x1":       "aitbc-x1-2",
	} {
		if got := node.NextChainID(old); got != want {
			t.Errorf("NextChainID(%q) = %q, want %q", old, got, want)
		}
	}
}

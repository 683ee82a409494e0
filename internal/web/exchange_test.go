package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/devnet"
)

// TestExchangePage: an order genesis-ops places shows in /exchange's book
// as the module holds it; signed out the page offers sign-in, signed in it
// lists the wallet's open order; once cancelled it is gone from both.
func TestExchangePage(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	svc := e.d.Wallets.Service()
	// A price no other test uses, so the row is this order's.
	price := uint64(3_000_000 + time.Now().UnixNano()%1000)
	sub, err := svc.SignAndSubmit(ctx, devnet.GenesisWallet, "123", chainex.NewPlaceMsg(chainex.Sell, false, price, uint64(7*coin.Unit), 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	if tx := e.committed(t, sub.TxHash); tx.Status != "committed" {
		t.Fatalf("place: %s %s", tx.Status, tx.Error)
	}
	ov, err := chainex.QueryOrders(ctx, e.node, sub.From)
	if err != nil || len(ov.Orders) == 0 {
		t.Fatalf("orders %v %+v", err, ov)
	}
	id := ov.Orders[len(ov.Orders)-1].ID
	row := fmt.Sprintf("<td>ask</td><td>%s</td><td>7</td>", chainex.FormatPrice(price))

	c := client()
	a := get(t, c, e.web+"/exchange")
	if a.status != 200 || !strings.Contains(a.body, row) || !strings.Contains(a.body, "Sign in</a> with your wallet") {
		t.Fatalf("/exchange signed out: %d, want the ask row %q\n%s", a.status, row, a.body)
	}
	signIn(t, c, e.web, devnet.GenesisWallet)
	mine := fmt.Sprintf("<tr><td>%d</td><td>sell</td><td>%s</td><td>7</td><td>0</td>", id, chainex.FormatPrice(price))
	if a := get(t, c, e.web+"/exchange"); !strings.Contains(a.body, mine) {
		t.Fatalf("/exchange signed in lacks the wallet's order %q\n%s", mine, a.body)
	}

	sub, err = svc.SignAndSubmit(ctx, devnet.GenesisWallet, "123", chainex.NewCancelMsg(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	if tx := e.committed(t, sub.TxHash); tx.Status != "committed" {
		t.Fatalf("cancel: %s %s", tx.Status, tx.Error)
	}
	if a := get(t, c, e.web+"/exchange"); strings.Contains(a.body, row) || strings.Contains(a.body, mine) {
		t.Fatalf("/exchange still shows the cancelled order")
	}
}

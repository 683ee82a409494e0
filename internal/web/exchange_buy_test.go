package web_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/chromedp/chromedp"

	"github.com/aitbc/aitbc/internal/btcnode"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

// TestExchangeBuyFlowPage: /exchange's buy flow on a devnet --btc with the
// market maker: the quote for 1,000 AITBC from the maker's asks (and the
// refusals of a book that cannot fill it or a bad amount); signed in, the
// wallet without a deposit address is told how to get one; with one, the
// page shows it with a QR code of the BIP 21 URI for the BTC still to
// send; once the deposit is minted, the deposit row says so and the
// wallet's btc is enough.
func TestExchangeBuyFlowPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and a Bitcoin node")
	}
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: t.TempDir(), BlockTime: 150 * time.Millisecond, CheckInvariants: true, Miners: -1,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off", WebListen: "127.0.0.1:0", ExchangeListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", p),
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		BTC:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	node := rpc.NewClient(d.RPCURL())
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	until("the market maker's asks", func() bool {
		b, err := chainex.QueryBook(ctx, node, 10)
		return err == nil && len(b.Asks) == 5 && b.Asks[0].Orders == 1
	})
	c := client()
	page := d.WebURL() + "/exchange"
	a := get(t, c, page+"?amount=1000")
	for _, want := range []string{`<dd id="buy-expected">0.01005 BTC</dd>`, `<span id="buy-needed">0.0101505</span>`, "999 AITBC (fee 1 AITBC)",
		`<a href="/signin?next=/exchange">Sign in</a> to see your deposit address`, `<a href="/exchange" aria-current="page">Exchange</a>`} {
		if a.status != 200 || !strings.Contains(a.body, want) {
			t.Fatalf("/exchange?amount=1000 signed out: %d, lacks %q\n%s", a.status, want, a.body)
		}
	}
	if a := get(t, c, page+"?amount=100000"); !strings.Contains(a.body, `id="buy-error">the book cannot fill`) {
		t.Fatalf("a buy beyond the asks:\n%s", a.body)
	}
	if a := get(t, c, page+"?amount=-3"); a.status != 200 || !strings.Contains(a.body, "The amount must be a positive number of AITBC.") {
		t.Fatalf("a bad amount: %d\n%s", a.status, a.body)
	}

	signIn(t, c, d.WebURL(), devnet.GenesisWallet)
	if a := get(t, c, page+"?amount=1000"); !strings.Contains(a.body, `id="buy-no-address"`) || strings.Contains(a.body, `id="deposit-qr"`) {
		t.Fatalf("signed in without a deposit address:\n%s", a.body)
	}
	sub, err := d.Wallets.Service().SignAndSubmit(ctx, devnet.GenesisWallet, "123", cb.NewAddressMsg(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if tx, err := node.WaitTx(ctx, sub.TxHash, 50*time.Millisecond); err != nil || tx.Status != "committed" {
		t.Fatalf("bridge/address: %v %+v", err, tx)
	}
	av, err := cb.QueryAddress(ctx, node, d.Genesis)
	if err != nil {
		t.Fatal(err)
	}
	a = get(t, c, page+"?amount=1000")
	uri := "bitcoin:" + av.Address + "?amount=0.0101505"
	for _, want := range []string{`<p class="mono" id="deposit-address">` + av.Address + `</p>`, `<svg class="qr" id="deposit-qr"`, `aria-label="QR code of ` + uri + `"`,
		`<strong id="buy-short">0.0101505 BTC</strong>`, "No deposits yet."} {
		if !strings.Contains(a.body, want) {
			t.Fatalf("/exchange with a deposit address lacks %q\n%s", want, a.body)
		}
	}

	// The same in headless Chromium, signed in through the form: the
	// deposit address and its QR code pass axe-core and fit a phone's
	// width; the quote form asks again for another amount.
	b := newTab(t)
	b.open(d.WebURL(), "/signin?next="+url.QueryEscape("/exchange?amount=1000"))
	b.follow("sign in", chromedp.SendKeys(chromedp.ID("s-wallet"), devnet.GenesisWallet), chromedp.SendKeys(chromedp.ID("s-pw"), "123"),
		chromedp.Submit(chromedp.ID("s-pw")))
	if got := b.text("#deposit-address"); got != av.Address {
		t.Fatalf("deposit address in the browser %q, want %s", got, av.Address)
	}
	b.do("the QR code", chromedp.WaitVisible(chromedp.ID("deposit-qr")))
	b.check("exchange-buy")
	b.follow("quote 500", chromedp.SetValue(chromedp.ID("buy-amount"), "500"), chromedp.Submit(chromedp.ID("buy-amount")))
	if got := b.text("#buy-needed"); got != "0.00507525" || !strings.Contains(b.location(), "amount=500") {
		t.Fatalf("quote for 500 AITBC: needs %q at %s", got, b.location())
	}

	to, err := btcutil.DecodeAddress(av.Address, btcnode.Params())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.BTC.Wallet.Send(to, 1_015_050, 2_000); err != nil {
		t.Fatal(err)
	}
	until("the deposit minted", func() bool {
		v, err := bank.QueryBalances(ctx, node, d.Genesis)
		return err == nil && v.Balances[cb.Denom] == 1_015_050
	})
	a = get(t, c, page+"?amount=1000")
	if !strings.Contains(a.body, `<span id="buy-have">0.0101505</span>, enough for this buy.`) || strings.Contains(a.body, `id="deposit-qr"`) ||
		!strings.Contains(a.body, "<td>0.0101505</td><td>minted</td><td>") {
		t.Fatalf("/exchange after the deposit:\n%s", a.body)
	}
}

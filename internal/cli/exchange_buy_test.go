package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/btcnode"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// TestBuyWithBitcoinOnADevnet is the seed's purchase on `aitbc devnet
// --btc` with the market maker, and the round trip after it: `aitbc
// exchange buy --amount 1000 --pay btc` quotes the maker's asks and shows
// the deposit address; the devnet's test Bitcoin wallet pays it; the
// bridge mints it; the market buy fills against the maker's best ask, to
// the unit and the satoshi. The maker, now holding btc, quotes bids; the
// buyer sells AITBC into them at market and withdraws all its btc to a
// fresh Bitcoin address, which receives it less the bridge's fee. A buy
// the book cannot fill within the slippage fails before anything moves.
// Every block is audited (CheckInvariants), and so are the reserves.
func TestBuyWithBitcoinOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and a Bitcoin node")
	}
	clearEnv(t)
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off", ExchangeListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		BTC:      true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
	node := d.Node.Client()

	e.ok("create", "--name", "buyer", "--password", "123")
	e.ok("send", "--from", "genesis-ops", "--to", e.addrOf("buyer"), "--amount", "10", "--wait", "--password", "123")
	buyer, err := address.Parse(e.addrOf("buyer"))
	if err != nil {
		t.Fatal(err)
	}
	balances := func(a address.Address) (aitbc, btc uint64) {
		v, err := bank.QueryBalances(ctx, node, a)
		if err != nil {
			t.Fatal(err)
		}
		return uint64(v.Amount("aitbc")), uint64(v.Amount(cb.Denom))
	}
	var book chainex.BookView
	waitBridge(t, "the market maker's five asks", func() bool {
		b, err := chainex.QueryBook(ctx, node, 10)
		book = b
		return err == nil && len(b.Asks) == 5 && b.Asks[0].Orders == 1
	})
	if book.Asks[0].PriceMsat != 1_005_000 || book.Asks[0].Amount != 1000*coin.Unit {
		t.Fatalf("best ask %+v", book.Asks[0])
	}

	// Cannot fill: more than every ask, or 2,000 AITBC within 0.1% of the
	// best ask (its level holds 1,000). Nothing is asked of the chain.
	e.fails("cannot fill", "exchange", "buy", "--amount", "100000", "--pay", "btc", "--wallet", "buyer", "--password", "123")
	e.fails("cannot fill", "exchange", "buy", "--amount", "2000", "--max-slippage", "0.1", "--pay", "btc", "--wallet", "buyer", "--password", "123")
	e.fails("bridge carries btc only", "exchange", "buy", "--amount", "1000", "--pay", "eth", "--wallet", "buyer")
	if a, b := balances(buyer); a != 10*uint64(coin.Unit) || b != 0 {
		t.Fatalf("refused buys moved money: %d aitbc, %d btc", a, b)
	}

	// The deposit address first (one transaction), so that the buy's only
	// AITBC transaction is its order.
	e.ok("exchange", "deposit-address", "--wallet", "buyer", "--password", "123")
	aitbcBefore, _ := balances(buyer)

	pr, pw := io.Pipe()
	var stdout bytes.Buffer
	done := make(chan error, 1)
	go func() {
		root := cli.NewRoot("aitbc", strings.NewReader(""), &stdout, pw)
		root.SetArgs([]string{"--home", home, "--node", d.RPCURL(), "--wallet-url", d.WalletURL(), "exchange", "buy",
			"--amount", "1000", "--pay", "btc", "--wallet", "buyer", "--password", "123", "--timeout", "2m", "-o", "json"})
		err := root.ExecuteContext(ctx)
		pw.Close()
		done <- err
	}()
	sendRE := regexp.MustCompile(`send ([0-9.]+) BTC \(regtest\) to (bcrt1\S+)`)
	var progress strings.Builder
	sc := bufio.NewScanner(pr)
	var depositBTC, depositAddr string
	for depositAddr == "" && sc.Scan() {
		progress.WriteString(sc.Text() + "\n")
		if m := sendRE.FindStringSubmatch(sc.Text()); m != nil {
			depositBTC, depositAddr = m[1], m[2]
		}
	}
	if depositAddr == "" {
		t.Fatalf("buy showed no deposit address:\n%s", progress.String())
	}
	drained := make(chan struct{})
	go func() {
		for sc.Scan() {
			progress.WriteString(sc.Text() + "\n")
		}
		close(drained)
	}()
	// worst price 1% above the best ask: 1,000 AITBC × 0.0000101505 BTC
	if depositBTC != "0.01015050" && depositBTC != "0.0101505" {
		t.Fatalf("deposit of %s BTC asked; want 0.0101505", depositBTC)
	}
	e.ok("exchange", "btc-faucet", "--to", depositAddr, "--amount", depositBTC)
	err = <-done
	<-drained
	if err != nil {
		t.Fatalf("buy: %v\n%s", err, progress.String())
	}
	for _, want := range []string{"1000 AITBC at 0.00001005", "holding 0 of", "enough", "market buy of 1000 AITBC"} {
		if !strings.Contains(progress.String(), want) {
			t.Fatalf("buy's progress lacks %q:\n%s", want, progress.String())
		}
	}
	var res struct {
		Deposit struct {
			AmountSat uint64 `json:"amount_sat"`
		} `json:"deposit"`
		Fill struct {
			TxHash      string      `json:"tx_hash"`
			Bought      coin.Amount `json:"bought"`
			Fee         coin.Amount `json:"fee"`
			Received    coin.Amount `json:"received"`
			SpentSat    uint64      `json:"spent_sat"`
			PriceMsat   uint64      `json:"price_msat"`
			RefundedSat uint64      `json:"refunded_sat"`
			Complete    bool        `json:"complete"`
		} `json:"fill"`
		BalanceSat uint64 `json:"btc_after_sat"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	f := res.Fill
	if res.Deposit.AmountSat != 1_015_050 || !f.Complete || f.Bought != 1000*coin.Unit || f.PriceMsat != 1_005_000 ||
		f.SpentSat != 1_005_000 || f.Fee != coin.Unit || f.Received != 999*coin.Unit || f.RefundedSat != 10_050 || res.BalanceSat != 10_050 {
		t.Fatalf("buy result %s", stdout.String())
	}
	placeTx, err := node.Tx(ctx, f.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	aitbcAfter, btcAfter := balances(buyer)
	if aitbcAfter != aitbcBefore+999*uint64(coin.Unit)-uint64(placeTx.Fee) || btcAfter != 10_050 {
		t.Fatalf("buyer holds %d aitbc, %d btc; want %d and 10050", aitbcAfter, btcAfter, aitbcBefore+999*uint64(coin.Unit)-uint64(placeTx.Fee))
	}

	// The maker sold for btc: it quotes bids now, and a market sell fills.
	waitBridge(t, "the market maker's bids", func() bool {
		b, err := chainex.QueryBook(ctx, node, 10)
		book = b
		return err == nil && len(b.Bids) > 0 && b.Bids[0].PriceMsat == 995_000
	})
	if book.Bids[0].Amount != 1000*coin.Unit {
		t.Fatalf("best bid %+v; want 1000 AITBC at 0.5%% below 0.00001", book.Bids[0])
	}
	var sold struct {
		TxHash string `json:"tx_hash"`
		Height int64  `json:"height"`
	}
	if err := json.Unmarshal([]byte(e.ok("exchange", "order", "--side", "sell", "--type", "market", "--amount", "500", "--slippage", "1",
		"--wallet", "buyer", "--password", "123", "--wait", "-o", "json")), &sold); err != nil {
		t.Fatal(err)
	}
	sellTx, err := node.Tx(ctx, sold.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	aitbcSold, btcSold := balances(buyer)
	// 500 AITBC at 0.00000995 = 497,500 sat; the seller pays 0.5 AITBC fee
	if btcSold != 10_050+497_500 || aitbcSold != aitbcAfter-500*uint64(coin.Unit)-uint64(coin.Unit)/2-uint64(sellTx.Fee) {
		t.Fatalf("after the sell the buyer holds %d aitbc, %d btc", aitbcSold, btcSold)
	}

	dest, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	e.ok("exchange", "withdraw", "--asset", "btc", "--amount", "0.0050755", "--to", dest.Addr.EncodeAddress(), "--wallet", "buyer", "--password", "123")
	var wds []cb.WithdrawalView
	if err := json.Unmarshal([]byte(e.ok("exchange", "withdrawals", "--wallet", "buyer", "--wait", "1m", "-o", "json")), &wds); err != nil {
		t.Fatal(err)
	}
	if len(wds) != 1 || wds[0].Status != "paid" || wds[0].Amount != 507_550 {
		t.Fatalf("withdrawals %+v", wds)
	}
	dest.Attach(d.BTC.Node)
	waitBridge(t, "the withdrawal on Bitcoin", func() bool {
		bal, err := dest.Balance()
		return err == nil && bal == int64(507_550-wds[0].Fee)
	})
	if _, b := balances(buyer); b != 0 {
		t.Fatalf("buyer still holds %d btc", b)
	}
	var au struct {
		OK         bool `json:"ok"`
		Invariants []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"invariants"`
	}
	if err := json.Unmarshal([]byte(e.ok("chain", "audit", "-o", "json")), &au); err != nil {
		t.Fatal(err)
	}
	reserves := false
	for _, in := range au.Invariants {
		reserves = reserves || in.Name == "bridge/reserves" && in.OK
	}
	if !au.OK || !reserves {
		t.Fatalf("chain audit %+v", au)
	}
}

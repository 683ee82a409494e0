package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// TestExchangeOnADevnet: the devnet serves the exchange API and its market
// maker quotes asks around 1 BTC = 100,000 AITBC; genesis-ops places a
// sell with `aitbc exchange order --wait`, sees it in `exchange orders`
// and `exchange book`, cancels it; bad orders get the chain's refusals.
func TestExchangeOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off", ExchangeListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}

	// The market maker's five asks appear once genesis-ops' funding lands.
	var book chainex.BookView
	for deadline := time.Now().Add(60 * time.Second); ; {
		if err := json.Unmarshal([]byte(e.ok("exchange", "book", "-o", "json")), &book); err != nil {
			t.Fatal(err)
		}
		if len(book.Asks) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no market maker quotes: %+v", book)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if book.Asks[0].Price != "0.00001005" || book.Asks[0].Amount != 1000*coin.Unit {
		t.Fatalf("best ask %+v, want 1000 AITBC at 0.5%% above 0.00001", book.Asks[0])
	}
	if out := e.ok("exchange", "book"); !strings.Contains(out, "ask 0.00001005") {
		t.Fatalf("book:\n%s", out)
	}

	var placed struct {
		TxHash string             `json:"tx_hash"`
		Order  *chainex.OrderView `json:"order"`
	}
	out := e.ok("exchange", "order", "--side", "sell", "--price", "0.00002", "--amount", "10", "--wallet", "genesis-ops", "--password", "123", "--wait", "-o", "json")
	if err := json.Unmarshal([]byte(out), &placed); err != nil || placed.Order == nil || placed.Order.Amount != 10*coin.Unit {
		t.Fatalf("order: %v %s", err, out)
	}
	var mine chainex.OrdersView
	if err := json.Unmarshal([]byte(e.ok("exchange", "orders", "--wallet", "genesis-ops", "-o", "json")), &mine); err != nil || len(mine.Orders) != 1 || mine.Orders[0].ID != placed.Order.ID {
		t.Fatalf("orders: %v %+v", err, mine)
	}
	e.fails("only the order's owner may cancel it", "exchange", "cancel", "--order-id", "1", "--wallet", "genesis-ops", "--password", "123")
	e.fails("below the minimum amount", "exchange", "order", "--side", "sell", "--price", "0.00002", "--amount", "0.5", "--wallet", "genesis-ops", "--password", "123")
	e.fails("needs more than the account holds", "exchange", "order", "--side", "buy", "--price", "0.00001", "--amount", "10", "--wallet", "genesis-ops", "--password", "123")
	e.fails("price must be positive", "exchange", "order", "--side", "sell", "--price", "0", "--amount", "10", "--wallet", "genesis-ops", "--password", "123")
	e.ok("exchange", "cancel", "--order-id", itoa(placed.Order.ID), "--wallet", "genesis-ops", "--password", "123")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := json.Unmarshal([]byte(e.ok("exchange", "orders", "--wallet", "genesis-ops", "-o", "json")), &mine); err != nil {
			t.Fatal(err)
		}
		if len(mine.Orders) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order not cancelled: %+v", mine)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var tk chainex.Ticker
	if err := json.Unmarshal([]byte(e.ok("exchange", "ticker", "-o", "json")), &tk); err != nil || tk.BestAsk != "0.00001005" {
		t.Fatalf("ticker %v %+v", err, tk)
	}
	// The exchange API serves the same book.
	resp, err := http.Get(d.ExchangeURL() + "/api/exchange/book")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var apiBook chainex.BookView
	if err := json.NewDecoder(resp.Body).Decode(&apiBook); err != nil || len(apiBook.Asks) != 5 {
		t.Fatalf("API book %v %+v", err, apiBook)
	}
	e.ok("chain", "audit")

	// Other assets: chain info lists btc's supply (none bridged here);
	// send --asset btc builds the btc transfer, which the chain refuses
	// for want of btc; an unknown asset is refused before signing.
	if out := e.ok("chain", "info"); !strings.Contains(out, "asset BTC       supply 0 (minted 0, burned 0; minters bridge)") {
		t.Fatalf("chain info:\n%s", out)
	}
	maker := e.ok("wallet", "show", "--wallet", devnet.MakerWallet, "-o", "json")
	var mk struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(maker), &mk); err != nil || mk.Address == "" {
		t.Fatalf("wallet show: %v %s", err, maker)
	}
	e.fails("has 0 btc, needs 0.001", "send", "--from", "genesis-ops", "--to", mk.Address, "--amount", "0.001", "--asset", "btc", "--password", "123")
	e.fails("no such denomination", "send", "--from", "genesis-ops", "--to", mk.Address, "--amount", "1", "--asset", "doge", "--password", "123")
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

package devnet_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/rpc"
)

func newAddr(t *testing.T) address.Address {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return address.FromPubKey(pub)
}

// TestFaucetOverHTTP asks a real devnet's node for test AITBC over POST
// /api/v1/faucet: the drip is paid on chain to the unit (its fee by the
// faucet), the chain's 24 h allowance per address is enforced with the
// time left, and the client is rate-limited after 5 requests.
func TestFaucetOverHTTP(t *testing.T) {
	e := start(t, devnet.Config{Miners: -1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := e.d.RPCURL() + "/api/v1/faucet"
	ask := func(body string) (int, rpc.FaucetResult, httpx.ErrorBody, http.Header) {
		t.Helper()
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		var res rpc.FaucetResult
		var eb httpx.ErrorBody
		_ = json.Unmarshal(raw, &res)
		_ = json.Unmarshal(raw, &eb)
		return resp.StatusCode, res, eb, resp.Header
	}
	committed := func(h string) rpc.Transaction {
		t.Helper()
		v, err := e.node.WaitTx(ctx, h, 50*time.Millisecond)
		if err != nil || v.Status != "committed" || v.Type != faucet.TypeDrip {
			t.Fatalf("drip %s: %v %+v", h, err, v)
		}
		return v
	}
	var before faucet.View
	if err := e.node.GetJSON(ctx, "/api/v1/faucet", &before); err != nil {
		t.Fatal(err)
	}
	a, b, c := newAddr(t), newAddr(t), newAddr(t)

	// 1: the whole allowance.
	st, res, eb, _ := ask(`{"address":"` + a.String() + `"}`)
	if st != http.StatusAccepted || res.TxHash == "" || res.Address != a {
		t.Fatalf("first drip: %d %+v %+v", st, res, eb)
	}
	tx1 := committed(res.TxHash)
	if got := e.balance(a); got != 1000*coin.Unit {
		t.Fatalf("a holds %s, want 1000", got)
	}
	// 2: the same address again: the chain refuses, with the time left.
	st, _, eb, _ = ask(`{"address":"` + a.String() + `"}`)
	if st != http.StatusBadRequest || eb.Error.Code != "faucet_limit" || !strings.Contains(eb.Error.Message, "0 AITBC of its 1000 left until") || !(strings.Contains(eb.Error.Message, "(in 23h") || strings.Contains(eb.Error.Message, "(in 24h0m0s)")) {
		t.Fatalf("second drip to a: %d %+v", st, eb)
	}
	// 3, 4: part of the allowance, then the rest.
	st, res, eb, _ = ask(`{"address":"` + b.String() + `","amount":"250"}`)
	if st != http.StatusAccepted || res.Amount != 250*coin.Unit {
		t.Fatalf("250 to b: %d %+v %+v", st, res, eb)
	}
	tx3 := committed(res.TxHash)
	st, res, eb, _ = ask(`{"address":"` + b.String() + `","amount":"750"}`)
	if st != http.StatusAccepted {
		t.Fatalf("750 more to b: %d %+v", st, eb)
	}
	tx4 := committed(res.TxHash)
	if got := e.balance(b); got != 1000*coin.Unit {
		t.Fatalf("b holds %s, want 1000", got)
	}
	// 5: above the allowance.
	st, _, eb, _ = ask(`{"address":"` + c.String() + `","amount":"1000.000001"}`)
	if st != http.StatusBadRequest || eb.Error.Code != "invalid_faucet_amount" {
		t.Fatalf("1000.000001 to c: %d %+v", st, eb)
	}
	// 6: this client has had its 5.
	st, _, eb, h := ask(`{"address":"` + c.String() + `"}`)
	if st != http.StatusTooManyRequests || eb.Error.Code != "rate_limited" || h.Get("Retry-After") == "" {
		t.Fatalf("sixth request: %d %+v Retry-After %q", st, eb, h.Get("Retry-After"))
	}
	if got := e.balance(c); got != 0 {
		t.Fatalf("c holds %s after refusals, want 0", got)
	}

	// The faucet's books, to the unit: it gave 2,000 and paid the three
	// drips' fees; the key that signed them holds nothing and paid nothing.
	var after faucet.View
	if err := e.node.GetJSON(ctx, "/api/v1/faucet", &after); err != nil {
		t.Fatal(err)
	}
	fees := tx1.Fee + tx3.Fee + tx4.Fee
	if fees == 0 || after.Given-before.Given != 2000*coin.Unit || after.Fees-before.Fees != fees ||
		before.Balance-after.Balance != 2000*coin.Unit+fees {
		t.Fatalf("faucet before %+v after %+v, fees %s", before, after, fees)
	}
	if tx1.From != tx3.From || e.balance(tx1.From) != 0 {
		t.Fatalf("drips signed by %s and %s (balance %s): want one key holding nothing", tx1.From, tx3.From, e.balance(tx1.From))
	}
}

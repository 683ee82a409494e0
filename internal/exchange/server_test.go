package exchange_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/exchange"
	"github.com/aitbc/aitbc/internal/walletd"
)

// chain is the real bank and exchange module over in-memory state: the
// node the server reads (its routes, as the node's REST server runs them)
// and the chain the wallets' transactions execute on.
type chain struct {
	t    *testing.T
	mu   sync.Mutex
	kv   *state.Cache
	bank *bank.Keeper
	k    *chainex.Keeper
	h    int64
}

func newChain(t *testing.T) *chain {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bank.NewKeeper()
	b.RegisterDenom(bank.Denom{Name: "btc", Decimals: 8, Minters: []string{"test"}})
	k := chainex.NewKeeper(b)
	b.AddModuleAccounts(k.Accounts()...)
	c := &chain{t: t, kv: state.NewCache(st), bank: b, k: k, h: 1}
	if err := k.InitGenesis(&module.Context{KV: c.kv}, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// GetJSON implements module.Getter by running the module's route, and
// answers refusals the way the node's REST server does.
func (c *chain) GetJSON(_ context.Context, path string, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, _ := url.Parse(path)
	for _, rt := range append(c.k.Routes(), c.bank.Routes()...) {
		pv, ok := match(rt.Path, u.Path)
		if !ok {
			continue
		}
		v, err := rt.Handle(module.Query{State: c.kv, Height: c.h - 1, Time: time.Unix(1_700_000_000, 0)}, req{pv, u.Query()})
		if err != nil {
			return err
		}
		b, _ := json.Marshal(v)
		return json.Unmarshal(b, out)
	}
	return fmt.Errorf("no route %s", path)
}

func (c *chain) endBlock() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.k.EndBlock(&module.Context{KV: c.kv, Height: c.h, Time: time.Unix(1_700_000_000, 0)}); err != nil {
		c.t.Fatal(err)
	}
	c.h++
}

type req struct {
	pv map[string]string
	q  url.Values
}

func (r req) PathValue(n string) string { return r.pv[n] }
func (r req) Param(n string) string     { return r.q.Get(n) }

func match(pattern, path string) (map[string]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	pv := map[string]string{}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			pv[strings.Trim(ps[i], "{}")] = xs[i]
		} else if ps[i] != xs[i] {
			return nil, false
		}
	}
	return pv, true
}

// wallets are named keys whose transactions execute on the chain, as the
// wallet daemon's sign-and-submit followed by a block would.
type wallets struct {
	c    *chain
	keys map[string]ed25519.PrivateKey
}

func (w *wallets) Address(_ context.Context, name string) (address.Address, error) {
	k, ok := w.keys[name]
	if !ok {
		return address.Address{}, fmt.Errorf("no wallet %s", name)
	}
	return address.FromPubKey(k.Public().(ed25519.PublicKey)), nil
}

func (w *wallets) SignAndSubmit(ctx context.Context, name, _ string, msg tx.Msg, _ coin.Amount) (walletd.Submitted, error) {
	a, err := w.Address(ctx, name)
	if err != nil {
		return walletd.Submitted{}, err
	}
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	kv := w.c.kv.Child()
	if err := w.c.k.Exec(&module.Context{KV: kv, Height: w.c.h, Signer: a}, msg); err != nil {
		return walletd.Submitted{}, err
	}
	kv.Write()
	return walletd.Submitted{TxHash: "T", Status: "pending", From: a, Type: msg.Type}, nil
}

type env struct {
	t   *testing.T
	c   *chain
	w   *wallets
	srv *httptest.Server
	now time.Time
}

func newEnv(t *testing.T) *env {
	c := newChain(t)
	e := &env{t: t, c: c, w: &wallets{c: c, keys: map[string]ed25519.PrivateKey{}}, now: time.Unix(1_700_000_000, 0)}
	s, err := exchange.NewServer(exchange.Config{Node: c, Wallets: e.w, Poll: 5 * time.Millisecond, AuthRate: 1000, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// The feed reads the chain's store: it stops before the store closes
	// (cleanups run last-registered first).
	t.Cleanup(func() { cancel(); <-done })
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	go func() { defer close(done); s.RunFeed(ctx) }()
	return e
}

func (e *env) newWallet(name string, aitbc coin.Amount, sats uint64) address.Address {
	_, priv, _ := ed25519.GenerateKey(nil)
	e.w.keys[name] = priv
	a, _ := e.w.Address(context.Background(), name)
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	if aitbc > 0 {
		_ = e.c.bank.Mint(e.c.kv, a, aitbc)
	}
	if sats > 0 {
		_ = e.c.bank.MintDenom(e.c.kv, "test", a, "btc", coin.Amount(sats))
	}
	return a
}

// call sends a JSON request and returns the status and decoded body.
func (e *env) call(method, path, token string, body any, out any) int {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type apiErr struct {
	Error struct{ Code, Message string } `json:"error"`
}

// signIn does what a client does: ask for a challenge, have the wallet
// sign it in the sign-in domain, send the signature back.
func (e *env) signIn(name string) exchange.Session {
	e.t.Helper()
	a, _ := e.w.Address(context.Background(), name)
	var ch exchange.Challenge
	if st := e.call("POST", "/api/exchange/auth/challenge", "", exchange.ChallengeRequest{Address: a.String()}, &ch); st != 200 {
		e.t.Fatalf("challenge: %d", st)
	}
	var s exchange.Session
	if st := e.call("POST", "/api/exchange/auth/login", "", e.sign(name, ch), &s); st != 200 || s.Address != a {
		e.t.Fatalf("login: %d %+v", st, s)
	}
	return s
}

func (e *env) sign(name string, ch exchange.Challenge) exchange.LoginRequest {
	priv := e.w.keys[name]
	h := sha256.Sum256(append([]byte(ch.Domain+"\x00"), ch.Payload...))
	return exchange.LoginRequest{ChallengeID: ch.ID, PubKey: hex.EncodeToString(priv.Public().(ed25519.PublicKey)), Signature: hex.EncodeToString(ed25519.Sign(priv, h[:]))}
}

// TestSignInBySignedChallengeGivesA24hSession: the wallet's signature
// over a one-time challenge opens a session that lasts 24 hours; a wrong
// signature, a replayed challenge and an expired session are refused.
func TestSignInBySignedChallengeGivesA24hSession(t *testing.T) {
	e := newEnv(t)
	a := e.newWallet("alice", 0, 0)
	e.newWallet("mallory", 0, 0)
	s := e.signIn("alice")
	if !s.Expires.Equal(e.now.Add(24 * time.Hour)) {
		t.Fatalf("session expires %s, want 24 h from now", s.Expires)
	}
	var got exchange.Session
	if st := e.call("GET", "/api/exchange/auth/session", s.Token, nil, &got); st != 200 || got.Address != a {
		t.Fatalf("session: %d %+v", st, got)
	}
	// Mallory signs a challenge issued for alice's address.
	var ch exchange.Challenge
	e.call("POST", "/api/exchange/auth/challenge", "", exchange.ChallengeRequest{Address: a.String()}, &ch)
	var ae apiErr
	if st := e.call("POST", "/api/exchange/auth/login", "", e.sign("mallory", ch), &ae); st != 401 || ae.Error.Code != "bad_signature" {
		t.Fatalf("mallory's signature: %d %+v", st, ae)
	}
	// The challenge was spent by that attempt, even with alice's signature now.
	if st := e.call("POST", "/api/exchange/auth/login", "", e.sign("alice", ch), &ae); st != 401 || ae.Error.Code != "bad_challenge" {
		t.Fatalf("replayed challenge: %d %+v", st, ae)
	}
	e.now = e.now.Add(24*time.Hour + time.Second)
	if st := e.call("GET", "/api/exchange/orders", s.Token, nil, &ae); st != 401 || ae.Error.Code != "sign_in_required" {
		t.Fatalf("after 24 h: %d %+v", st, ae)
	}
}

// TestOrdersThroughTheAPIClearAtTheBlocksEnd: two signed-in wallets place
// crossing orders through the API; the block's auction fills them; the
// book, trades, ticker and the WebSocket feed show it; cancelling
// another's order is refused.
func TestOrdersThroughTheAPIClearAtTheBlocksEnd(t *testing.T) {
	e := newEnv(t)
	e.newWallet("maker", 2000*coin.Unit, 0)
	buyer := e.newWallet("buyer", 0, 10_000_000)
	ms, bs := e.signIn("maker"), e.signIn("buyer")

	ws, _, err := websocket.Dial(context.Background(), strings.Replace(e.srv.URL, "http", "ws", 1)+"/api/exchange/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// The feed's first message is the book; from then on it reports every
	// trade.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var first exchange.Update
	if err := wsjson.Read(ctx, ws, &first); err != nil || first.Type != "book" {
		t.Fatalf("feed's first message: %v %+v", err, first)
	}

	var sub walletd.Submitted
	var ae apiErr
	if st := e.call("POST", "/api/exchange/orders", ms.Token, exchange.PlaceRequest{Wallet: "maker",
		OrderRequest: exchange.OrderRequest{Side: "sell", Price: "0.00001", Amount: "1000"}}, &ae); st != 202 {
		t.Fatalf("sell: %d %+v", st, ae)
	}
	// The buyer's session may not use the maker's wallet.
	if st := e.call("POST", "/api/exchange/orders", bs.Token, exchange.PlaceRequest{Wallet: "maker",
		OrderRequest: exchange.OrderRequest{Side: "sell", Price: "0.00001", Amount: "1"}}, &ae); st != 403 || ae.Error.Code != "not_your_wallet" {
		t.Fatalf("other's wallet: %d %+v", st, ae)
	}
	// Chain refusals keep their codes.
	if st := e.call("POST", "/api/exchange/orders", bs.Token, exchange.PlaceRequest{Wallet: "buyer",
		OrderRequest: exchange.OrderRequest{Side: "buy", Price: "0.00001", Amount: "100000"}}, &ae); st != 400 || ae.Error.Code != "order_exceeds_balance" {
		t.Fatalf("beyond balance: %d %+v", st, ae)
	}
	if st := e.call("POST", "/api/exchange/orders", bs.Token, exchange.PlaceRequest{Wallet: "buyer",
		OrderRequest: exchange.OrderRequest{Side: "buy", Price: "0", Amount: "1"}}, &ae); st != 400 {
		t.Fatalf("zero price: %d %+v", st, ae)
	}
	e.c.endBlock()
	var ov chainex.OrdersView
	e.call("GET", "/api/exchange/orders", ms.Token, nil, &ov)
	if len(ov.Orders) != 1 {
		t.Fatalf("maker's orders %+v", ov)
	}
	if st := e.call("DELETE", fmt.Sprintf("/api/exchange/orders/%d", ov.Orders[0].ID), bs.Token, exchange.CancelRequest{Wallet: "buyer"}, &ae); st != 400 || ae.Error.Code != "not_order_owner" {
		t.Fatalf("cancel another's: %d %+v", st, ae)
	}
	// A market buy of 1000 AITBC within 1% of the best ask.
	if st := e.call("POST", "/api/exchange/orders", bs.Token, exchange.PlaceRequest{Wallet: "buyer",
		OrderRequest: exchange.OrderRequest{Side: "buy", Type: "market", Amount: "1000", SlippageBps: 100}}, &sub); st != 202 {
		t.Fatalf("market buy: %d", st)
	}
	e.c.endBlock()
	if got, _ := e.c.bank.BalanceOf(e.c.kv, buyer, "aitbc"); got != 999*coin.Unit {
		t.Fatalf("buyer has %s AITBC, want 999 (1000 less the 0.1%% fee)", got)
	}
	var tk chainex.Ticker
	e.call("GET", "/api/exchange/ticker", "", nil, &tk)
	if tk.LastMsat == 0 || tk.Volume24h != 1000*coin.Unit {
		t.Fatalf("ticker %+v", tk)
	}
	// The feed: the trades of the block.
	for sawTrades := false; !sawTrades; {
		var u exchange.Update
		if err := wsjson.Read(ctx, ws, &u); err != nil {
			t.Fatalf("feed: %v", err)
		}
		sawTrades = u.Type == "trades" && len(u.Trades) == 1 && u.Trades[0].Amount == 1000*coin.Unit
	}
}

// TestBadRequestsGetCodes: malformed and unauthenticated requests are 4xx
// with {"error":{"code","message"}}.
func TestBadRequestsGetCodes(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"POST", "/api/exchange/auth/challenge", map[string]string{"address": "nope"}, 400, "invalid_request"},
		{"POST", "/api/exchange/auth/login", exchange.LoginRequest{ChallengeID: "x"}, 401, "bad_challenge"},
		{"GET", "/api/exchange/orders", nil, 401, "sign_in_required"},
		{"GET", "/api/exchange/book?depth=-1", nil, 400, "invalid_request"},
		{"GET", "/api/exchange/candles?interval=7m", nil, 400, "invalid_exchange_query"},
		{"GET", "/api/exchange/nope", nil, 404, "not_found"},
	} {
		var ae apiErr
		if st := e.call(c.method, c.path, "", c.body, &ae); st != c.status || ae.Error.Code != c.code {
			t.Errorf("%s %s: %d %+v, want %d %s", c.method, c.path, st, ae, c.status, c.code)
		}
	}
}

// TestOpenAPIListsEveryRoute keeps docs/api/exchange.openapi.yaml and the
// server in step both ways.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../docs/api/exchange.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, r := range exchange.Routes() {
		routes[r] = true
		method, path, _ := strings.Cut(r, " ")
		if item := doc.Paths.Value(path); item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %s is not in the spec", r)
		}
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(path).Operations() {
			if !routes[method+" "+path] {
				t.Errorf("spec has %s %s, the server does not", method, path)
			}
		}
	}
	// And every route reaches a handler, not the catch-all 404.
	e := newEnv(t)
	for r := range routes {
		method, path, _ := strings.Cut(r, " ")
		var ae apiErr
		if st := e.call(method, strings.Replace(path, "{id}", "1", 1), "", nil, &ae); st == 404 && ae.Error.Code == "not_found" {
			t.Errorf("%s answers the catch-all 404", r)
		}
	}
}

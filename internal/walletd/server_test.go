package walletd_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/walletd"
)

func TestEveryRequestNeedsTheAPIKey(t *testing.T) {
	e := newEnv(t)
	for _, ep := range []struct{ method, path, body string }{
		{"GET", "/api/v1/health", ""},
		{"GET", "/api/v1/wallet/balance", ""},
		{"GET", "/api/v1/wallets", ""},
		{"POST", "/api/v1/wallets", `{"name":"a","password":"p"}`},
		{"GET", "/api/v1/wallets/a", ""},
		{"POST", "/api/v1/wallets/a/backup", `{"password":"p"}`},
		{"POST", "/api/v1/wallets/restore", `{}`},
		{"POST", "/api/v1/wallets/a/unlock", `{"password":"p"}`},
		{"POST", "/api/v1/wallets/a/lock", ""},
		{"POST", "/api/v1/wallets/a/send", `{}`},
		{"POST", "/api/v1/wallets/a/submit", `{}`},
		{"GET", "/metrics", ""},
		{"GET", "/nowhere", ""},
	} {
		for _, key := range []string{"", "wrong", testKey + "x", strings.ToUpper(testKey)} {
			r := e.callKey(key, ep.method, ep.path, ep.body)
			if r.status != http.StatusUnauthorized || r.code() != "unauthorized" {
				t.Errorf("%s %s with key %q: %d %s", ep.method, ep.path, key, r.status, r.raw)
			}
		}
	}
	if list, _ := e.svc.List(context.Background()); len(list) != 0 {
		t.Fatal("an unauthorised create made a wallet")
	}
	// The right key in either header.
	e.want(e.call("GET", "/api/v1/health", ""), http.StatusOK, "")
	req, _ := http.NewRequest("GET", e.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("bearer /metrics: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	e.want(e.call("GET", "/nowhere", ""), http.StatusNotFound, "not_found")
}

func TestCreateListGet(t *testing.T) {
	e := newEnv(t)
	addr := e.mustCreate("customer-1", "123")
	if _, err := address.Parse(addr); err != nil {
		t.Fatalf("create returned address %q: %v", addr, err)
	}
	e.mustCreate("a-provider", "123")
	r := e.call("GET", "/api/v1/wallets", "")
	e.want(r, http.StatusOK, "")
	ws := r.body["wallets"].([]any)
	if len(ws) != 2 || ws[0].(map[string]any)["name"] != "a-provider" || ws[1].(map[string]any)["address"] != addr {
		t.Fatalf("list = %s", r.raw)
	}
	r = e.call("GET", "/api/v1/wallets/customer-1", "")
	e.want(r, http.StatusOK, "")
	if r.str("address") != addr || r.body["unlocked"] != false {
		t.Fatalf("get = %s", r.raw)
	}
	if strings.Contains(r.raw, "ciphertext") || strings.Contains(r.raw, "mnemonic") {
		t.Fatalf("get shows secrets: %s", r.raw)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"duplicate", `{"name":"customer-1","password":"x"}`, 409, "wallet_exists"},
		{"invalid name", `{"name":"../etc","password":"x"}`, 400, "invalid_name"},
		{"leading dot", `{"name":".x","password":"x"}`, 400, "invalid_name"},
		{"too long", `{"name":"` + strings.Repeat("a", 65) + `","password":"x"}`, 400, "invalid_name"},
		{"empty password", `{"name":"b","password":""}`, 400, "password_required"},
		{"bad json", `{"name":`, 400, "invalid_request"},
		{"unknown field", `{"name":"b","password":"x","admin":true}`, 400, "invalid_request"},
		{"trailing data", `{"name":"b","password":"x"} {}`, 400, "invalid_request"},
		{"wrong type", `{"name":5,"password":"x"}`, 400, "invalid_request"},
		{"empty body", ``, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.want(e.call("POST", "/api/v1/wallets", tc.body), tc.status, tc.code)
		})
	}
	e.want(e.call("GET", "/api/v1/wallets/nobody", ""), 404, "wallet_not_found")
	e.want(e.call("GET", "/api/v1/wallets/bad%20name", ""), 400, "invalid_name")
}

func TestBalance(t *testing.T) {
	e := newEnv(t)
	addr := e.mustCreate("customer-1", "123")
	a, _ := address.Parse(addr)
	e.node.Fund(a, 100*coin.Unit)

	r := e.call("GET", "/api/v1/wallet/balance?name=customer-1", "")
	e.want(r, 200, "")
	// The seed's shape: {"balance": 100.0, "currency": "AITBC"}.
	if r.body["balance"] != 100.0 || r.str("currency") != "AITBC" || r.str("amount") != "100" || r.str("address") != addr || r.str("name") != "customer-1" {
		t.Fatalf("balance = %s", r.raw)
	}
	r = e.call("GET", "/api/v1/wallet/balance?address="+addr, "")
	e.want(r, 200, "")
	if r.body["balance"] != 100.0 {
		t.Fatalf("balance by address = %s", r.raw)
	}
	other, _ := keystore.AddressFromMnemonic("legal winner thank year wave sausage worth useful legal winner thank yellow")
	r = e.call("GET", "/api/v1/wallet/balance?address="+other.String(), "")
	e.want(r, 200, "")
	if r.body["balance"] != 0.0 || r.str("amount") != "0" {
		t.Fatalf("empty account = %s", r.raw)
	}

	bad := []byte(addr)
	bad[len(bad)-1] ^= 1 // breaks the checksum
	e.want(e.call("GET", "/api/v1/wallet/balance?address="+string(bad), ""), 400, "invalid_address")
	e.want(e.call("GET", "/api/v1/wallet/balance?address=cosmos1xyz", ""), 400, "invalid_address")
	e.want(e.call("GET", "/api/v1/wallet/balance?name=customer-1&address="+addr, ""), 400, "invalid_request")
	e.want(e.call("GET", "/api/v1/wallet/balance?name=nobody", ""), 404, "wallet_not_found")
	r = e.call("GET", "/api/v1/wallet/balance", "")
	e.want(r, 400, "wallet_required")
	if !strings.Contains(r.raw, "?name=") {
		t.Fatalf("no hint in %s", r.raw)
	}

	// A daemon with a default wallet answers the seed's bare curl.
	d := newEnv(t, withDefault("genesis-ops"))
	ga := d.mustCreate("genesis-ops", "123")
	gaddr, _ := address.Parse(ga)
	d.node.Fund(gaddr, 5*coin.Unit/2)
	r = d.call("GET", "/api/v1/wallet/balance", "")
	d.want(r, 200, "")
	if r.body["balance"] != 2.5 || r.str("name") != "genesis-ops" {
		t.Fatalf("default balance = %s", r.raw)
	}
}

func TestSendSignsWhatTheChainExpects(t *testing.T) {
	e := newEnv(t)
	from, _ := address.Parse(e.mustCreate("genesis-ops", "123"))
	to, _ := address.Parse(e.mustCreate("customer-1", "123"))
	e.node.Fund(from, 1_000_000*coin.Unit)

	for i := range 5 {
		r := e.call("POST", "/api/v1/wallets/genesis-ops/send", fmt.Sprintf(`{"to":%q,"amount":"1000","password":"123"}`, to))
		e.want(r, http.StatusAccepted, "")
		if r.body["nonce"] != float64(i) || r.str("fee") != testMinFee.String() || r.str("chain_id") != testChain || !strings.HasPrefix(r.str("tx_hash"), "0x") {
			t.Fatalf("send %d = %s", i, r.raw)
		}
	}
	subs := e.node.Submitted()
	if len(subs) != 5 {
		t.Fatalf("node got %d txs", len(subs))
	}
	for i, raw := range subs {
		x, err := tx.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Verify(); err != nil {
			t.Fatal(err)
		}
		gotTo, amount, err := bank.DecodeSend(x.Msg)
		if err != nil {
			t.Fatal(err)
		}
		if x.Sender() != from || x.ChainID != testChain || x.Nonce != uint64(i) || x.Fee != testMinFee || gotTo != to || amount != 1000*coin.Unit {
			t.Fatalf("tx %d: from %s chain %s nonce %d fee %s to %s amount %s", i, x.Sender(), x.ChainID, x.Nonce, x.Fee, gotTo, amount)
		}
	}
	if got := e.node.BalanceOf(to); got != 5000*coin.Unit {
		t.Fatalf("recipient has %s", got)
	}
	// A number amount and an explicit fee are accepted too.
	r := e.call("POST", "/api/v1/wallets/genesis-ops/send", fmt.Sprintf(`{"to":%q,"amount":0.5,"fee":"0.01","password":"123"}`, to))
	e.want(r, http.StatusAccepted, "")
	if r.str("fee") != "0.01" || r.body["nonce"] != 5.0 {
		t.Fatalf("send = %s", r.raw)
	}
}

func TestSendRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	from, _ := address.Parse(e.mustCreate("genesis-ops", "123"))
	to := e.mustCreate("customer-1", "123")
	e.node.Fund(from, 10*coin.Unit)
	badSum := []byte(to)
	badSum[len(badSum)-2] ^= 1
	send := func(body string) reply { return e.call("POST", "/api/v1/wallets/genesis-ops/send", body) }
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"address checksum", `{"to":"` + string(badSum) + `","amount":"1","password":"123"}`, 400, "invalid_address"},
		{"address missing", `{"amount":"1","password":"123"}`, 400, "invalid_address"},
		{"negative string", `{"to":"` + to + `","amount":"-5","password":"123"}`, 400, "invalid_amount"},
		{"negative number", `{"to":"` + to + `","amount":-5,"password":"123"}`, 400, "invalid_amount"},
		{"not a number", `{"to":"` + to + `","amount":"abc","password":"123"}`, 400, "invalid_amount"},
		{"exponent", `{"to":"` + to + `","amount":1e3,"password":"123"}`, 400, "invalid_amount"},
		{"too precise", `{"to":"` + to + `","amount":"0.0000001","password":"123"}`, 400, "invalid_amount"},
		{"zero", `{"to":"` + to + `","amount":"0","password":"123"}`, 400, "invalid_amount"},
		{"missing amount", `{"to":"` + to + `","password":"123"}`, 400, "invalid_amount"},
		{"bad fee", `{"to":"` + to + `","amount":"1","fee":"x","password":"123"}`, 400, "invalid_amount"},
		{"unknown field", `{"to":"` + to + `","amount":"1","password":"123","memo":"hi"}`, 400, "invalid_request"},
		{"bad json", `{"to":`, 400, "invalid_request"},
		{"wrong password", `{"to":"` + to + `","amount":"1","password":"1234"}`, 403, "wrong_password"},
		{"locked, no password", `{"to":"` + to + `","amount":"1"}`, 423, "wallet_locked"},
		{"insufficient funds", `{"to":"` + to + `","amount":"11","password":"123"}`, 400, "insufficient_funds"},
		{"fee below minimum", `{"to":"` + to + `","amount":"1","fee":"0.000001","password":"123"}`, 400, "fee_too_low"},
	} {
		t.Run(tc.name, func(t *testing.T) { e.want(send(tc.body), tc.status, tc.code) })
	}
	e.want(e.call("POST", "/api/v1/wallets/nobody/send", `{"to":"`+to+`","amount":"1","password":"123"}`), 404, "wallet_not_found")
	e.want(e.call("POST", "/api/v1/wallets/nobody/send", `{"to":"`+to+`","amount":"1"}`), 404, "wallet_not_found")
	if n := len(e.node.Submitted()); n != 0 {
		t.Fatalf("%d bad sends reached the chain", n)
	}
	// The nonce is not burned by refused sends.
	r := send(`{"to":"` + to + `","amount":"1","password":"123"}`)
	e.want(r, 202, "")
	if r.body["nonce"] != 0.0 {
		t.Fatalf("first good send nonce %v", r.body["nonce"])
	}
}

func TestUnlockThenSendWithoutPassword(t *testing.T) {
	e := newEnv(t)
	from, _ := address.Parse(e.mustCreate("w", "pw"))
	to := e.mustCreate("x", "pw")
	e.node.Fund(from, 10*coin.Unit)
	send := `{"to":"` + to + `","amount":"1"}`

	e.want(e.call("POST", "/api/v1/wallets/w/send", send), 423, "wallet_locked")
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"nope"}`), 403, "wrong_password")
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":""}`), 400, "password_required")
	e.want(e.call("POST", "/api/v1/wallets/nobody/unlock", `{"password":"pw"}`), 404, "wallet_not_found")
	for _, bad := range []string{`"soon"`, `"-1m"`, `-5`, `0`, `"48h"`, `true`} {
		e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw","timeout":`+bad+`}`), 400, "invalid_timeout")
	}

	r := e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw","timeout":"10m"}`)
	e.want(r, 200, "")
	if r.body["unlocked"] != true || r.str("unlocked_until") != e.clock.Now().Add(10*time.Minute).Format(time.RFC3339) {
		t.Fatalf("unlock = %s", r.raw)
	}
	e.want(e.call("POST", "/api/v1/wallets/w/send", send), 202, "")
	e.want(e.call("POST", "/api/v1/wallets/w/send", send), 202, "")
	// The password still works while unlocked, and a wrong one is still refused.
	e.want(e.call("POST", "/api/v1/wallets/w/send", `{"to":"`+to+`","amount":"1","password":"pw"}`), 202, "")
	e.want(e.call("POST", "/api/v1/wallets/w/send", `{"to":"`+to+`","amount":"1","password":"bad"}`), 403, "wrong_password")
	// Other wallets stay locked.
	e.want(e.call("POST", "/api/v1/wallets/x/send", `{"to":"`+from.String()+`","amount":"1"}`), 423, "wallet_locked")

	// Lock ends it; locking twice is fine.
	r = e.call("POST", "/api/v1/wallets/w/lock", "")
	e.want(r, 200, "")
	if r.body["unlocked"] != false {
		t.Fatalf("lock = %s", r.raw)
	}
	e.want(e.call("POST", "/api/v1/wallets/w/lock", "{}"), 200, "")
	e.want(e.call("POST", "/api/v1/wallets/w/lock", `{"x":1}`), 400, "invalid_request")
	e.want(e.call("POST", "/api/v1/wallets/nobody/lock", ""), 404, "wallet_not_found")
	e.want(e.call("POST", "/api/v1/wallets/w/send", send), 423, "wallet_locked")

	// Expiry: the unlock ends when the clock passes its timeout.
	e.want(e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"pw","timeout":60}`), 200, "")
	e.want(e.call("POST", "/api/v1/wallets/w/send", send), 202, "")
	e.clock.Add(61 * time.Second)
	e.want(e.call("POST", "/api/v1/wallets/w/send", send), 423, "wallet_locked")
	r = e.call("GET", "/api/v1/wallets/w", "")
	if r.body["unlocked"] != false {
		t.Fatalf("expired wallet shows unlocked: %s", r.raw)
	}
	if n := len(e.node.Submitted()); n != 4 {
		t.Fatalf("%d transactions, want 4", n)
	}
}

func TestBackupAndRestore(t *testing.T) {
	e := newEnv(t)
	addr := e.mustCreate("w", "pw")
	e.want(e.call("POST", "/api/v1/wallets/w/backup", `{"password":"bad"}`), 403, "wrong_password")
	e.want(e.call("POST", "/api/v1/wallets/w/backup", `{}`), 400, "password_required")
	e.want(e.call("POST", "/api/v1/wallets/nobody/backup", `{"password":"pw"}`), 404, "wallet_not_found")
	r := e.call("POST", "/api/v1/wallets/w/backup", `{"password":"pw"}`)
	e.want(r, 200, "")
	m := r.str("mnemonic")
	if len(strings.Fields(m)) != 24 || r.str("address") != addr {
		t.Fatalf("backup = %s", r.raw)
	}

	// Restore on another daemon gives the same address.
	other := newEnv(t)
	r = other.call("POST", "/api/v1/wallets/restore", `{"name":"copy","mnemonic":"`+m+`","password":"new"}`)
	other.want(r, 201, "")
	if r.str("address") != addr {
		t.Fatalf("restored %s, want %s", r.str("address"), addr)
	}
	other.want(other.call("POST", "/api/v1/wallets/restore", `{"name":"copy","mnemonic":"`+m+`","password":"new"}`), 409, "wallet_exists")
	words := strings.Fields(m)
	words[0], words[1] = words[1], words[0]
	other.want(other.call("POST", "/api/v1/wallets/restore", `{"name":"c2","mnemonic":"`+strings.Join(words, " ")+`","password":"x"}`), 400, "invalid_mnemonic")
	other.want(other.call("POST", "/api/v1/wallets/restore", `{"name":"c2","mnemonic":"one two three","password":"x"}`), 400, "invalid_mnemonic")
	other.want(other.call("POST", "/api/v1/wallets/restore", `{"name":"c 2","mnemonic":"`+m+`","password":"x"}`), 400, "invalid_name")
	other.want(other.call("POST", "/api/v1/wallets/restore", `{"name":"c2","mnemonic":"`+m+`","password":""}`), 400, "password_required")
	other.want(other.call("POST", "/api/v1/wallets/restore", `{"name":"c2","mnemonic":"`+m+`"`), 400, "invalid_request")
}

func TestSubmitAnyMessage(t *testing.T) {
	e := newEnv(t)
	from, _ := address.Parse(e.mustCreate("w", "pw"))
	to, _ := address.Parse(e.mustCreate("x", "pw"))
	e.node.Fund(from, 10*coin.Unit)
	msg := bank.NewSendMsg(to, 3*coin.Unit)
	body := base64.StdEncoding.EncodeToString(msg.Body)
	r := e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"bank/send","body":"`+body+`","password":"pw"}`)
	e.want(r, 202, "")
	if r.str("type") != "bank/send" || e.node.BalanceOf(to) != 3*coin.Unit {
		t.Fatalf("submit = %s, recipient %s", r.raw, e.node.BalanceOf(to))
	}
	// A module message this daemon knows nothing about is signed as given.
	other, _ := tx.NewMsg("market/bid", []any{"svc-1", uint64(5)})
	r = e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"market/bid","body":"`+base64.StdEncoding.EncodeToString(other.Body)+`","password":"pw","fee":"0.002"}`)
	e.want(r, 202, "")
	subs := e.node.Submitted()
	x, _ := tx.Decode(subs[len(subs)-1])
	if x.Msg.Type != "market/bid" || string(x.Msg.Body) != string(other.Body) || x.Fee != 2000 || x.Nonce != 1 {
		t.Fatalf("generic tx = %+v", x)
	}
	e.want(e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"bank/send","body":"%%%","password":"pw"}`), 400, "invalid_request")
	e.want(e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"","body":"`+body+`","password":"pw"}`), 400, "invalid_request")
	e.want(e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"bank/send","body":"","password":"pw"}`), 400, "invalid_request")
	e.want(e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"bank/send","body":"`+body+`"}`), 423, "wallet_locked")
	// Bytes that are not CBOR never get signed; well-formed CBOR of the
	// wrong shape is the chain's to refuse.
	e.want(e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"bank/send","body":"AAEC","password":"pw"}`), 400, "invalid_request")
	e.want(e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"bank/send","body":"/w==","password":"pw"}`), 400, "invalid_request")
	e.want(e.call("POST", "/api/v1/wallets/w/submit", `{"msg_type":"bank/send","body":"BQ==","password":"pw"}`), 400, "invalid_msg")
}

func TestNodeProblems(t *testing.T) {
	e := newEnv(t)
	e.mustCreate("w", "pw")
	to := e.mustCreate("x", "pw")
	// An account with no funds: the node's code comes through.
	e.want(e.call("POST", "/api/v1/wallets/w/send", `{"to":"`+to+`","amount":"1","password":"pw"}`), 400, "insufficient_fee_funds")

	// A node that does not answer.
	d := newEnv(t, func(c *walletd.Config) { c.Node = deadNode(t) })
	d.mustCreate("w", "pw")
	d.want(d.call("GET", "/api/v1/wallet/balance?name=w", ""), 502, "node_unavailable")
	d.want(d.call("POST", "/api/v1/wallets/w/send", `{"to":"`+to+`","amount":"1","password":"pw"}`), 502, "node_unavailable")

	// A daemon without a node still manages wallets.
	n := newEnv(t, withoutNode())
	n.mustCreate("w", "pw")
	n.want(n.call("GET", "/api/v1/wallet/balance?name=w", ""), 503, "node_not_configured")
	n.want(n.call("POST", "/api/v1/wallets/w/send", `{"to":"`+to+`","amount":"1","password":"pw"}`), 503, "node_not_configured")
	n.want(n.call("POST", "/api/v1/wallets/w/backup", `{"password":"pw"}`), 200, "")
}

func TestMetricsCountRequests(t *testing.T) {
	e := newEnv(t)
	e.mustCreate("w", "pw")
	e.callKey("", "GET", "/api/v1/wallets", "")
	e.call("GET", "/api/v1/wallets/nobody", "")
	r := e.call("GET", "/metrics", "")
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	for _, want := range []string{
		`aitbc_walletd_requests_total{code="201",endpoint="POST /api/v1/wallets"} 1`,
		`aitbc_walletd_requests_total{code="401",endpoint="GET /api/v1/wallets"} 1`,
		`aitbc_walletd_requests_total{code="404",endpoint="GET /api/v1/wallets/{name}"} 1`,
		`aitbc_walletd_unlocked_wallets 0`,
	} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestClientErrorsMatchTheService(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	if _, err := c.Create(ctx, "w", "pw"); err != nil {
		t.Fatal(err)
	}
	to, _ := c.Create(ctx, "x", "pw")
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"exists", second(c.Create(ctx, "w", "pw")), keystore.ErrExists},
		{"wrong password", second(c.Backup(ctx, "w", "bad")), keystore.ErrWrongPassword},
		{"not found", second(c.Get(ctx, "nobody")), keystore.ErrNotFound},
		{"invalid name", second(c.Get(ctx, "")), keystore.ErrInvalidName},
		{"locked", second(c.Send(ctx, "w", "", to.Address, 1, 0)), walletd.ErrLocked},
		{"no funds", second(c.Send(ctx, "w", "pw", to.Address, 1, 0)), tx.ErrNoFunds},
		{"bad mnemonic", second(c.Restore(ctx, "r", "a b c", "pw")), keystore.ErrInvalidMnemonic},
		{"bad key", second(walletd.NewClient(e.url, "nope").List(ctx)), walletd.ErrUnauthorized},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// The daemon's message comes through as is.
	_, err := c.Backup(ctx, "w", "bad")
	if err.Error() != "keystore: wrong password" {
		t.Errorf("message %q", err)
	}
	// Insufficient funds from the chain is a chain error on the client too.
	from, _ := c.Get(ctx, "w")
	e.node.Fund(from.Address, coin.Unit)
	if _, err := c.Send(ctx, "w", "pw", to.Address, 2*coin.Unit, 0); !errors.Is(err, bank.ErrInsufficientFunds) {
		t.Errorf("overspend: %v", err)
	}
	// And the happy paths.
	if _, err := c.Unlock(ctx, "w", "pw", time.Minute); err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(ctx, "w", "", to.Address, coin.Unit/2, 0)
	if err != nil || res.Nonce != 0 || res.From != from.Address {
		t.Fatalf("send = %+v, %v", res, err)
	}
	b, err := c.Balance(ctx, "x")
	if err != nil || b.Amount != coin.Unit/2 || b.Balance != 0.5 {
		t.Fatalf("balance = %+v, %v", b, err)
	}
	if b2, err := c.BalanceOf(ctx, to.Address); err != nil || b2.Amount != b.Amount {
		t.Fatalf("balance of = %+v, %v", b2, err)
	}
	if list, err := c.List(ctx); err != nil || len(list) != 2 || !list[0].Unlocked {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if _, err := c.Lock(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	bk, err := c.Backup(ctx, "w", "pw")
	if err != nil || len(strings.Fields(bk.Mnemonic)) != 24 {
		t.Fatalf("backup = %v", err)
	}
	if h, err := c.Health(ctx); err != nil || h.Status != "ok" || h.Wallets != 2 {
		t.Fatalf("health = %+v, %v", h, err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	e := newEnv(t)
	const pw = "correct-horse-battery"
	from, _ := address.Parse(e.mustCreate("w", pw))
	to := e.mustCreate("x", pw)
	e.node.Fund(from, 10*coin.Unit)
	r := e.call("POST", "/api/v1/wallets/w/backup", `{"password":"`+pw+`"}`)
	m := r.str("mnemonic")
	e.call("POST", "/api/v1/wallets/w/unlock", `{"password":"`+pw+`"}`)
	e.call("POST", "/api/v1/wallets/w/send", `{"to":"`+to+`","amount":"1"}`)
	e.call("POST", "/api/v1/wallets/w/send", `{"to":"`+to+`","amount":"1","password":"wrong-`+pw+`"}`)
	e.call("POST", "/api/v1/wallets/restore", `{"name":"y","mnemonic":"`+m+` extra","password":"`+pw+`"}`)
	e.call("POST", "/api/v1/wallets/restore", `{"name":"w","mnemonic":"`+m+`","password":"`+pw+`"}`)
	logs := e.logs.String()
	if !strings.Contains(logs, "wallet unlocked") {
		t.Fatalf("logging not captured: %s", logs)
	}
	// A leaked mnemonic shows as consecutive words: single words are
	// English ("path", "limit") and may be in any log line.
	secrets := []string{pw}
	words := strings.Fields(m)
	for i := 0; i+1 < len(words); i++ {
		secrets = append(secrets, words[i]+" "+words[i+1])
	}
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

func TestAPIKeyFile(t *testing.T) {
	home := t.TempDir()
	srv, err := walletd.NewServer(walletd.Config{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	k := srv.APIKey()
	if len(k) != 64 {
		t.Fatalf("generated key %q", k)
	}
	fi, err := os.Stat(walletd.APIKeyPath(home))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if got, _ := walletd.ReadAPIKey(home); got != k {
		t.Fatalf("file holds %q, server uses %q", got, k)
	}
	again, _ := walletd.NewServer(walletd.Config{Home: home})
	if again.APIKey() != k {
		t.Fatal("a second daemon on the same home made a new key")
	}
	given, _ := walletd.NewServer(walletd.Config{Home: t.TempDir(), APIKey: "given"})
	if given.APIKey() != "given" {
		t.Fatal("a given key was not used")
	}
}

func TestRunServesAndStops(t *testing.T) {
	home := t.TempDir()
	srv, err := walletd.NewServer(walletd.Config{Home: home, Listen: "127.0.0.1:0", APIKey: testKey,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	c := walletd.NewClient(srv.URL(), testKey)
	if _, err := c.Create(ctx, "w", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unlock(ctx, "w", "pw", 0); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if w, _ := srv.Service().Get(context.Background(), "w"); w.Unlocked {
		t.Fatal("keys survive shutdown")
	}
	if _, err := c.List(context.Background()); err == nil {
		t.Fatal("still serving after shutdown")
	}
	// The port is taken while another daemon listens there.
	a, _ := walletd.NewServer(walletd.Config{Home: home, Listen: "127.0.0.1:0", APIKey: "k"})
	addr, _ := a.Listen()
	b, _ := walletd.NewServer(walletd.Config{Home: home, Listen: addr.String(), APIKey: "k"})
	if err := b.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("second daemon on the same port: %v", err)
	}
}

package rpc_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/ratelimit"
	"github.com/aitbc/aitbc/internal/rpc"
)

// faucetBackend records the drips it is asked for and refuses a second
// one to the same address as the chain would.
type faucetBackend struct {
	fakeBackend
	mu    sync.Mutex
	drips map[address.Address]coin.Amount
}

func (b *faucetBackend) Drip(_ context.Context, to address.Address, amt coin.Amount) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.drips[to]; ok {
		return "", faucet.ErrLimit
	}
	b.drips[to] = amt
	return "0xabc", nil
}

func post(t *testing.T, url, body string) (int, httpx.ErrorBody, rpc.FaucetResult, http.Header) {
	t.Helper()
	resp, err := http.Post(url+"/api/v1/faucet", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	var eb httpx.ErrorBody
	var res rpc.FaucetResult
	_ = json.Unmarshal(raw, &eb)
	_ = json.Unmarshal(raw, &res)
	return resp.StatusCode, eb, res, resp.Header
}

func addrN(i byte) address.Address {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = i
	return address.FromPubKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

// TestFaucetRoute: bad input gets specific errors, the chain's refusal is
// passed on with its code, an accepted drip answers 202 with the hash, and
// each client is limited (429 with Retry-After) whatever it asks for.
func TestFaucetRoute(t *testing.T) {
	b := &faucetBackend{drips: map[address.Address]coin.Amount{}}
	s := rpc.NewServer(b, nil, prometheus.NewRegistry(), nil)
	now := time.Unix(1_000_000, 0)
	s.SetFaucetLimit(ratelimit.Config{Rate: 1.0 / 60, Burst: 6, Now: func() time.Time { return now }})
	srv := httptest.NewServer(s)
	defer srv.Close()
	a, c := addrN(1), addrN(2)
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"address":"aitbc1nope"}`, 400, "invalid_address"},
		{`{"address":"` + a.String() + `","amount":"-3"}`, 400, "invalid_faucet_amount"},
		{`{"address":"` + a.String() + `","amount":"0"}`, 400, "invalid_faucet_amount"},
		{`{"address":"` + a.String() + `","x":1}`, 400, "invalid_request"},
		{`{"address":"` + a.String() + `","amount":"250.5"}`, 202, ""},
		{`{"address":"` + a.String() + `"}`, 400, "faucet_limit"},
		{`{"address":"` + c.String() + `"}`, 429, "rate_limited"}, // the 7th request of this client
	} {
		st, eb, res, h := post(t, srv.URL, tc.body)
		if st != tc.status || eb.Error.Code != tc.code {
			t.Fatalf("%s: %d %q, want %d %q", tc.body, st, eb.Error.Code, tc.status, tc.code)
		}
		if tc.code != "" && eb.Error.Message == "" {
			t.Errorf("%s: no message", tc.body)
		}
		if st == 202 && (res.TxHash != "0xabc" || res.Status != "pending" || res.Address != a || res.Amount != 250_500_000) {
			t.Errorf("accepted: %+v", res)
		}
		if st == 429 && h.Get("Retry-After") != "60" {
			t.Errorf("Retry-After %q, want 60", h.Get("Retry-After"))
		}
	}
	if len(b.drips) != 1 || b.drips[a] != 250_500_000 {
		t.Fatalf("drips %v, want only %s for 250.5 AITBC", b.drips, a)
	}
	now = now.Add(time.Minute) // one more request a minute
	if st, eb, res, _ := post(t, srv.URL, `{"address":"`+c.String()+`"}`); st != 202 || res.Amount != 0 {
		t.Fatalf("after a minute: %d %+v %+v", st, eb, res)
	}
	if st, eb, _, _ := post(t, srv.URL, `{"address":"`+addrN(3).String()+`"}`); st != 429 {
		t.Fatalf("second in the minute: %d %+v", st, eb)
	}
}

// TestFaucetRouteWithoutAFaucet: a node that cannot submit drips says so.
func TestFaucetRouteWithoutAFaucet(t *testing.T) {
	srv := httptest.NewServer(rpc.NewServer(fakeBackend{}, nil, prometheus.NewRegistry(), nil))
	defer srv.Close()
	st, eb, _, _ := post(t, srv.URL, `{"address":"`+addrN(1).String()+`"}`)
	if st != 501 || eb.Error.Code != "faucet_not_configured" || eb.Error.Message == "" {
		t.Fatalf("%d %+v, want 501 faucet_not_configured", st, eb)
	}
}

package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	minersmod "github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/web"
)

// fakeMarket stands in for the market module's adapter: listings in
// memory; CreateListing signs one real transaction (a transfer of 1 unit
// to the signer itself) through the WalletSigner it is given, so that the
// test sees which wallet the page signs with, and with which password.
type fakeMarket struct {
	mu       sync.Mutex
	listings []web.Listing
	signers  []address.Address
}

func (m *fakeMarket) Listings(_ context.Context, f web.ListingFilter) ([]web.Listing, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []web.Listing
	for _, l := range m.listings {
		if (f.Type == "" || f.Type == l.Type) && (f.MaxPrice == 0 || l.Rate <= f.MaxPrice) && l.Rate >= f.MinPrice {
			out = append(out, l)
		}
	}
	return out, nil
}

func (m *fakeMarket) Listing(_ context.Context, id string) (web.Listing, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.listings {
		if l.ID == id {
			return l, nil
		}
	}
	return web.Listing{}, fmt.Errorf("%w: no listing %s", web.ErrNotFound, id)
}

func (m *fakeMarket) Bids(context.Context, address.Address) ([]web.Bid, error) { return nil, nil }

func (m *fakeMarket) Agreements(context.Context, address.Address) ([]web.Agreement, error) {
	return nil, nil
}

func (m *fakeMarket) CreateListing(ctx context.Context, sign web.WalletSigner, r web.ListingRequest) (string, error) {
	hash, err := sign.SignAndSubmit(ctx, bank.NewSendMsg(sign.Address(), 1))
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signers = append(m.signers, sign.Address())
	m.listings = append(m.listings, web.Listing{ID: fmt.Sprintf("svc-%d", len(m.listings)+1), Provider: sign.Address(), Name: r.Name,
		Type: r.Type, Description: r.Description, PricingModel: r.PricingModel, Rate: r.Rate, Created: time.Now()})
	return hash, nil
}

func (m *fakeMarket) created() ([]web.Listing, []address.Address) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]web.Listing(nil), m.listings...), append([]address.Address(nil), m.signers...)
}

// TestBecomeAProviderAndHostileListings runs the pages over the devnet
// with a market: "Become a Provider" signs only with the signed-in
// wallet and the password typed into the form, refuses bad input and
// cross-site posts without signing anything, and a hostile listing
// renders as text.
func TestBecomeAProviderAndHostileListings(t *testing.T) {
	e := startEnv(t)
	m := &fakeMarket{}
	wallets := e.d.Wallets.Service()
	srv, err := web.New(web.Config{Node: e.node, Coordinator: web.CoordinatorClient{URL: e.d.CoordinatorURL()},
		Wallets: wallets, Submitter: wallets, Market: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Run(ctx) }()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c := client()

	// Signed out: the form posts nothing.
	a := post(t, c, ts.URL+"/marketplace/provide", url.Values{"name": {"x"}, "type": {"inference"}, "pricing_model": {"per_hour"}, "rate": {"1"}}, "")
	if a.status != http.StatusUnauthorized {
		t.Fatalf("provide while signed out: %d", a.status)
	}
	csrfRe := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)
	tok := csrfRe.FindStringSubmatch(get(t, c, ts.URL+"/signin").body)
	a = post(t, c, ts.URL+"/signin", url.Values{"csrf": {tok[1]}, "wallet": {devnet.GenesisWallet}, "password": {"123"}}, "")
	if a.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", a.status)
	}
	page := get(t, c, ts.URL+"/marketplace/provide")
	csrf := csrfRe.FindStringSubmatch(page.body)
	if page.status != 200 || csrf == nil || !strings.Contains(page.body, `name="pricing_model"`) {
		t.Fatalf("provide form: %d %s", page.status, page.body)
	}
	hostile := `<script>alert(1)</script>`
	form := func(mod func(url.Values)) url.Values {
		v := url.Values{"csrf": {csrf[1]}, "name": {"GPUCompute Pro " + hostile}, "type": {"inference"},
			"description": {`"><img src=x onerror=alert(2)> High-performance GPU computing`}, "pricing_model": {"per_hour"}, "rate": {"100"}, "password": {"123"}}
		mod(v)
		return v
	}
	for name, bad := range map[string]url.Values{
		"no token":       form(func(v url.Values) { v.Del("csrf") }),
		"no name":        form(func(v url.Values) { v.Set("name", " ") }),
		"unknown type":   form(func(v url.Values) { v.Set("type", "mining") }),
		"bad model":      form(func(v url.Values) { v.Set("pricing_model", "per_year") }),
		"zero rate":      form(func(v url.Values) { v.Set("rate", "0") }),
		"garbage rate":   form(func(v url.Values) { v.Set("rate", "1e9x") }),
		"long":           form(func(v url.Values) { v.Set("description", strings.Repeat("d", 2001)) }),
		"wrong password": form(func(v url.Values) { v.Set("password", "124") }),
	} {
		a := post(t, c, ts.URL+"/marketplace/provide", bad, "")
		if a.status < 400 {
			t.Errorf("%s: %d", name, a.status)
		}
	}
	a = post(t, c, ts.URL+"/marketplace/provide", form(func(url.Values) {}), "http://evil.example")
	if a.status != http.StatusForbidden {
		t.Errorf("cross-site provide: %d", a.status)
	}
	if ls, _ := m.created(); len(ls) != 0 {
		t.Fatalf("refused forms created %d listings", len(ls))
	}

	a = post(t, c, ts.URL+"/marketplace/provide", form(func(url.Values) {}), ts.URL)
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/explorer/tx/0x") {
		t.Fatalf("provide: %d %q %s", a.status, a.header.Get("Location"), a.body)
	}
	ls, signers := m.created()
	if len(ls) != 1 || len(signers) != 1 || signers[0] != e.d.Genesis {
		t.Fatalf("listings %+v signed by %v, want one by %s", ls, signers, e.d.Genesis)
	}
	e.committed(t, strings.TrimPrefix(a.header.Get("Location"), "/explorer/tx/"))

	// The hostile listing is text wherever it shows.
	for _, p := range []string{"/marketplace", "/marketplace/service/" + ls[0].ID, "/explorer/address/" + e.d.Genesis.String()} {
		a := get(t, c, ts.URL+p)
		if a.status != 200 {
			t.Errorf("%s: %d", p, a.status)
			continue
		}
		if strings.Contains(a.body, hostile) || strings.Contains(a.body, "<img src=x") {
			t.Errorf("%s renders the listing's markup", p)
		}
		if !strings.Contains(a.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the listing's name as text", p)
		}
	}
	if a := get(t, c, ts.URL+"/explorer/search?q=svc-1"); a.header.Get("Location") != "/marketplace/service/svc-1" {
		t.Errorf("search for a service id: %d %q", a.status, a.header.Get("Location"))
	}
	registry, err := minersmod.QueryAll(context.Background(), e.node)
	if err != nil || len(registry.Miners) == 0 {
		t.Fatalf("miners: %v", err)
	}
	if a := get(t, c, ts.URL+"/marketplace/service/"+registry.Miners[0].Address.String()); a.status != 200 {
		t.Errorf("a miner's service with a market: %d", a.status)
	}
	if a := get(t, c, ts.URL+"/marketplace/service/svc-404"); a.status != 404 {
		t.Errorf("unknown listing: %d", a.status)
	}
	if a := get(t, c, ts.URL+"/marketplace?max_price=50"); strings.Contains(a.body, "GPUCompute Pro") {
		t.Errorf("a price filter under the listing's rate keeps it")
	}
}

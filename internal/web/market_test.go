package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	minersmod "github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/web"
)

// providerListings are the listings the node's market route shows for a
// provider, closed ones too.
func providerListings(t *testing.T, e *env, provider address.Address) []market.ServiceView {
	t.Helper()
	list, err := market.QueryServices(context.Background(), e.node, market.ServiceFilter{Provider: &provider, All: true})
	if err != nil {
		t.Fatal(err)
	}
	return list.Services
}

// TestBecomeAProviderAndHostileListings runs the pages over the devnet
// and its market module (web.ChainMarket over the node's routes): "Become
// a Provider" puts a listing on chain signed only by the signed-in wallet
// with the password typed into the form, refuses bad input and cross-site
// posts without listing anything, the listing then shows on the
// marketplace, its own page (with its provider's reputation and its
// parts) and the node's route, and a hostile listing renders as text.
func TestBecomeAProviderAndHostileListings(t *testing.T) {
	e := startEnv(t)
	m := web.ChainMarket{Node: e.node}
	before := len(providerListings(t, e, e.d.Genesis))
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
	if n := len(providerListings(t, e, e.d.Genesis)); n != before {
		t.Fatalf("refused forms created %d listings", n-before)
	}

	// A rate over the module's highest price passes the form's checks and
	// is refused by the chain: the form says why, nothing is listed.
	a = post(t, c, ts.URL+"/marketplace/provide", form(func(v url.Values) { v.Set("rate", "2000000") }), ts.URL)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "refused") || !strings.Contains(a.body, "allowed 0.000001-") {
		t.Errorf("a price over the module's highest: %d %s", a.status, a.body)
	}
	if n := len(providerListings(t, e, e.d.Genesis)); n != before {
		t.Fatalf("a refused listing is on chain (%d)", n-before)
	}

	a = post(t, c, ts.URL+"/marketplace/provide", form(func(url.Values) {}), ts.URL)
	if a.status != http.StatusSeeOther || !strings.HasPrefix(a.header.Get("Location"), "/marketplace/service/svc-") {
		t.Fatalf("provide: %d %q %s", a.status, a.header.Get("Location"), a.body)
	}
	all := providerListings(t, e, e.d.Genesis)
	if len(all) != before+1 {
		t.Fatalf("%d listings by the signed-in wallet after one was created, want %d", len(all), before+1)
	}
	var l market.ServiceView
	for _, v := range all {
		if strings.HasPrefix(v.Name, "GPUCompute Pro") {
			l = v
		}
	}
	// ListedBy is the transaction's signer: the signed-in wallet, nobody else.
	if l.ID == "" || a.header.Get("Location") != "/marketplace/service/"+l.ID || l.Provider != e.d.Genesis || l.ListedBy != e.d.Genesis || l.Type != "ai-inference" || l.Unit != "hour" ||
		l.Price.String() != "100" || !strings.HasSuffix(l.Description, "High-performance GPU computing") || l.Status != "active" {
		t.Fatalf("the listing on chain: %+v", l)
	}
	ls := []market.ServiceView{l}

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
	svc := get(t, c, ts.URL+"/marketplace/service/"+l.ID)
	for _, want := range []string{"Provider reputation", "out of 100", "Ratings", "Reliability (jobs delivered)", "Uptime (miner heartbeats)",
		"Ratings and reviews", "No ratings yet", "Open bids", "100 AITBC (per_hour)", "active"} {
		if !strings.Contains(svc.body, want) {
			t.Errorf("the listing's page lacks %q", want)
		}
	}
	mkt := get(t, c, ts.URL+"/marketplace?type=ai-inference")
	if !strings.Contains(mkt.body, `href="/marketplace/service/`+l.ID+`"`) || strings.Contains(mkt.body, "does not run") {
		t.Errorf("the marketplace does not list %s", l.ID)
	}
	type apiListing struct {
		ID           string `json:"service_id"`
		PricingModel string `json:"pricing_model"`
		Rate         string `json:"rate"`
	}
	var api struct {
		Listings []apiListing `json:"listings"`
	}
	if a := get(t, c, ts.URL+"/api/marketplace/services?type=inference"); json.Unmarshal([]byte(a.body), &api) != nil ||
		!slices.Contains(api.Listings, apiListing{ID: l.ID, PricingModel: "per_hour", Rate: "100"}) {
		t.Errorf("the JSON's listings lack %s: %s", l.ID, a.body)
	}
	if a := get(t, c, ts.URL+"/marketplace?type=gpu-rental"); strings.Contains(a.body, `href="/marketplace/service/`+l.ID+`"`) {
		t.Errorf("a type filter of another type keeps %s", l.ID)
	}
	if mine := get(t, c, ts.URL+"/marketplace/mine"); mine.status != 200 || !strings.Contains(mine.body, "No bids placed or received") {
		t.Errorf("my marketplace: %d", mine.status)
	}
	if a := get(t, c, ts.URL+"/explorer/search?q="+l.ID); a.header.Get("Location") != "/marketplace/service/"+l.ID {
		t.Errorf("search for a service id: %d %q", a.status, a.header.Get("Location"))
	}
	registry, err := minersmod.QueryAll(context.Background(), e.node)
	if err != nil || len(registry.Miners) == 0 {
		t.Fatalf("miners: %v", err)
	}
	if a := get(t, c, ts.URL+"/marketplace/service/"+registry.Miners[0].Address.String()); a.status != 200 ||
		!strings.Contains(a.body, "Reputation score (market module)") || !strings.Contains(a.body, "Uptime (miner heartbeats)") {
		t.Errorf("a miner's service with a market: %d", a.status)
	}
	rep, err := market.QueryProvider(context.Background(), e.node, registry.Miners[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	if a := get(t, c, ts.URL+"/miner/"+registry.Miners[0].Address.String()); a.status != 200 ||
		!strings.Contains(a.body, fmt.Sprintf("<strong>%d out of 100</strong>", rep.Reputation.Score)) || strings.Contains(a.body, "does not run") {
		t.Errorf("the miner's dashboard lacks the chain's score %d: %d", rep.Reputation.Score, a.status)
	}
	if a := get(t, c, ts.URL+"/explorer/miners"); !strings.Contains(a.body, fmt.Sprintf("<td>%d/100</td>", rep.Reputation.Score)) {
		t.Errorf("the leaderboard lacks the chain's score %d", rep.Reputation.Score)
	}
	if a := get(t, c, ts.URL+"/explorer/miners?format=csv"); !strings.Contains(a.body, fmt.Sprintf(",true,%d,", rep.Reputation.Score)) {
		t.Errorf("the leaderboard's CSV lacks the score: %s", a.body)
	}
	if a := get(t, c, ts.URL+"/marketplace/service/svc-999999"); a.status != 404 {
		t.Errorf("unknown listing: %d", a.status)
	}
	if a := get(t, c, ts.URL+"/marketplace?max_price=50"); strings.Contains(a.body, "GPUCompute Pro") || !strings.Contains(a.body, "listings match") {
		t.Errorf("a price filter under the listing's rate keeps it")
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// signIn signs c in to the pages at base with a wallet of the devnet's.
func signIn(t *testing.T, c *http.Client, base, wallet string) {
	t.Helper()
	tok := csrfField.FindStringSubmatch(get(t, c, base+"/signin").body)
	if tok == nil {
		t.Fatal("no sign-in form")
	}
	if a := post(t, c, base+"/signin", url.Values{"csrf": {tok[1]}, "wallet": {wallet}, "password": {"123"}}, base); a.status != http.StatusSeeOther {
		t.Fatalf("sign-in as %s: %d %s", wallet, a.status, a.body)
	}
}

// TestMarketOnDevnetPages runs the market's whole round on the devnet's
// own pages (aitbc devnet's web server, whose market is the node's
// module): a second wallet becomes a provider through the form, the
// genesis wallet bids, the provider accepts, the customer pays and rates;
// then the listing's page shows the rating, the review and the
// reputation's facts, and each side's page its bid and agreement.
func TestMarketOnDevnetPages(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	wallets := e.d.Wallets.Service()
	submit := func(name string, msg tx.Msg) {
		t.Helper()
		sub, err := wallets.SignAndSubmit(ctx, name, "123", msg, 0)
		if err != nil {
			t.Fatalf("%s: %v", msg.Type, err)
		}
		if tx := e.committed(t, sub.TxHash); tx.Status != "committed" {
			t.Fatalf("%s: %s %s", msg.Type, tx.Status, tx.Error)
		}
	}
	info, err := wallets.Create(ctx, "web-provider", "123")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := wallets.Send(ctx, devnet.GenesisWallet, "123", info.Address, 1000*coin.Unit, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.committed(t, sub.TxHash)

	prov := client()
	signIn(t, prov, e.web, "web-provider")
	csrf := csrfField.FindStringSubmatch(get(t, prov, e.web+"/marketplace/provide").body)
	if csrf == nil {
		t.Fatal("no Become a Provider form on the devnet's pages")
	}
	a := post(t, prov, e.web+"/marketplace/provide", url.Values{"csrf": {csrf[1]}, "name": {"Rated GPU"}, "type": {"data-processing"},
		"description": {"Line one\r\nline two"}, "pricing_model": {"per_job"}, "rate": {"5"}, "password": {"123"}}, e.web)
	if a.status != http.StatusSeeOther {
		t.Fatalf("provide: %d %s", a.status, a.body)
	}
	ls := providerListings(t, e, info.Address)
	if len(ls) != 1 || a.header.Get("Location") != "/marketplace/service/"+ls[0].ID || ls[0].ListedBy != info.Address || ls[0].Unit != "job" || ls[0].Type != "data-processing" || ls[0].Description != "Line one\nline two" {
		t.Fatalf("listings of the new provider: %+v", ls)
	}
	id := ls[0].ID

	submit(devnet.GenesisWallet, market.NewBidMsg(id, 5*coin.Unit, 2, false))
	bids, err := market.QueryBids(ctx, e.node, market.Filter{Service: id})
	if err != nil || len(bids.Bids) != 1 {
		t.Fatalf("bids on %s: %+v %v", id, bids, err)
	}
	bid := bids.Bids[0].ID
	if svc := get(t, prov, e.web+"/marketplace/service/"+id); !strings.Contains(svc.body, bid) {
		t.Errorf("the open bid %s is not on the listing's page", bid)
	}
	submit("web-provider", market.NewAcceptMsg(bid))
	submit(devnet.GenesisWallet, market.NewSettleMsg(bid, 5*coin.Unit))
	submit(devnet.GenesisWallet, market.NewRateAgreementMsg(bid, 4, "Fast <b>and</b> honest"))

	svc := get(t, prov, e.web+"/marketplace/service/"+id)
	for _, want := range []string{"★★★★☆", "Fast &lt;b&gt;and&lt;/b&gt; honest", "1 ratings", "No open bids", "5 AITBC (per_job)"} {
		if !strings.Contains(svc.body, want) {
			t.Errorf("the listing's page lacks %q", want)
		}
	}
	if strings.Contains(svc.body, "<b>and</b>") {
		t.Error("the review's markup renders")
	}
	rep, err := market.QueryProvider(ctx, e.node, info.Address)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("<strong>%d out of 100</strong>", rep.Reputation.Score); !strings.Contains(svc.body, want) {
		t.Errorf("the page's score is not the chain's %q", want)
	}

	mine := get(t, prov, e.web+"/marketplace/mine")
	for _, want := range []string{bid, "received", "provider", "accepted"} {
		if !strings.Contains(mine.body, want) {
			t.Errorf("the provider's page lacks %q", want)
		}
	}
	cust := client()
	signIn(t, cust, e.web, devnet.GenesisWallet)
	mine = get(t, cust, e.web+"/marketplace/mine")
	for _, want := range []string{bid, "placed", "customer", "10 AITBC"} {
		if !strings.Contains(mine.body, want) {
			t.Errorf("the customer's page lacks %q", want)
		}
	}
}

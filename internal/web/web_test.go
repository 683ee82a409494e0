package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

// env is one devnet with its web pages, shared by the tests of this
// package (starting a chain costs seconds).
type env struct {
	d    *devnet.Devnet
	node *rpc.Client
	web  string
}

var (
	envOnce sync.Once
	shared  *env
	envErr  error
)

func startEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a devnet")
	}
	envOnce.Do(func() {
		p, err := testnet.FreePort("127.0.0.1")
		if err != nil {
			envErr = err
			return
		}
		home, err := osMkdirTemp()
		if err != nil {
			envErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		d, err := devnet.Start(ctx, devnet.Config{
			Home: home, BlockTime: 200 * time.Millisecond, CheckInvariants: true, Miners: 1,
			RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0", WebListen: "127.0.0.1:0",
			CometRPCListen: "off", P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", p),
			SpanMiners: 2, SpanListen: "127.0.0.1:0", // the swarm page (swarm_test.go)
			Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		})
		if err != nil {
			envErr = err
			return
		}
		shared = &env{d: d, node: rpc.NewClient(d.RPCURL()), web: d.WebURL()}
		cleanups = append(cleanups, func() { d.Close(); osRemoveAll(home) })
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return shared
}

// client is a browser-like client: a cookie jar, and redirects not
// followed so that tests see where they lead.
func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, c *http.Client, u string) answer {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func post(t *testing.T, c *http.Client, u string, form url.Values, origin string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// transfer sends amount from genesis-ops to a fresh address and returns
// the transaction's hash and the address.
func (e *env) transfer(t *testing.T, amount coin.Amount) (string, address.Address) {
	t.Helper()
	to := address.FromPubKey([]byte(fmt.Sprintf("web-test-%032d", time.Now().UnixNano()))[:32])
	sub, err := e.d.Wallets.Service().Send(context.Background(), devnet.GenesisWallet, "123", to, amount, 0)
	if err != nil {
		t.Fatal(err)
	}
	return sub.TxHash, to
}

// committed waits for the transaction's block.
func (e *env) committed(t *testing.T, hash string) rpc.Transaction {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tx, err := e.node.Tx(context.Background(), hash)
		if err == nil && tx.Height > 0 {
			return tx
		}
		if time.Now().After(deadline) {
			t.Fatalf("tx %s not committed: %v", hash, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runJob submits a job as genesis-ops through the coordinator and waits
// until the chain settles it.
func (e *env) runJob(t *testing.T) coordinator.JobView {
	t.Helper()
	ctx := context.Background()
	c := coordinator.NewClient(e.d.CoordinatorURL(), e.d.APIKey)
	v, err := c.Submit(ctx, coordinator.JobRequest{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := c.Results(ctx, v.JobID)
		if err == nil && r.Settlement != nil && r.Settlement.SettleTx != "" {
			e.committed(t, r.Settlement.SettleTx)
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not settled: %+v %v", v.JobID, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPagesHeadersAndLinks(t *testing.T) {
	e := startEnv(t)
	c := client()
	a := get(t, c, e.web+"/")
	if a.status != 200 {
		t.Fatalf("/: %d %s", a.status, a.body)
	}
	for _, link := range []string{`href="/explorer"`, `href="/marketplace"`, `href="/miner"`} {
		if !strings.Contains(a.body, link) {
			t.Errorf("/ does not link %s", link)
		}
	}
	csp := a.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// Static assets ignore Range (GO-2026-6609): the whole file, 200.
	req, _ := http.NewRequest("GET", e.web+"/static/app.css", nil)
	req.Header.Set("Range", "bytes=0-0,"+strings.Repeat("1-1,", 2000)+"2-2")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 || resp.ContentLength < 100 {
		t.Errorf("ranged static asset: %+v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// No inline script and nothing from another origin on any page.
	inline := regexp.MustCompile(`<script(?:[^>]*)>[^<]+</script>|\son[a-z]+="|https?://`)
	for _, p := range []string{"/", "/explorer", "/explorer/blocks", "/explorer/txs", "/explorer/validators", "/explorer/miners",
		"/explorer/supply", "/marketplace", "/miner", "/signin"} {
		a := get(t, c, e.web+p)
		if a.status != 200 {
			t.Errorf("%s: %d %s", p, a.status, a.body)
			continue
		}
		if m := inline.FindString(a.body); m != "" {
			t.Errorf("%s has inline script or a third-party URL: %q", p, m)
		}
		if !strings.Contains(a.body, "<h1") || !strings.Contains(a.body, `name="viewport"`) {
			t.Errorf("%s lacks a heading or the viewport", p)
		}
	}
}

func TestExplorerShowsTransferAndSearchFindsIt(t *testing.T) {
	e := startEnv(t)
	c := client()
	hash, to := e.transfer(t, 7*coin.Unit)
	tx := e.committed(t, hash)

	a := get(t, c, e.web+"/explorer/tx/"+hash)
	if a.status != 200 || !strings.Contains(a.body, hash) || !strings.Contains(a.body, to.String()) {
		t.Fatalf("tx page: %d %s", a.status, a.body)
	}
	var api struct {
		Transaction struct {
			Type, From string
			Height     int64
			Body       struct{ To, Amount string }
		}
		Summary struct{ To, Amount string }
	}
	if err := httpx.Do(context.Background(), nil, "GET", e.web+"/api/explorer/transactions/"+hash, nil, nil, &api); err != nil {
		t.Fatal(err)
	}
	if api.Transaction.Height != tx.Height || api.Transaction.Body.To != to.String() || api.Transaction.From != e.d.Genesis.String() ||
		api.Transaction.Type != "bank/send" || api.Summary.To != to.String() || api.Summary.Amount != "7" {
		t.Errorf("api tx %+v, want height %d to %s from %s", api.Transaction, tx.Height, to, e.d.Genesis)
	}
	a = get(t, c, fmt.Sprintf("%s/explorer/block/%d", e.web, tx.Height))
	if a.status != 200 || !strings.Contains(a.body, hash) {
		t.Errorf("block %d page lacks the tx: %d", tx.Height, a.status)
	}
	a = get(t, c, e.web+"/explorer/address/"+to.String())
	if a.status != 200 || !strings.Contains(a.body, "7") || !strings.Contains(a.body, hash) {
		t.Errorf("address page: %d %s", a.status, a.body)
	}
	var blocks struct {
		Blocks []struct{ Height int64 } `json:"blocks"`
	}
	if err := httpx.Do(context.Background(), nil, "GET", e.web+"/api/explorer/blocks", nil, nil, &blocks); err != nil || len(blocks.Blocks) == 0 {
		t.Fatalf("api blocks: %v %+v", err, blocks)
	}

	for q, want := range map[string]string{
		hash:                              "/explorer/tx/" + hash,
		strings.TrimPrefix(hash, "0x"):    "/explorer/tx/" + hash,
		fmt.Sprint(tx.Height):             fmt.Sprintf("/explorer/block/%d", tx.Height),
		to.String():                       "/explorer/address/" + to.String(),
		strings.ToUpper(to.String()[:]):   "/explorer/address/" + to.String(),
		" " + fmt.Sprint(tx.Height) + " ": fmt.Sprintf("/explorer/block/%d", tx.Height),
	} {
		a := get(t, c, e.web+"/explorer/search?q="+url.QueryEscape(q))
		if a.status != http.StatusSeeOther || a.header.Get("Location") != want {
			t.Errorf("search %q: %d to %q, want %q", q, a.status, a.header.Get("Location"), want)
		}
	}
	for _, q := range []string{"", "garbage", "<script>alert(1)</script>", "99999999999", "0x" + strings.Repeat("ab", 32),
		"aitbc1notanaddress", strings.Repeat("z", 5000), "-1", "%00"} {
		a := get(t, c, e.web+"/explorer/search?q="+url.QueryEscape(q))
		if a.status != 200 || !strings.Contains(a.body, "Nothing found") {
			t.Errorf("search %q: %d, want 200 nothing found", q, a.status)
		}
		if strings.Contains(a.body, "<script>alert") {
			t.Errorf("search %q echoes markup unescaped", q)
		}
	}
	var found struct {
		Found  bool
		Target string
	}
	if err := httpx.Do(context.Background(), nil, "GET", e.web+"/api/explorer/search?q="+url.QueryEscape(hash), nil, nil, &found); err != nil ||
		!found.Found || found.Target != "/explorer/tx/"+hash {
		t.Errorf("api search: %v %+v", err, found)
	}

	// CSV of the block's transactions.
	a = get(t, c, fmt.Sprintf("%s/explorer/block/%d?format=csv", e.web, tx.Height))
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/csv") || !strings.Contains(a.body, hash) {
		t.Errorf("block CSV: %d %q %s", a.status, a.header.Get("Content-Type"), a.body)
	}
}

func TestUnknownIDsAre404AndBadInputIsRefused(t *testing.T) {
	e := startEnv(t)
	c := client()
	for _, p := range []string{"/explorer/block/99999999", "/explorer/tx/0x" + strings.Repeat("0", 64),
		"/explorer/job/" + strings.Repeat("0", 32), "/explorer/nothing", "/miner/" + address.FromPubKey(make([]byte, 32)).String(),
		"/marketplace/service/" + address.FromPubKey(make([]byte, 32)).String()} {
		if a := get(t, c, e.web+p); a.status != 404 || !strings.Contains(a.body, "Not found") {
			t.Errorf("%s: %d, want the 404 page", p, a.status)
		}
	}
	for _, p := range []string{"/explorer/block/abc", "/explorer/block/-4", "/explorer/address/nope", "/miner/nope"} {
		if a := get(t, c, e.web+p); a.status != 400 && a.status != 404 {
			t.Errorf("%s: %d, want 400 or 404", p, a.status)
		}
	}
	var apiErr *httpx.APIError
	err := httpx.Do(context.Background(), nil, "GET", e.web+"/api/explorer/blocks/99999999", nil, nil, nil)
	if !errorsAs(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "not_found" {
		t.Errorf("api unknown block: %v", err)
	}
}

func TestSignInSessionAndCrossSiteForms(t *testing.T) {
	e := startEnv(t)
	c := client()
	form := get(t, c, e.web+"/signin")
	token := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(form.body)
	if form.status != 200 || token == nil {
		t.Fatalf("signin page: %d %s", form.status, form.body)
	}
	// A post from another site is refused before anything else.
	a := post(t, c, e.web+"/signin", url.Values{"csrf": {token[1]}, "wallet": {devnet.GenesisWallet}, "password": {"123"}}, "http://evil.example")
	if a.status != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %d", a.status)
	}
	// A wrong password signs nobody in.
	a = post(t, c, e.web+"/signin", url.Values{"csrf": {token[1]}, "wallet": {devnet.GenesisWallet}, "password": {"wrong"}}, "")
	if a.status != http.StatusUnauthorized || sessionCookie(a) != nil {
		t.Fatalf("wrong password: %d %v", a.status, a.header)
	}
	// A used challenge is not taken again.
	a = post(t, c, e.web+"/signin", url.Values{"csrf": {token[1]}, "wallet": {devnet.GenesisWallet}, "password": {"123"}}, "")
	if a.status != http.StatusForbidden {
		t.Fatalf("reused challenge: %d", a.status)
	}
	token = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(get(t, c, e.web+"/signin").body)
	a = post(t, c, e.web+"/signin", url.Values{"csrf": {token[1]}, "wallet": {devnet.GenesisWallet}, "password": {"123"}, "next": {"//evil.example/"}}, e.web)
	if a.status != http.StatusSeeOther || a.header.Get("Location") != "/marketplace" {
		t.Fatalf("sign-in: %d %q %s", a.status, a.header.Get("Location"), a.body)
	}
	ck := sessionCookie(a)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.MaxAge > 24*3600 {
		t.Fatalf("session cookie %+v", ck)
	}
	mine := get(t, c, e.web+"/marketplace/mine")
	if mine.status != 200 || !strings.Contains(mine.body, e.d.Genesis.String()) || mine.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("signed-in page: %d %s", mine.status, mine.body)
	}
	// Pages rendered once for signed-out viewers never carry a session,
	// and a signed-in viewer's never comes from that cache.
	for _, p := range []string{"/explorer", "/explorer/block/1"} {
		anon := get(t, client(), e.web+p)
		if strings.Contains(anon.body, "Signed in as") || strings.Contains(anon.body, `name="csrf"`) {
			t.Errorf("%s for a signed-out viewer shows a session", p)
		}
		if mine := get(t, c, e.web+p); !strings.Contains(mine.body, "Signed in as") {
			t.Errorf("%s for the signed-in viewer does not show the session", p)
		}
		if again := get(t, client(), e.web+p); strings.Contains(again.body, "Signed in as") {
			t.Errorf("%s for a signed-out viewer after a signed-in one shows a session", p)
		}
	}
	// A form without the session's token is refused, and signs nothing.
	a = post(t, c, e.web+"/signout", url.Values{"csrf": {"0000"}}, "")
	if a.status != http.StatusForbidden {
		t.Errorf("sign-out without the token: %d", a.status)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(mine.body)
	a = post(t, c, e.web+"/signout", url.Values{"csrf": {csrf[1]}}, e.web)
	if a.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", a.status)
	}
	if mine := get(t, c, e.web+"/marketplace/mine"); strings.Contains(mine.body, "Signed in as") {
		t.Errorf("still signed in after signing out")
	}
}

func sessionCookie(a answer) *http.Cookie {
	for _, ck := range (&http.Response{Header: a.header}).Cookies() {
		if ck.Name == "aitbc_session" && ck.Value != "" {
			return ck
		}
	}
	return nil
}

func TestJobOnExplorerAndMinerDashboard(t *testing.T) {
	e := startEnv(t)
	c := client()
	v := e.runJob(t)
	a := get(t, c, e.web+"/explorer/job/"+v.JobID)
	if a.status != 200 || !strings.Contains(a.body, v.Miner) || !strings.Contains(a.body, "settled") {
		t.Fatalf("job page: %d %s", a.status, a.body)
	}
	var job struct {
		Job     struct{ Status string }
		Receipt json.RawMessage
	}
	if err := httpx.Do(context.Background(), nil, "GET", e.web+"/api/explorer/jobs/"+v.JobID, nil, nil, &job); err != nil ||
		job.Job.Status != "settled" || len(job.Receipt) == 0 {
		t.Fatalf("api job: %v %+v", err, job)
	}
	if a := get(t, c, e.web+"/explorer/search?q="+v.JobID); a.header.Get("Location") != "/explorer/job/"+v.JobID {
		t.Errorf("search job id: %d %q", a.status, a.header.Get("Location"))
	}
	a = get(t, c, e.web+"/miner/"+v.Miner)
	if a.status != 200 || !strings.Contains(a.body, v.JobID) || !strings.Contains(a.body, "tolstoy-1m") || !strings.Contains(a.body, "<svg") {
		t.Fatalf("miner dashboard: %d %s", a.status, a.body)
	}
	a = get(t, c, e.web+"/miner")
	if a.status != 200 || !strings.Contains(a.body, `href="/miner/`+v.Miner+`"`) {
		t.Errorf("miner index lacks %s", v.Miner)
	}
	if a := get(t, c, e.web+"/miner?address="+v.Miner); a.header.Get("Location") != "/miner/"+v.Miner {
		t.Errorf("miner form: %d %q", a.status, a.header.Get("Location"))
	}
	a = get(t, c, e.web+"/explorer/miners?format=csv")
	if a.status != 200 || !strings.Contains(a.body, v.Miner) {
		t.Errorf("miners CSV: %d %s", a.status, a.body)
	}
	a = get(t, c, e.web+"/marketplace?type=inference&available=1")
	if a.status != 200 || !strings.Contains(a.body, v.Miner) {
		t.Errorf("marketplace filtered: %d", a.status)
	}
	a = get(t, c, e.web+"/marketplace/service/"+v.Miner+"?tokens=100")
	if a.status != 200 || !strings.Contains(a.body, "tolstoy-1m") || !strings.Contains(a.body, "0.1 AITBC") {
		t.Errorf("service page with a quote: %d %s", a.status, a.body)
	}
	// The quote's total is what the coordinator asks for at most: price,
	// protocol fee and its commission.
	if jp, err := jobs.QueryParams(context.Background(), e.node); err != nil {
		t.Error(err)
	} else if total := jp.MaxCost(jobs.PriceFor(100, 1*coin.Unit)); !strings.Contains(a.body, "<strong>"+total.String()+" AITBC</strong>") {
		t.Errorf("the quote lacks the total %s", total)
	}
	a = get(t, c, e.web+"/marketplace?gpu=NoSuchGPU")
	if a.status != 200 || strings.Contains(a.body, `/marketplace/service/`+v.Miner) {
		t.Errorf("marketplace filter by GPU keeps the miner: %d", a.status)
	}
	a = get(t, c, e.web+"/marketplace?min_price=abc")
	if a.status != 200 && a.status != 400 {
		t.Errorf("marketplace bad price: %d", a.status)
	}
}

// TestLiveFeedDeliversTransaction reads the explorer's event stream as a
// page does, and finds a new transfer there within a block or two.
func TestLiveFeedDeliversTransaction(t *testing.T) {
	e := startEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.web+"/api/explorer/live", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "event: hello") {
	}
	hash, _ := e.transfer(t, coin.Unit)
	sent := time.Now()
	var event string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "tx" && strings.Contains(v, hash) {
			tx := e.committed(t, hash)
			t.Logf("tx %s on the live feed %s after it was sent (block %d)", hash[:10], time.Since(sent).Round(time.Millisecond), tx.Height)
			return
		}
	}
	t.Fatalf("stream ended without tx %s: %v", hash, sc.Err())
}

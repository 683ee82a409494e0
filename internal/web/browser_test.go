package web_test

import (
	"context"
	_ "embed"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	chaintx "github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/devnet"
)

// axeSource is axe-core, vendored from its npm package (testdata/axe-core).
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

// envRequireBrowser makes a missing Chromium a failure instead of a skip;
// .ci/run sets it, having installed Debian's chromium.
const envRequireBrowser = "AITBC_REQUIRE_BROWSER"

// envScreenshots names the folder for the pages' screenshots (default: a
// new temporary folder, printed by the test).
const envScreenshots = "AITBC_WEB_SCREENSHOTS"

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(envRequireBrowser) != "" {
		t.Fatalf("no chromium on PATH and %s is set (apt-get install chromium)", envRequireBrowser)
	}
	t.Skip("no chromium on PATH (apt-get install chromium); set " + envRequireBrowser + " to make this a failure")
	return ""
}

// tab is a headless Chromium tab that records what the page's console and
// scripts complain about (a blocked inline script or a refused request
// is one).
type tab struct {
	t        *testing.T
	ctx      context.Context
	mu       sync.Mutex
	problems []string
	shots    string
}

func newTab(t *testing.T) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox,
		chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &tab{t: t, ctx: ctx}
	// The first action starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			// An event stream the page closes when it navigates away, and
			// the 401 and 404 pages the tests open on purpose, are not faults.
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !strings.Contains(m.URL, "/api/explorer/live") &&
				!strings.Contains(m.URL, "/events") && !strings.Contains(m.Text, "status of 404") {
				b.problem(fmt.Sprintf("console %s: %s (%s)", m.Type, m.Text, m.URL))
			}
		}
	}()
	b.shots = os.Getenv(envScreenshots)
	if b.shots == "" {
		b.shots, _ = os.MkdirTemp("", "aitbc-web-screenshots-")
	}
	if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of every page, desktop and phone width, in %s", b.shots)
	return b
}

func (b *tab) problem(s string) {
	b.mu.Lock()
	b.problems = append(b.problems, s)
	b.mu.Unlock()
}

// do runs browser actions, failing the test on error.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// within runs actions that must finish in d.
func (b *tab) within(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s within %s: %v", what, d, err)
	}
}

func value[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

func (b *tab) location() string {
	b.t.Helper()
	u, err := url.Parse(value(b, "location", chromedp.Location()))
	if err != nil {
		b.t.Fatal(err)
	}
	return u.RequestURI()
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return value(b, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// waitLive waits until the explorer's live feed has connected.
func (b *tab) waitLive() {
	b.t.Helper()
	b.within("live feed connects", 10*time.Second,
		chromedp.Poll[chromedp.Void](`document.getElementById("live-status").textContent.indexOf("Live:") === 0`))
}

// check runs axe-core on the open page (no serious or critical
// violation), saves its screenshots at desktop and phone width, checks
// that at phone width nothing makes the page scroll sideways, and that
// the page logged no error.
func (b *tab) check(name string) {
	b.t.Helper()
	b.do("load axe-core", chromedp.Evaluate[chromedp.Void](axeSource))
	violations := value(b, "axe on "+name, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
			return r.violations.filter(function (v) { return v.impact === "serious" || v.impact === "critical"; })
				.map(function (v) { return v.impact + " " + v.id + ": " + v.help + " at " + v.nodes.slice(0, 3).map(function (n) { return n.target.join(" "); }).join(", "); });
		})`, chromedp.EvalAwaitPromise))
	for _, v := range violations {
		b.t.Errorf("%s: accessibility: %s", name, v)
	}
	desktop := value(b, "screenshot of "+name, chromedp.FullScreenshot(100))
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile), chromedp.Sleep(150*time.Millisecond))
	overflow := value(b, "overflow of "+name, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > 391`))
	phone := value(b, "phone screenshot of "+name, chromedp.FullScreenshot(100))
	b.do("desktop width", chromedp.ResetViewport())
	if overflow {
		b.t.Errorf("%s scrolls sideways at phone width (390 px)", name)
	}
	for suffix, img := range map[string][]byte{"desktop": desktop, "phone": phone} {
		if err := os.WriteFile(filepath.Join(b.shots, name+"-"+suffix+".png"), img, 0o644); err != nil {
			b.t.Error(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the console's last messages
	b.mu.Lock()
	problems := b.problems
	b.problems = nil
	b.mu.Unlock()
	for _, p := range problems {
		b.t.Errorf("%s: %s", name, p)
	}
}

// follow runs actions that lead to another page (a click, a form) and
// waits until that page has loaded.
func (b *tab) follow(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	old := value(b, "location", chromedp.Location())
	b.do(what, actions...)
	// Evaluating while the old page goes away fails now and then: ask again.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`location.href !== `+strconv.Quote(old)+` && document.readyState === "complete"`))
		cancel()
		if err == nil && done {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: still on %s after 30s (%v)", what, old, err)
		}
	}
	b.within(what+": the next page's heading", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("main h1")))
}

// open loads a page and waits for its heading.
func (b *tab) open(base, path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
}

// TestBrowser drives the pages in a real headless Chromium: a transfer
// and a job appear live on the explorer, are opened and searched for, the
// receipt verifies in the browser, the marketplace filters, a signed-in
// wallet submits a job from the marketplace and watches its tokens,
// receipt and settlement arrive, and the miner's dashboard shows the job.
// Every page passes axe-core's serious and critical rules.
func TestBrowser(t *testing.T) {
	e := startEnv(t)
	b := newTab(t)
	base := e.web

	b.open(base, "/")
	b.check("home")

	// A transfer appears on the open explorer within a block of its commit.
	b.open(base, "/explorer")
	b.waitLive()
	hash, to := e.transfer(t, 3*coin.Unit)
	b.within("transfer appears live", 5*time.Second, chromedp.WaitVisible(chromedp.CSS(`#live-txs tr[data-tx="`+hash+`"]`)))
	seen := time.Now()
	head, err := e.node.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tx := e.committed(t, hash)
	blk, err := e.node.Block(context.Background(), tx.Height)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("transfer in block %d shown on the open explorer %s after the block's time (head then %d)",
		tx.Height, seen.Sub(blk.Time).Round(time.Millisecond), head.Height)
	if head.Height > tx.Height+1 {
		t.Errorf("the transfer of block %d appeared only when the head was %d", tx.Height, head.Height)
	}
	b.check("explorer")

	// The link is clicked by script, not by a mouse at its coordinates: the
	// live tables keep growing, so the row may move between chromedp
	// measuring it and the click arriving, and the click hit nothing.
	b.follow("open the live row", chromedp.Evaluate[chromedp.Void](`document.querySelector('#live-txs tr[data-tx="`+hash+`"] a').click()`))
	if loc := b.location(); loc != "/explorer/tx/"+hash {
		t.Fatalf("the live row led to %s", loc)
	}
	if body := b.text("main"); !strings.Contains(body, to.String()) || !strings.Contains(body, "bank/send") {
		t.Errorf("tx page: %s", body)
	}
	b.check("tx")

	// Search from the header's box.
	b.follow("search", chromedp.SetValue(chromedp.ID("q"), fmt.Sprint(tx.Height)), chromedp.Submit(chromedp.ID("q")))
	if loc := b.location(); loc != fmt.Sprintf("/explorer/block/%d", tx.Height) {
		t.Errorf("search for height %d led to %s", tx.Height, loc)
	}
	b.check("block")
	b.open(base, "/explorer/search?q="+url.QueryEscape("<b>nothing</b>"))
	if h := b.text("main h1"); h != "Nothing found" {
		t.Errorf("search for garbage: %q", h)
	}
	b.check("search-nothing")
	b.open(base, "/explorer/address/"+to.String())
	b.check("address")

	// A job run through the API appears live too (its settlement), and its
	// receipt verifies in the browser.
	b.open(base, "/explorer")
	b.waitLive()
	job := e.runJob(t)
	b.within("settlement appears live", 5*time.Second, chromedp.WaitVisible(chromedp.CSS(`#live-txs tr[data-tx="`+job.Settlement.SettleTx+`"]`)))
	b.follow("search job", chromedp.SetValue(chromedp.ID("q"), job.JobID), chromedp.Submit(chromedp.ID("q")))
	if loc := b.location(); loc != "/explorer/job/"+job.JobID {
		t.Fatalf("search for the job led to %s", loc)
	}
	b.within("verify the receipt", 10*time.Second, chromedp.Click(chromedp.ID("verify-button")), chromedp.WaitVisible(chromedp.ID("verify-verdict")))
	if v := b.text("#verify-out"); !strings.HasPrefix(v, "Verified") {
		t.Errorf("receipt check in the browser: %s", v)
	}
	b.check("job")
	for _, p := range []string{"/explorer/validators", "/explorer/miners", "/explorer/supply", "/explorer/blocks", "/explorer/txs", "/swarm", "/exchange", "/exchange?amount=1000"} {
		b.open(base, p)
		b.check(strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(strings.TrimPrefix(p, "/")))
	}

	// The marketplace's filters.
	b.open(base, "/marketplace")
	if n := b.text("#service-count"); !strings.HasPrefix(n, "1 of 1") {
		t.Errorf("marketplace lists %q", n)
	}
	b.check("marketplace")
	b.follow("filter by price", chromedp.SetValue(chromedp.ID("f-max"), "0.5"), chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)))
	if n := b.text("#service-count"); !strings.HasPrefix(n, "0 of 1") || !strings.Contains(b.location(), "max_price=0.5") {
		t.Errorf("a highest price under the miner's keeps %q (%s)", n, b.location())
	}
	b.follow("filter available", chromedp.Evaluate[chromedp.Void](`document.getElementById("f-max").value = ""`), chromedp.Click(chromedp.ID("f-avail")),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)))
	if n := b.text("#service-count"); !strings.HasPrefix(n, "1 of 1") {
		t.Errorf("available now: %q", n)
	}
	b.open(base, "/marketplace/provide")
	if !strings.Contains(b.text("main"), "Sign in with your wallet to create a listing") {
		t.Errorf("Become a Provider signed out: %s", b.text("main"))
	}
	b.check("provide")

	// Sign in and submit a job from the service's page.
	b.open(base, "/marketplace/service/"+job.Miner)
	b.check("service")
	b.open(base, "/signin?next="+url.QueryEscape("/marketplace/service/"+job.Miner))
	b.check("signin")
	b.follow("sign in", chromedp.SendKeys(chromedp.ID("s-wallet"), devnet.GenesisWallet), chromedp.SendKeys(chromedp.ID("s-pw"), "123"),
		chromedp.Submit(chromedp.ID("s-pw")))
	if loc := b.location(); loc != "/marketplace/service/"+job.Miner {
		t.Fatalf("after signing in: %s", loc)
	}
	b.follow("submit a job", chromedp.SendKeys(chromedp.ID("j-prompt"), "It was a dark"), chromedp.SetValue(chromedp.ID("j-tokens"), "24"),
		chromedp.Submit(chromedp.ID("j-prompt")))
	if loc := b.location(); !strings.HasPrefix(loc, "/marketplace/jobs/") {
		t.Fatalf("after submitting: %s (%s)", loc, b.text("main"))
	}
	b.within("tokens, receipt and settlement", 60*time.Second, chromedp.WaitVisible(chromedp.ID("settlement-line")))
	if out := b.text("#job-output"); strings.TrimSpace(out) == "" {
		t.Error("no tokens shown")
	}
	if !strings.Contains(b.text("#job-receipt"), "Receipt ") || !strings.Contains(b.text("#job-receipt"), "hashes to the receipt's result hash") {
		t.Errorf("receipt: %s", b.text("#job-receipt"))
	}
	if s := b.text("#settlement-line"); !strings.HasPrefix(s, "Settled at block") {
		t.Errorf("settlement: %s", s)
	}
	b.check("my-job")

	// Become a Provider: a listing on chain, signed by the signed-in wallet.
	b.open(base, "/marketplace/provide")
	b.check("provide-signed-in")
	b.follow("create a listing", chromedp.SendKeys(chromedp.ID("p-name"), "Browser GPU"),
		chromedp.SetValue(chromedp.ID("p-type"), "gpu-rental"), chromedp.SendKeys(chromedp.ID("p-desc"), "Listed from a browser"),
		chromedp.SetValue(chromedp.ID("p-model"), "per_hour"), chromedp.SendKeys(chromedp.ID("p-rate"), "3"),
		chromedp.SendKeys(chromedp.ID("p-pw"), "123"), chromedp.Click(chromedp.ID("p-submit")))
	var listed string
	for _, l := range providerListings(t, e, e.d.Genesis) {
		if l.Name == "Browser GPU" && l.Type == "gpu-rental" && l.Unit == "hour" && l.ListedBy == e.d.Genesis {
			listed = l.ID
		}
	}
	if listed == "" {
		t.Fatalf("the node's route does not show the listing made in the browser (at %s: %s)", b.location(), b.text("main"))
	}
	if loc := b.location(); loc != "/marketplace/service/"+listed {
		t.Errorf("after creating listing %s: %s", listed, loc)
	}
	b.open(base, "/marketplace?type=gpu-rental")
	b.follow("open the listing", chromedp.Click(chromedp.CSS(`#listings a[href="/marketplace/service/`+listed+`"]`)))
	if body := b.text("main"); !strings.Contains(body, "Listed from a browser") || !strings.Contains(body, "3 AITBC (per_hour)") ||
		!strings.Contains(body, "out of 100") {
		t.Errorf("the listing's page: %s", body)
	}
	b.check("listing")
	b.open(base, "/marketplace/mine")
	b.check("mine")

	// The miner's dashboard, with a staker: genesis-ops stakes 3.5 AITBC
	// to the miner (staking/stake, as `aitbc stake` sends it).
	op, err := address.Parse(job.Miner)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := e.d.Wallets.Service().SignAndSubmit(context.Background(), devnet.GenesisWallet, "123", staking.NewStakeMsg(op, 3*coin.Unit+coin.Unit/2), 0)
	if err != nil {
		t.Fatal(err)
	}
	stakerSel := `#stakers a[href="/explorer/address/` + e.committed(t, sub.TxHash).From.String() + `"]`
	for deadline := time.Now().Add(10 * time.Second); ; { // the pages read the chain once a block
		if a := get(t, client(), base+"/api/explorer/addresses/"+job.Miner); strings.Contains(a.body, `"amount":"3.5"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.open(base, "/explorer/miners")
	b.follow("order by stake", chromedp.Click(chromedp.CSS(`a[href="/explorer/miners?sort=stake"]`)))
	if loc, cur := b.location(), b.text(`nav strong[aria-current="true"]`); loc != "/explorer/miners?sort=stake" || cur != "bonded stake" {
		t.Errorf("ordering by stake led to %s (%q)", loc, cur)
	}
	b.check("miners-by-stake")
	b.open(base, "/miner")
	b.check("miner-index")
	b.follow("open the dashboard", chromedp.SetValue(chromedp.ID("m-addr"), job.Miner), chromedp.Submit(chromedp.ID("m-addr")))
	if loc := b.location(); loc != "/miner/"+job.Miner {
		t.Errorf("miner form led to %s", loc)
	}
	if body := b.text("main"); !strings.Contains(body, "tolstoy-1m") || !strings.Contains(body, job.JobID[:10]) {
		t.Errorf("dashboard: %s", body)
	}
	b.within("the staker on the dashboard", 2*time.Second, chromedp.WaitVisible(chromedp.CSS(stakerSel)))
	if st := b.text("#stakers"); !strings.Contains(st, "3.5 AITBC") {
		t.Errorf("stakers: %s", st)
	}
	b.check("miner")

	// A pool with the miner in it: its page and the dashboard's pool table.
	svc := e.d.Wallets.Service()
	pool := fmt.Sprintf("browser-pool-%d", time.Now().UnixNano()%1_000_000_000)
	for _, m := range []struct {
		wallet string
		msg    chaintx.Msg
	}{{devnet.GenesisWallet, pools.NewCreateMsg(pool, 125)}, {devnet.MinerWallet(0), pools.NewJoinMsg(pool)}} {
		sub, err := svc.SignAndSubmit(context.Background(), m.wallet, "123", m.msg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ptx := e.committed(t, sub.TxHash); ptx.Status != "committed" {
			t.Fatalf("%s: %s %s", m.msg.Type, ptx.Status, ptx.Error)
		}
	}
	b.open(base, "/explorer/pool/"+pool)
	if fee := b.text("#pool-fee"); fee != "1.25%" {
		t.Errorf("pool fee: %q", fee)
	}
	b.check("pool")
	for deadline := time.Now().Add(10 * time.Second); ; { // the dashboard reads the chain once a block
		b.open(base, "/miner/"+job.Miner)
		if strings.Contains(b.text("main"), pool) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard does not show pool %s: %s", pool, b.text("main"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.check("miner-in-pool")
	sub, err = svc.SignAndSubmit(context.Background(), devnet.MinerWallet(0), "123", pools.NewLeaveMsg(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ltx := e.committed(t, sub.TxHash); ltx.Status != "committed" {
		t.Fatalf("leave: %s %s", ltx.Status, ltx.Error)
	}
	b.open(base, "/explorer/nothing-here")
	b.check("not-found")
}

package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/devnet"
)

// TestPoolPages: genesis-ops creates a pool and the devnet's miner joins
// it (as `aitbc pool create|join` do) and runs a job; the miner's
// dashboard, both addresses' pages and the pool's page show the pools
// module's exact figures, search by the pool's name finds it; after the
// miner leaves, its dashboard says it is not in a pool; an unknown pool is
// a 404 page.
func TestPoolPages(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := client()
	svc := e.d.Wallets.Service()
	name := fmt.Sprintf("web-pool-%d", time.Now().UnixNano()%1_000_000_000)

	sub, err := svc.SignAndSubmit(ctx, devnet.GenesisWallet, "123", pools.NewCreateMsg(name, 250), 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx1 := e.committed(t, sub.TxHash)
	if ctx1.Status != "committed" {
		t.Fatalf("create: %s %s", ctx1.Status, ctx1.Error)
	}
	operator := ctx1.From.String()
	sub, err = svc.SignAndSubmit(ctx, devnet.MinerWallet(0), "123", pools.NewJoinMsg(name), 0)
	if err != nil {
		t.Fatal(err)
	}
	jtx := e.committed(t, sub.TxHash)
	if jtx.Status != "committed" {
		t.Fatalf("join: %s %s", jtx.Status, jtx.Error)
	}
	miner := jtx.From.String()
	e.runJob(t) // work for the pool this epoch

	// A devnet's reward epoch is 60 blocks, a few seconds: one may end at
	// any moment of this test, split the pool's earnings and drop members
	// who left. So each expectation is computed from the module's state
	// read just before the page, and the page must agree with one such
	// reading (the pages read the chain once a block, so they converge).
	query := func() (pools.View, *pools.MemberView) {
		t.Helper()
		v, err := pools.Query(ctx, e.node, name)
		if err != nil {
			t.Fatal(err)
		}
		for i := range v.Members {
			if v.Members[i].Address.String() == miner {
				return v, &v.Members[i]
			}
		}
		return v, nil
	}
	agree := func(u string, want func(v pools.View, m *pools.MemberView) []string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, m := query()
			wants := want(v, m)
			a := get(t, c, e.web+u)
			missing := ""
			for _, s := range wants {
				if !strings.Contains(a.body, s) {
					missing = s
					break
				}
			}
			if a.status == 200 && missing == "" {
				return a.body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s (%d) lacks %q (module: %+v):\n%s", u, a.status, missing, v, a.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The job's work reaches the pool: as tokens this epoch, or already
	// split if the epoch ended since.
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, m := query()
		if (m != nil && m.Tokens > 0) || v.Paid != 0 {
			if v.Operator.String() != operator || v.FeeBps != 250 {
				t.Fatalf("pool: %+v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the module shows no work of the miner in the pool: %+v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	link := fmt.Sprintf(`<a href="/explorer/pool/%s">%s</a>`, name, name)
	figures := func(v pools.View, tokens uint64) string {
		return fmt.Sprintf("<td>2.5%%</td><td>%d tokens</td><td>%s AITBC</td><td>%s AITBC</td>", tokens, v.Accrued, v.Paid)
	}
	memberRow := func(v pools.View, m *pools.MemberView) []string {
		if m == nil || !m.Member {
			t.Fatalf("the miner is no member of the pool: %+v", v)
		}
		return []string{link + "</td><td>member</td>", figures(v, m.Tokens)}
	}
	body := agree("/miner/"+miner, memberRow)
	if strings.Contains(body, "not in a pool") || strings.Contains(body, "no module") {
		t.Errorf("the dashboard of a pool member says it is in none:\n%s", body)
	}
	agree("/explorer/address/"+miner, memberRow)
	agree("/explorer/address/"+operator, func(v pools.View, _ *pools.MemberView) []string {
		return []string{link + "</td><td>operator</td>", "This address is not in a pool.", figures(v, 0)}
	})
	agree("/explorer/pool/"+name, func(v pools.View, m *pools.MemberView) []string {
		if m == nil {
			t.Fatalf("the miner is no member of the pool: %+v", v)
		}
		return []string{"<h1>Pool " + name + "</h1>", `id="pool-operator">` + operator, `id="pool-fee">2.5%`,
			`id="pool-accrued">` + v.Accrued.String() + " AITBC", `id="pool-paid">` + v.Paid.String() + " AITBC",
			fmt.Sprintf(`href="/miner/%s" title="%s">%s</a></td><td>yes</td><td>%d</td>`, miner, miner, shortAddr(miner), m.Tokens)}
	})
	if a := get(t, c, e.web+"/explorer/search?q="+name); a.status != 303 || a.header.Get("Location") != "/explorer/pool/"+name {
		t.Errorf("search %s: %d %s", name, a.status, a.header.Get("Location"))
	}

	sub, err = svc.SignAndSubmit(ctx, devnet.MinerWallet(0), "123", pools.NewLeaveMsg(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if ltx := e.committed(t, sub.TxHash); ltx.Status != "committed" {
		t.Fatalf("leave: %s %s", ltx.Status, ltx.Error)
	}
	body = agree("/miner/"+miner, func(pools.View, *pools.MemberView) []string { return []string{"This address is not in a pool."} })
	if strings.Contains(body, "<td>member</td>") {
		t.Errorf("the dashboard still shows the miner a member:\n%s", body)
	}
	// Until the epoch ends the pool keeps the leaver's work this epoch (it
	// is paid at the split); after it, the leaver is gone.
	agree("/explorer/pool/"+name, func(v pools.View, m *pools.MemberView) []string {
		paid := `id="pool-paid">` + v.Paid.String() + " AITBC"
		switch {
		case m == nil:
			return []string{paid, "No members, and no work this epoch."}
		case m.Member:
			t.Fatalf("the miner is still a member after leaving: %+v", v)
		}
		return []string{paid, fmt.Sprintf(`href="/miner/%s" title="%s">%s</a></td><td>left (work this epoch)</td>`, miner, miner, shortAddr(miner))}
	})

	for _, u := range []string{"/explorer/pool/no-such-pool", "/explorer/pool/Not%20A%20Name"} {
		if a := get(t, c, e.web+u); a.status != 404 || !strings.Contains(a.body, "<h1>") {
			t.Errorf("%s: %d\n%s", u, a.status, a.body)
		}
	}
}

// shortAddr is how the pages abbreviate an address.
func shortAddr(s string) string { return s[:10] + "…" + s[len(s)-6:] }

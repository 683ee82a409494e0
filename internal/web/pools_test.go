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

	eventually := func(u string, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			a := get(t, c, e.web+u)
			missing := ""
			for _, s := range want {
				if !strings.Contains(a.body, s) {
					missing = s
					break
				}
			}
			if a.status == 200 && missing == "" {
				return a.body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s (%d) lacks %q:\n%s", u, a.status, missing, a.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The module's figures once they stop changing within a block: the
	// pages read it once a block, so wait for them to agree.
	var v pools.View
	var tokens uint64
	deadline := time.Now().Add(15 * time.Second)
	for {
		v, err = pools.Query(ctx, e.node, name)
		if err != nil {
			t.Fatal(err)
		}
		tokens = 0
		for _, m := range v.Members {
			if m.Address.String() == miner && m.Member {
				tokens = m.Tokens
			}
		}
		if tokens > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if tokens == 0 {
		t.Fatalf("the module shows no work of the miner in the pool: %+v", v)
	}
	if v.Operator.String() != operator || v.FeeBps != 250 {
		t.Fatalf("pool: %+v", v)
	}
	link := fmt.Sprintf(`<a href="/explorer/pool/%s">%s</a>`, name, name)
	figures := fmt.Sprintf("<td>2.5%%</td><td>%d tokens</td><td>%s AITBC</td><td>%s AITBC</td>", tokens, v.Accrued, v.Paid)
	body := eventually("/miner/"+miner, link+"</td><td>member</td>", figures)
	if strings.Contains(body, "not in a pool") || strings.Contains(body, "no module") {
		t.Errorf("the dashboard of a pool member says it is in none:\n%s", body)
	}
	eventually("/explorer/address/"+miner, link+"</td><td>member</td>", figures)
	eventually("/explorer/address/"+operator, link+"</td><td>operator</td>", "This address is not in a pool.",
		fmt.Sprintf("<td>2.5%%</td><td>0 tokens</td><td>%s AITBC</td><td>%s AITBC</td>", v.Accrued, v.Paid))
	eventually("/explorer/pool/"+name, "<h1>Pool "+name+"</h1>", `id="pool-operator">`+operator, `id="pool-fee">2.5%`,
		`id="pool-accrued">`+v.Accrued.String()+" AITBC", `id="pool-paid">`+v.Paid.String()+" AITBC",
		fmt.Sprintf(`href="/miner/%s" title="%s">%s</a></td><td>yes</td><td>%d</td>`, miner, miner, shortAddr(miner), tokens))
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
	body = eventually("/miner/"+miner, "This address is not in a pool.")
	if strings.Contains(body, "<td>member</td>") {
		t.Errorf("the dashboard still shows the miner a member:\n%s", body)
	}
	eventually("/explorer/pool/"+name, fmt.Sprintf(`href="/miner/%s" title="%s">%s</a></td><td>left (work this epoch)</td>`, miner, miner, shortAddr(miner)))

	for _, u := range []string{"/explorer/pool/no-such-pool", "/explorer/pool/Not%20A%20Name"} {
		if a := get(t, c, e.web+u); a.status != 404 || !strings.Contains(a.body, "<h1>") {
			t.Errorf("%s: %d\n%s", u, a.status, a.body)
		}
	}
}

// shortAddr is how the pages abbreviate an address.
func shortAddr(s string) string { return s[:10] + "…" + s[len(s)-6:] }

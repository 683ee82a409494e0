package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	minersmod "github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/devnet"
)

// TestStakingPages: a fresh wallet stakes to the devnet's miner with the
// staking message (as `aitbc stake` does); the miner's dashboard, both
// addresses' pages and the leaderboard (HTML, CSV, JSON) show the exact
// amounts; after an unstake they show what is unbonding and the block it
// is paid back at.
func TestStakingPages(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := client()
	reg, err := minersmod.QueryAll(ctx, e.node)
	if err != nil || len(reg.Miners) == 0 {
		t.Fatalf("miners: %v", err)
	}
	miner := reg.Miners[0].Address.String()
	before := bondedTo(t, e, miner)

	svc := e.d.Wallets.Service()
	const pw = "staking pages test password"
	w, err := svc.Create(ctx, fmt.Sprintf("web-staker-%d", time.Now().UnixNano()), pw)
	if err != nil {
		t.Fatal(err)
	}
	staker := w.Address.String()
	fund, err := svc.Send(ctx, devnet.GenesisWallet, "123", w.Address, 20*coin.Unit, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.committed(t, fund.TxHash)
	stake := 7*coin.Unit + coin.Unit/4 // 7.25 AITBC
	sub, err := svc.SignAndSubmit(ctx, w.Name, pw, staking.NewStakeMsg(reg.Miners[0].Address, stake), 0)
	if err != nil {
		t.Fatal(err)
	}
	if tx := e.committed(t, sub.TxHash); tx.Status != "committed" {
		t.Fatalf("stake: %s %s", tx.Status, tx.Error)
	}
	bonded := before + stake
	if got := bondedTo(t, e, miner); got != bonded {
		t.Fatalf("the module says %s bonded to the miner, want %s", got, bonded)
	}

	// eventually waits until the page at u has every one of want (the
	// pages read the chain once a block).
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
	eventually("/explorer/tx/"+sub.TxHash, "7.25 AITBC staked to operator "+miner+" (held in staking.bonded).", "<dd>staking/stake</dd>")
	stakerRow := fmt.Sprintf(`<a class="mono" href="/explorer/address/%s" title="%s">`, staker, staker)
	body := eventually("/miner/"+miner, `id="op-bonded">`+bonded.String()+" AITBC", `id="op-commission">10%`,
		stakerRow, "<td>7.25 AITBC</td>", "This address is not in a pool.")
	if strings.Contains(body, "Stakers (delegation) and pools have no module") {
		t.Error("the dashboard still says staking does not exist")
	}
	eventually("/explorer/address/"+miner, `id="op-bonded">`+bonded.String()+" AITBC", stakerRow)
	eventually("/explorer/address/"+staker, `id="own-staked">7.25 AITBC`, `id="own-unbonding">0 AITBC`,
		fmt.Sprintf(`7.25 AITBC staked to <a class="mono" href="/explorer/address/%s"`, miner))
	eventually("/explorer/miners", "<td>"+bonded.String()+" AITBC</td><td>10%</td>", `<strong aria-current="true">reputation</strong>`)
	eventually("/explorer/miners?sort=stake", `<strong aria-current="true">bonded stake</strong>`, `href="/explorer/miners?sort=reputation"`)
	if a := get(t, c, e.web+"/explorer/miners?format=csv"); !strings.Contains(a.body, ",bonded_stake,commission_bps\n") ||
		!strings.Contains(a.body, ","+bonded.String()+",1000\n") {
		t.Errorf("miners CSV lacks the bonded stake %s:\n%s", bonded, a.body)
	}
	var mj struct {
		Sort   string `json:"sort"`
		Miners []struct {
			Address    string      `json:"address"`
			Bonded     coin.Amount `json:"bonded_stake"`
			Commission *uint64     `json:"commission_bps"`
		} `json:"miners"`
	}
	getJSONInto(t, c, e.web+"/api/explorer/miners?sort=stake", &mj)
	if mj.Sort != "stake" || len(mj.Miners) == 0 || mj.Miners[0].Address != miner || mj.Miners[0].Bonded != bonded ||
		mj.Miners[0].Commission == nil || *mj.Miners[0].Commission != 1000 {
		t.Errorf("miners JSON: %+v", mj)
	}
	getJSONInto(t, c, e.web+"/api/explorer/miners?sort=nonsense", &mj)
	if mj.Sort != "reputation" {
		t.Errorf("an unknown order answered %q, want reputation", mj.Sort)
	}

	// Unstake part: it shows as unbonding, paid back at the block the
	// module says.
	part := 2*coin.Unit + coin.Unit/4 // 2.25 AITBC
	sub, err = svc.SignAndSubmit(ctx, w.Name, pw, staking.NewUnstakeMsg(reg.Miners[0].Address, part), 0)
	if err != nil {
		t.Fatal(err)
	}
	utx := e.committed(t, sub.TxHash)
	if utx.Status != "committed" {
		t.Fatalf("unstake: %s %s", utx.Status, utx.Error)
	}
	p, err := staking.QueryParams(ctx, e.node)
	if err != nil {
		t.Fatal(err)
	}
	matures := utx.Height + p.UnbondingBlocks
	after := bonded - part
	eventually("/miner/"+miner, `id="op-bonded">`+after.String()+" AITBC", stakerRow, "<td>5 AITBC</td>",
		fmt.Sprintf("<td>2.25 AITBC, paid back at block %d</td>", matures))
	eventually("/explorer/tx/"+sub.TxHash, fmt.Sprintf("2.25 AITBC of the stake to operator %s started unbonding: it earns nothing from now on and is paid back at the end of block %d", miner, matures))
	eventually("/explorer/address/"+staker, `id="own-staked">5 AITBC`, `id="own-unbonding">2.25 AITBC`,
		"2.25 AITBC unbonding from", fmt.Sprintf("paid back at block %d</li>", matures))
	var aj struct {
		Staking staking.Delegator `json:"staking"`
	}
	getJSONInto(t, c, e.web+"/api/explorer/addresses/"+staker, &aj)
	if aj.Staking.Staked != 5*coin.Unit || aj.Staking.Unbonding != part || len(aj.Staking.Unbondings) != 1 ||
		aj.Staking.Unbondings[0].Matures != matures {
		t.Errorf("address JSON staking: %+v", aj.Staking)
	}
	var oj struct {
		Operator struct {
			Operator staking.OperatorView `json:"operator"`
			Stakers  []struct {
				Address   string      `json:"address"`
				Amount    coin.Amount `json:"amount"`
				Unbonding coin.Amount `json:"unbonding"`
			} `json:"stakers"`
		} `json:"operator"`
	}
	getJSONInto(t, c, e.web+"/api/explorer/addresses/"+miner, &oj)
	found := false
	for _, s := range oj.Operator.Stakers {
		if s.Address == staker {
			found = s.Amount == 5*coin.Unit && s.Unbonding == part
		}
	}
	if oj.Operator.Operator.Bonded != after || !found {
		t.Errorf("the miner's JSON: %+v", oj.Operator)
	}
}

func bondedTo(t *testing.T, e *env, op string) coin.Amount {
	t.Helper()
	ops, err := staking.QueryOperators(context.Background(), e.node)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops.Operators {
		if o.Address.String() == op {
			return o.Bonded
		}
	}
	return 0
}

func getJSONInto(t *testing.T, c *http.Client, u string, v any) {
	t.Helper()
	a := get(t, c, u)
	if a.status != 200 {
		t.Fatalf("%s: %d %s", u, a.status, a.body)
	}
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("%s: %v in %s", u, err, a.body)
	}
}

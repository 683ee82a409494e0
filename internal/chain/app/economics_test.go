package app_test

import (
	"encoding/json"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
)

var (
	staker1 = newKey(7)
	staker2 = newKey(8)
)

// newEconomy is a market with the default fee split (50% burned, 20% to
// the treasury, 30% to the proposer) and issuance on: 1 AITBC a block,
// epochs of epochBlocks, a miner's work reward capped at 100× the protocol
// fees its jobs paid, unbonding of 5 blocks, multisig proposals expiring after 20 blocks. Every account is funded at
// genesis, so the first block is the test's first transaction.
func newEconomy(t *testing.T, epochBlocks int64) *market {
	return newEconomyWith(t, epochBlocks, nil)
}

// newEconomyWith is newEconomy with some modules' parameters replaced.
func newEconomyWith(t *testing.T, epochBlocks int64, replace map[string]any) *market {
	rp := economyRewards(epochBlocks)
	sp := staking.DefaultParams()
	sp.UnbondingBlocks = 5
	jp := jobs.DefaultParams()
	jp.ReleaseDelay = releaseDelay
	mods := map[string]json.RawMessage{}
	ps := map[string]any{"rewards": rp, "staking": sp, "jobs": jp, "multisig": multisig.Params{ExpiryBlocks: 20}, "faucet": faucet.Params{Enabled: false}}
	for name, p := range replace {
		ps[name] = p
	}
	for name, p := range ps {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		mods[name] = b
	}
	g := app.Genesis{Params: app.DefaultParams(), Modules: mods}
	for _, a := range []struct {
		k   key
		amt coin.Amount
	}{{alice, 1000 * coin.Unit}, {coord, 200 * coin.Unit}, {minerA, 200 * coin.Unit}, {minerB, 200 * coin.Unit},
		{staker1, 100 * coin.Unit}, {staker2, 100 * coin.Unit}} {
		g.Accounts = append(g.Accounts, app.GenesisAccount{Address: a.k.addr, Balance: a.amt})
	}
	return &market{harness: newHarnessWith(t, g), nonces: map[address.Address]uint64{}}
}

// economyRewards are newEconomy's reward parameters.
func economyRewards(epochBlocks int64) rewards.Params {
	rp := rewards.DefaultParams()
	rp.InitialReward, rp.EpochBlocks, rp.WorkCapBps = coin.Unit, epochBlocks, 1_000_000
	return rp
}

func (m *market) want(what string, a address.Address, want coin.Amount) {
	m.t.Helper()
	if got := m.balance(a); got != want {
		m.t.Errorf("height %d: %s has %s AITBC, want %s", m.height, what, got, want)
	}
}

func (m *market) delegator(a address.Address) staking.Delegator {
	var d staking.Delegator
	_ = m.app.Committed(func(q module.Query) error {
		v, err := routeOf(keeper[*staking.Keeper](m.harness), "/api/v1/staking/delegators/{address}").Handle(q, params{"address": a.String()})
		d, _ = v.(staking.Delegator)
		return err
	})
	return d
}

// TestIssuanceFeesAndStakingByHand runs two epochs of a small economy and
// checks every account against figures computed by hand from the formulas
// of docs/ECONOMICS.md. Per block: 1 AITBC minted, 0.2 to the proposer,
// 0.4 into the miner pot, 0.3 into the staker pot, 0.1 to the treasury.
// Per block's fees F: F/2 burned, F/5 to the treasury, the rest to the
// proposer.
func TestIssuanceFeesAndStakingByHand(t *testing.T) {
	m := newEconomy(t, 10)
	treasury := address.Module(rewards.TreasuryAccount)
	const fee = 1000 // the minimum transaction fee, in base units

	m.register(minerA, coin.Unit, "tolstoy-1m")                             // 1
	m.register(minerB, coin.Unit, "tolstoy-1m")                             // 2
	m.mustOK(m.do(staker1, staking.NewStakeMsg(minerA.addr, 10*coin.Unit))) // 3
	m.mustOK(m.do(staker2, staking.NewStakeMsg(minerB.addr, 10*coin.Unit))) // 4
	a, b := jobID(1), jobID(2)
	m.mustOK(m.create(a, 5*coin.Unit, 600))                                           // 5
	m.mustOK(m.create(b, 5*coin.Unit, 600))                                           // 6
	m.mustOK(m.assign(a, minerA))                                                     // 7
	m.mustOK(m.assign(b, minerB))                                                     // 8
	m.mustOK(m.settle(coord, receipt(a, minerA, 50, jobs.PriceFor(50, coin.Unit))))   // 9: price 0.05, protocol fee 0.005
	m.mustOK(m.settle(coord, receipt(b, minerB, 150, jobs.PriceFor(150, coin.Unit)))) // 10: price 0.15, protocol fee 0.015
	if m.height != 10 {
		t.Fatalf("height %d, want 10", m.height)
	}
	// Fees: blocks 1–8 one tx fee each (F = 1000); block 9 F = 1000 +
	// 5,000; block 10 F = 1000 + 15,000.
	// Proposer: 10 × 0.2 + 8 × 300 + 1,800 + 4,800.
	m.want("proposer", val.addr, 2*coin.Unit+8*300+1_800+4_800)
	// Miner pot 4 AITBC shared by tokens, 50 : 150 → 1 and 3, capped at
	// 100 × fees: 0.5 and 1.5; the 2 left go to the treasury.
	// Staker pot 3 AITBC: minerA and minerB bond 10 each → 1.5 each; 10%
	// commission 0.15 to the operator, 1.35 to its one staker.
	// Treasury: 10 × 0.1 + 8 × 200 + 1,200 + 3,200 + 2 unpaid miner pot.
	m.want("treasury", treasury, coin.Unit+8*200+1_200+3_200+2*coin.Unit)
	m.want("minerA", minerA.addr, 200*coin.Unit-100*coin.Unit-fee+50_000+500_000+150_000)
	m.want("minerB", minerB.addr, 200*coin.Unit-100*coin.Unit-fee+150_000+1_500_000+150_000)
	m.want("staker1", staker1.addr, 100*coin.Unit-10*coin.Unit-fee+1_350_000)
	m.want("staker2", staker2.addr, 100*coin.Unit-10*coin.Unit-fee+1_350_000)
	m.want("rewards.pending", address.Module(rewards.PendingAccount), 0)
	supply, burned := m.supply()
	if wantBurned := coin.Amount(8*500 + 3_000 + 8_000); burned != wantBurned {
		t.Errorf("burned %s, want %s", burned, wantBurned)
	}
	if genesis := 1800 * coin.Unit; supply != genesis+10*coin.Unit-burned {
		t.Errorf("supply %s, want genesis %s + minted 10 - burned %s", supply, genesis, burned)
	}

	// Epoch 2: staker1 unstakes half at block 11. Unbonding stake earns
	// nothing and comes back at the end of block 16.
	m.mustOK(m.do(staker1, staking.NewUnstakeMsg(minerA.addr, 5*coin.Unit))) // 11
	d := m.delegator(staker1.addr)
	if d.Staked != 5*coin.Unit || d.Unbonding != 5*coin.Unit || len(d.Unbondings) != 1 || d.Unbondings[0].Matures != 16 {
		t.Fatalf("after unstake: %+v", d)
	}
	for m.height < 15 {
		m.block()
	}
	m.want("staker1 (unbonding)", staker1.addr, 100*coin.Unit-10*coin.Unit-fee+1_350_000-fee)
	m.block() // 16
	m.want("staker1 (unbonded)", staker1.addr, 100*coin.Unit-10*coin.Unit-fee+1_350_000-fee+5*coin.Unit)
	for m.height < 20 {
		m.block()
	}
	// Staker pot 3 by bonded stake 5 : 10 → 1 and 2; commission 0.1 and
	// 0.2. No work this epoch: the whole miner pot (4) to the treasury.
	m.want("staker1", staker1.addr, 100*coin.Unit-10*coin.Unit-fee+1_350_000-fee+5*coin.Unit+900_000)
	m.want("staker2", staker2.addr, 100*coin.Unit-10*coin.Unit-fee+1_350_000+1_800_000)
	m.want("minerA", minerA.addr, 200*coin.Unit-100*coin.Unit-fee+50_000+500_000+150_000+100_000)
	m.want("minerB", minerB.addr, 200*coin.Unit-100*coin.Unit-fee+150_000+1_500_000+150_000+200_000)
	m.want("proposer", val.addr, 4*coin.Unit+9*300+1_800+4_800)
	m.want("treasury", treasury, 2*coin.Unit+9*200+1_200+3_200+6*coin.Unit)
	supply, burned = m.supply()
	if supply != 1820*coin.Unit-burned || burned != 8*500+3_000+8_000+500 {
		t.Errorf("supply %s burned %s after 20 blocks", supply, burned)
	}
}

// TestStakingBadInputChangesNothing: each refused stake or unstake has
// its own error and leaves balances and delegations as they were.
func TestStakingBadInputChangesNothing(t *testing.T) {
	m := newEconomy(t, 1000) // no epoch ends during the test
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.register(minerB, coin.Unit, "tolstoy-1m")
	m.mustOK(m.do(staker1, staking.NewStakeMsg(minerA.addr, 10*coin.Unit)))
	m.mustOK(m.do(minerB, miners.NewDeregisterMsg()))
	before := m.balance(staker1.addr)
	for _, c := range []struct {
		name string
		res  func() []byte
		want *errs.Error
	}{
		{"more than the balance", func() []byte { return m.sign(staker1, staking.NewStakeMsg(minerA.addr, 1000*coin.Unit)) }, staking.ErrExceedsBalance},
		{"zero", func() []byte { return m.sign(staker1, staking.NewStakeMsg(minerA.addr, 0)) }, staking.ErrAmount},
		{"below the minimum", func() []byte { return m.sign(staker1, staking.NewStakeMsg(minerA.addr, coin.Unit-1)) }, staking.ErrAmount},
		{"unknown operator", func() []byte { return m.sign(staker1, staking.NewStakeMsg(bob.addr, coin.Unit)) }, staking.ErrUnknownOperator},
		{"deregistered miner", func() []byte { return m.sign(staker1, staking.NewStakeMsg(minerB.addr, coin.Unit)) }, staking.ErrInactive},
		{"unstake more than staked", func() []byte { return m.sign(staker1, staking.NewUnstakeMsg(minerA.addr, 11*coin.Unit)) }, staking.ErrExceedsStake},
		{"unstake from nobody", func() []byte { return m.sign(staker1, staking.NewUnstakeMsg(bob.addr, coin.Unit)) }, staking.ErrUnknownOperator},
	} {
		r := m.block(c.res()).TxResults[0]
		wantCode(t, c.name, r.Code, r.Codespace, c.want)
	}
	if got := m.balance(staker1.addr); got != before {
		t.Errorf("staker1 has %s after refused messages, had %s", got, before)
	}
	if d := m.delegator(staker1.addr); d.Staked != 10*coin.Unit || d.Unbonding != 0 {
		t.Errorf("delegations changed: %+v", d)
	}
}

package app_test

import (
	"bytes"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/economics"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestChainMatchesSimulator runs 300 blocks of the real chain under a
// load (transfers, and a coordinator's batches that create, assign and
// settle jobs of varying size on two miners with stakers) next to the
// simulator of internal/economics fed with the same blocks, and requires
// every figure to agree to the base unit after every block: minted,
// burned, the proposer's and the treasury's balances, miners' work
// rewards, operators' commission and each staker's rewards.
func TestChainMatchesSimulator(t *testing.T) {
	m := newEconomy(t, 10)
	fee := app.DefaultParams().MinFee
	jp := jobs.DefaultParams()
	rp := economyRewards(10)
	sim, err := economics.New(economics.Rules{Rewards: rp, BurnBps: app.DefaultParams().BurnBps, TreasuryBps: app.DefaultParams().TreasuryBps})
	if err != nil {
		t.Fatal(err)
	}
	// Miners in address order, as the chain pays them.
	miners := []key{minerA, minerB}
	if bytes.Compare(minerB.addr[:], minerA.addr[:]) < 0 {
		miners = []key{minerB, minerA}
	}
	stakers := []key{staker1, staker2}
	stakes := []coin.Amount{10 * coin.Unit, 30 * coin.Unit}

	step := func(b economics.Block) {
		t.Helper()
		sim.Step(b)
		m.compare(sim, miners, stakers)
	}
	// Setup, one transaction a block.
	for _, mk := range miners {
		m.register(mk, coin.Unit, "tolstoy-1m")
		step(economics.Block{Fees: fee})
	}
	before := []coin.Amount{m.balance(staker1.addr), m.balance(staker2.addr)}
	for i, sk := range stakers {
		m.mustOK(m.do(sk, staking.NewStakeMsg(miners[i].addr, stakes[i])))
		step(economics.Block{Fees: fee})
		before[i] -= stakes[i] + fee
	}
	ops := make([]staking.OperatorStake, 2)
	for i := range ops {
		ops[i] = staking.OperatorStake{Bonded: stakes[i], CommissionBps: staking.DefaultParams().DefaultCommissionBps, Delegations: []coin.Amount{stakes[i]}}
	}
	sim.SetStake([]int{0, 1}, ops)
	m.mustOK(m.do(alice, jobs.NewDepositMsg(coord.addr, 200*coin.Unit)))
	step(economics.Block{Fees: fee})

	// Load: each block the coordinator sends one batch settling the jobs
	// assigned in the block before, assigning those created in the block
	// before, and creating one to three new ones; every other block alice
	// sends a transfer too.
	type job struct {
		id     []byte
		miner  int
		tokens uint64
	}
	var created, assigned []job
	n := 0
	for m.height < 300 {
		var items []tx.Msg
		blk := economics.Block{Fees: fee, Work: map[int]rewards.Work{}}
		for _, j := range assigned {
			price := jobs.PriceFor(j.tokens, coin.Unit)
			items = append(items, jobs.NewSettleMsg(receipt(j.id, miners[j.miner], j.tokens, price)))
			s := jobs.Split(jp, coin.Unit, price)
			blk.Fees += s.Fee
			w := blk.Work[j.miner]
			w.Tokens += j.tokens
			w.Fees += s.Fee
			blk.Work[j.miner] = w
		}
		for _, j := range created {
			items = append(items, jobs.NewAssignMsg(j.id, miners[j.miner].addr))
		}
		assigned, created = created, nil
		for range 1 + m.height%3 {
			n++
			j := job{id: jobID(byte(n)), miner: n % 2, tokens: uint64(10 + n*7%150)}
			j.id[1] = byte(n >> 8)
			items = append(items, jobs.NewCreateForMsg(spec(j.id, coin.Unit, 600), alice.addr))
			created = append(created, j)
		}
		raws := [][]byte{m.sign(coord, jobs.NewBatchMsg(items))}
		if m.height%2 == 0 {
			raws = append(raws, m.sign(alice, bank.NewSendMsg(bob.addr, coin.Unit)))
			blk.Fees += fee
		}
		for i, r := range m.block(raws...).TxResults {
			if r.Code != 0 || r.Log != "" {
				t.Fatalf("block %d tx %d: code %d %q", m.height, i, r.Code, r.Log)
			}
		}
		m.nonces[coord.addr]++
		if len(raws) > 1 {
			m.nonces[alice.addr]++
		}
		step(blk)
	}
	// Each staker's balance: what it had after staking plus its rewards.
	for i, sk := range stakers {
		if got, want := m.balance(sk.addr), before[i]+sim.StakerPaid[i][0]; got != want {
			t.Errorf("staker %d has %s, simulator says %s", i, got, want)
		}
	}
	if sim.T.Miners == 0 || sim.T.Stakers == 0 || sim.T.Burned == 0 {
		t.Fatalf("the load exercised too little: %+v", sim.T)
	}
	t.Logf("after %d blocks and %d jobs: %+v", m.height, n, sim.T)
}

// compare checks the chain's figures against the simulator's.
func (m *market) compare(sim *economics.Sim, miners, _ []key) {
	m.t.Helper()
	var tot rewards.Totals
	var sup bank.Supply
	_ = m.app.Committed(func(q module.Query) error {
		var err error
		if tot, err = keeper[*rewards.Keeper](m.harness).ReadTotals(q.State); err != nil {
			return err
		}
		sup, err = keeper[*bank.Keeper](m.harness).Supply(q.State)
		return err
	})
	s := sim.T
	bad := func(what string, chain, simulated coin.Amount) {
		if chain != simulated {
			m.t.Fatalf("height %d: %s: chain %s, simulator %s", m.height, what, chain, simulated)
		}
	}
	bad("minted", sup.Minted-sup.Genesis, s.Minted)
	bad("issued (rewards)", tot.Issued, s.Minted)
	bad("burned", sup.Burned, s.Burned)
	bad("proposer", m.balance(val.addr), s.Proposer)
	bad("treasury", m.balance(address.Module(rewards.TreasuryAccount)), s.Treasury)
	bad("pending pots", m.balance(address.Module(rewards.PendingAccount)), s.MinerPot+s.StakerPot)
	bad("miners' work rewards", tot.Miners, s.Miners)
	bad("stakers and commission", tot.Stakers, s.Stakers+s.Commission)
	_ = miners
}

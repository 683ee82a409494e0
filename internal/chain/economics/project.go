package economics

import (
	"fmt"
	"io"
	"strings"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
)

// Load is a steady workload for a projection.
type Load struct {
	Years        int
	BlockSeconds int64       // seconds per block (2)
	Genesis      coin.Amount // supply at genesis
	JobsPerDay   int64       // paid jobs settled per day
	TokensPerJob uint64      // output tokens per job
	PricePer1k   coin.Amount // miners' price per 1,000 tokens
	TxPerJob     float64     // coordinator transactions per job (3 alone; 3/150 batched)
	TxPerDay     int64       // other transactions (transfers, stakes) per day
	MinFee       coin.Amount // fee per transaction
	Validators   int
	Miners       int
	StakeRatio   float64 // share of the genesis supply staked to miners, evenly
	Commission   uint64  // operators' commission, bps
	Jobs         jobs.Params
}

// DefaultLoad: 10 years of 2 s blocks from a 1e9 AITBC genesis, 100,000
// jobs a day of 500 tokens at 1 AITBC per 1k, batched (3 txs per 150 jobs),
// 10,000 other transactions a day, 4 validators, 20 miners, 30% staked,
// the default commission and jobs parameters.
func DefaultLoad() Load {
	return Load{Years: 10, BlockSeconds: 2, Genesis: 1_000_000_000 * coin.Unit, JobsPerDay: 100_000, TokensPerJob: 500,
		PricePer1k: coin.Unit, TxPerJob: 3.0 / 150, TxPerDay: 10_000, MinFee: coin.Unit / 1000, Validators: 4, Miners: 20,
		StakeRatio: 0.30, Commission: staking.DefaultParams().DefaultCommissionBps, Jobs: jobs.DefaultParams()}
}

// Year is one year of a projection.
type Year struct {
	Year           int         `json:"year"`
	Supply         coin.Amount `json:"supply"` // at the end of the year
	Minted         coin.Amount `json:"minted"`
	Burned         coin.Amount `json:"burned"`
	InflationBps   int64       `json:"net_inflation_bps"` // (minted − burned) / supply at the start
	PerValidator   coin.Amount `json:"income_per_validator"`
	PerMiner       coin.Amount `json:"income_per_miner"` // job revenue + work rewards + commission on stake
	MinerRewards   coin.Amount `json:"miner_rewards_per_miner"`
	StakerYieldBps int64       `json:"staker_yield_bps"` // staker rewards / stake
	Treasury       coin.Amount `json:"treasury"`         // balance at the end of the year
}

// perBlock spreads n events a day over blocks exactly: block h gets
// floor(h·n·bs/86400) − floor((h−1)·n·bs/86400).
func perBlock(h, perDay, blockSeconds int64) int64 {
	at := func(h int64) int64 { return h * perDay * blockSeconds / 86400 } // fits: h < 2e9, perDay·bs < 1e9
	return at(h) - at(h-1)
}

// Project runs the simulator over l.Years years of blocks under the
// steady load l.
func Project(r Rules, l Load) ([]Year, error) {
	if l.JobsPerDay < 0 || l.JobsPerDay > 100_000_000 || l.TxPerDay < 0 || l.TxPerDay > 100_000_000 || l.BlockSeconds > 3600 {
		return nil, fmt.Errorf("economics: jobs and transactions per day must be 0 to 1e8, block time at most an hour")
	}
	if l.Years < 1 || l.Years > 100 || l.BlockSeconds < 1 || l.Miners < 1 || l.Validators < 1 || l.StakeRatio < 0 || l.StakeRatio > 1 {
		return nil, fmt.Errorf("economics: invalid load %+v", l)
	}
	s, err := New(r)
	if err != nil {
		return nil, err
	}
	// Stake: StakeRatio of genesis, evenly over the miners, one staker each.
	stake := coin.Amount(float64(l.Genesis) * l.StakeRatio / float64(l.Miners))
	if stake > 0 {
		ops := make([]staking.OperatorStake, l.Miners)
		idx := make([]int, l.Miners)
		for i := range ops {
			ops[i] = staking.OperatorStake{Bonded: stake, CommissionBps: l.Commission, Delegations: []coin.Amount{stake}}
			idx[i] = i
		}
		s.SetStake(idx, ops)
	}
	price := jobs.PriceFor(l.TokensPerJob, l.PricePer1k)
	settle := jobs.Split(l.Jobs, l.Jobs.MaxCost(price), price)
	blocksPerYear := 365 * 86400 / l.BlockSeconds
	txPerDayJobs := int64(float64(l.JobsPerDay)*l.TxPerJob + 0.5)
	var out []Year
	supply := l.Genesis
	var jobRevenue, prevMinerPaid, prevStakers, prevCommission, prevProposer coin.Amount
	prev := s.T
	// Jobs go to the miners in turn. Work only counts at an epoch's
	// payout, so the projection hands each epoch's work over at its last
	// block (the chain records it block by block: the same sums), and
	// runs of blocks with the same fees inside an epoch in one StepN.
	nextMiner := 0
	var epochJobs int64
	work := make([]MinerWork, l.Miners)
	var run Block
	var runN int64
	flush := func() {
		s.StepN(run, runN)
		runN = 0
	}
	for y := 1; y <= l.Years; y++ {
		jobRevenue = 0
		for range blocksPerYear {
			h := s.T.Height + runN + 1
			nj := perBlock(h, l.JobsPerDay, l.BlockSeconds)
			nt := perBlock(h, txPerDayJobs+l.TxPerDay, l.BlockSeconds)
			b := Block{Fees: coin.Amount(nt)*l.MinFee + coin.Amount(nj)*settle.Fee}
			epochJobs += nj
			jobRevenue += coin.Amount(nj) * settle.Price
			if !rewards.EpochEnds(r.Rewards, h) {
				if runN > 0 && b.Fees != run.Fees {
					flush()
				}
				run = b
				runN++
				continue
			}
			flush()
			if epochJobs > 0 {
				base, extra := epochJobs/int64(l.Miners), int(epochJobs%int64(l.Miners))
				for i := range work {
					n := base
					if (i-nextMiner+l.Miners)%l.Miners < extra {
						n++
					}
					work[i] = MinerWork{Miner: i, Work: rewards.Work{Tokens: uint64(n) * l.TokensPerJob, Fees: coin.Amount(n) * settle.Fee}}
				}
				nextMiner = (nextMiner + extra) % l.Miners
				epochJobs = 0
				b.WorkAt = work
			}
			s.Step(b)
		}
		flush()
		t := s.T
		minted, burned := t.Minted-prev.Minted, t.Burned-prev.Burned
		start := supply
		supply = supply + minted - burned
		minerPaid := t.Miners - prevMinerPaid
		yr := Year{Year: y, Supply: supply, Minted: minted, Burned: burned,
			InflationBps: int64(minted-burned) * 10_000 / int64(start), //nolint:gosec // amounts fit in int64
			PerValidator: (t.Proposer - prevProposer) / coin.Amount(l.Validators),
			PerMiner:     (jobRevenue + minerPaid + t.Commission - prevCommission) / coin.Amount(l.Miners),
			MinerRewards: minerPaid / coin.Amount(l.Miners),
			Treasury:     t.Treasury,
		}
		if stake > 0 {
			yr.StakerYieldBps = int64(t.Stakers-prevStakers) * 10_000 / (int64(stake) * int64(l.Miners))
		}
		out = append(out, yr)
		prev, prevMinerPaid, prevStakers, prevCommission, prevProposer = t, t.Miners, t.Stakers, t.Commission, t.Proposer
	}
	return out, nil
}

// bps shows basis points as a percentage with two decimals.
func bps(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d%%", sign, v/100, v%100)
}

// whole shows an amount rounded down to whole AITBC with thousands separators.
func whole(a coin.Amount) string {
	s := fmt.Sprint(uint64(a / coin.Unit))
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Table writes the projection as a Markdown table (AITBC rounded down).
func Table(w io.Writer, years []Year) {
	fmt.Fprintln(w, "| year | supply | minted | burned | net inflation | per validator | per miner (jobs + rewards) | miner rewards | staker yield | treasury |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, y := range years {
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", y.Year, whole(y.Supply), whole(y.Minted), whole(y.Burned),
			bps(y.InflationBps), whole(y.PerValidator), whole(y.PerMiner), whole(y.MinerRewards), bps(y.StakerYieldBps), whole(y.Treasury))
	}
}

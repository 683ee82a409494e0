package rewards

import (
	"context"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// View is GET /api/v1/rewards: the schedule, this block's reward, the
// current epoch, and what was issued and paid since genesis.
type View struct {
	Params      Params          `json:"params"`
	Height      int64           `json:"height"`
	BlockReward coin.Amount     `json:"block_reward"` // of the next block
	EpochEnds   int64           `json:"epoch_ends_height"`
	MinerPot    coin.Amount     `json:"miner_pot"`
	StakerPot   coin.Amount     `json:"staker_pot"`
	Treasury    address.Address `json:"treasury"`
	TreasuryBal coin.Amount     `json:"treasury_balance"`
	Issued      coin.Amount     `json:"issued"`
	ToValidator coin.Amount     `json:"paid_validators"`
	ToMiners    coin.Amount     `json:"paid_miners"`
	ToStakers   coin.Amount     `json:"paid_stakers"`
	ToTreasury  coin.Amount     `json:"treasury_from_rewards"`
	FeesToTreas coin.Amount     `json:"treasury_from_fees"`
	TreasSpent  coin.Amount     `json:"treasury_spent"` // paid out by treasury/spend
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/rewards", Summary: "issuance schedule, the current epoch's pots, totals issued and paid", Handle: k.query},
	}
}

func (k *Keeper) query(q module.Query, _ module.Request) (any, error) {
	p, err := k.Params(q.State)
	if err != nil {
		return nil, err
	}
	ep, err := k.CurrentEpoch(q.State)
	if err != nil {
		return nil, err
	}
	t, err := k.ReadTotals(q.State)
	if err != nil {
		return nil, err
	}
	bal, err := k.bank.Balance(q.State, k.treasury)
	if err != nil {
		return nil, err
	}
	spent, err := k.TreasurySpent(q.State)
	if err != nil {
		return nil, err
	}
	next := q.Height + 1
	return View{
		Params: p, Height: q.Height, BlockReward: BlockReward(p, next), EpochEnds: (q.Height/p.EpochBlocks + 1) * p.EpochBlocks,
		MinerPot: ep.MinerPot, StakerPot: ep.StakerPot, Treasury: k.treasury, TreasuryBal: bal, Issued: t.Issued,
		ToValidator: t.Validators, ToMiners: t.Miners, ToStakers: t.Stakers, ToTreasury: t.Treasury, FeesToTreas: t.Fees, TreasSpent: spent,
	}, nil
}

// Query fetches the rewards view from a node.
func Query(ctx context.Context, g module.Getter) (View, error) {
	var out View
	return out, g.GetJSON(ctx, "/api/v1/rewards", &out)
}

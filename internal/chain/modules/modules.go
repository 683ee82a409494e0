// Package modules lists the chain's modules and wires them to each other:
// the one place a new module is added. The application registers what
// List returns, in that order (genesis and end-of-block work run in it);
// the node and the REST server find each module's routes, accounts and
// invariants through the interfaces of internal/chain/module.
package modules

import (
	"strings"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/chain/modules/rentals"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/modules/treasury"
)

// Set is the chain's modules, with the bank apart: the application charges
// fees and funds genesis accounts through it.
type Set struct {
	Bank *bank.Keeper
	// Rewards takes the treasury's share of each block's fees.
	Rewards *rewards.Keeper
	All     []module.Module
}

// New builds every module. Each takes what it needs of the others through
// an interface it declares itself.
func New() Set {
	b := bank.NewKeeper()
	// Bitcoin bridged in by the bridge module, in satoshis (docs/EXCHANGE.md).
	b.RegisterDenom(bank.Denom{Name: "btc", Decimals: 8, Minters: []string{"bridge"}})
	m := miners.NewKeeper(b)
	j := jobs.NewKeeper(b, m)
	s := staking.NewKeeper(b, m)
	p := pools.NewKeeper(b, m) // after rewards: it splits what an epoch paid its pools
	r := rewards.NewKeeper(b, s, p)
	p.SetEpochs(r)
	j.SetEarnings(r)
	ms := multisig.NewKeeper(b)
	mk := market.NewKeeper(b, j, m)
	mk.SetStake(s) // a provider's stake is frozen during a dispute and slashed when it loses
	// A bound job is paid by its agreement, and runs only on its provider's miners.
	j.SetBindings(mk)
	set := Set{Bank: b, Rewards: r, All: []module.Module{b, m, j, mk, s, r, p, ms, faucet.NewKeeper(b), treasury.NewKeeper(b, r)}}
	// GPU leases by the hour: after the market, whose listings they rent.
	set.All = append(set.All, rentals.NewKeeper(b, mk, m))
	// The AITBC/BTC order book, cleared by a batch auction each block.
	set.All = append(set.All, exchange.NewKeeper(b))
	set.All = append(set.All, bridge.NewKeeper(b)) // the Bitcoin bridge: mints and burns btc
	ag := agents.NewKeeper()
	set.All = append(set.All, ag) // agents, their spans and heartbeats, the oracle's metrics
	j.SetSpanAgents(ag)           // split jobs pay the span servers of their route
	// Spot checks of attested jobs: holds a drawn job's pay, freezes and
	// slashes a cheating miner's stake, counts its frauds in the market's
	// reputation record.
	au := audits.NewKeeper(b, s, mk)
	j.SetAudits(au)
	au.SetRewards(r, j) // a held job's work counts toward epoch rewards only once its pay is released
	set.All = append(set.All, au)
	// Coordinators' public URLs and regions, for clients and miners picking one.
	set.All = append(set.All, coordinators.NewKeeper())
	ms.SetRouter(func(typ string) module.Handler {
		name, _, _ := strings.Cut(typ, "/")
		for _, mod := range set.All {
			if h, ok := mod.(module.Handler); ok && mod.Name() == name {
				return h
			}
		}
		return nil
	})
	for _, mod := range set.All {
		if a, ok := mod.(module.Accounts); ok {
			b.AddModuleAccounts(a.Accounts()...)
		}
	}
	return set
}

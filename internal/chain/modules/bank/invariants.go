package bank

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "bank/supply", Check: k.checkSupply},
		{Name: "bank/conservation", Check: k.checkConservation},
		{Name: "bank/fees", Check: k.checkCollector},
		{Name: "bank/denoms", Check: k.checkDenoms},
	}
}

// checkSupply: the circulating supply equals the sum of every balance,
// module accounts included. Money subtracted into no account breaks it.
func (k *Keeper) checkSupply(q module.Query) module.Finding {
	s, err := k.Supply(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	var sum coin.Amount
	var n int
	var bad error
	err = q.State.Iterate(BalancePrefix, false, func(_, v []byte) bool {
		if len(v) != 8 {
			bad = fmt.Errorf("corrupt balance value %x", v)
			return false
		}
		if sum, bad = sum.Add(coin.Amount(binary.BigEndian.Uint64(v))); bad != nil {
			return false
		}
		n++
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: "balances: " + err.Error()}
	}
	return module.Finding{
		Broken:  sum != s.Circulating,
		Detail:  fmt.Sprintf("supply %s AITBC, %d balances sum to %s", s.Circulating, n, sum),
		Figures: map[string]string{"supply": s.Circulating.String(), "balances": sum.String(), "accounts": fmt.Sprint(n)},
	}
}

// checkConservation: the supply is what was minted less what was burned.
func (k *Keeper) checkConservation(q module.Query) module.Finding {
	s, err := k.Supply(q.State)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	want, ok := s.Minted.Sub(s.Burned)
	issued, _ := s.Minted.Sub(s.Genesis)
	return module.Finding{
		Broken: !ok || want != s.Circulating || s.Genesis > s.Minted,
		Detail: fmt.Sprintf("supply %s AITBC; genesis %s + minted since %s − burned %s is %s", s.Circulating, s.Genesis, issued, s.Burned, want),
		Figures: map[string]string{"supply": s.Circulating.String(), "minted": s.Minted.String(), "genesis": s.Genesis.String(),
			"burned": s.Burned.String()},
	}
}

// checkCollector: the fee collector is empty at every block boundary (the
// block that collected fees split them all).
func (k *Keeper) checkCollector(q module.Query) module.Finding {
	bal, err := k.Balance(q.State, k.collector)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.collector, bal, 0, "fees not yet split (none at a block boundary)")
}

// checkDenoms: for each other denomination, the sum of its balances
// (module accounts included) equals its supply, which equals minted less
// burned.
func (k *Keeper) checkDenoms(q module.Query) module.Finding {
	f := module.Finding{Figures: map[string]string{}}
	var parts []string
	for _, d := range k.Denoms()[1:] {
		s, err := k.DenomSupply(q.State, d.Name)
		if err != nil {
			return module.Finding{Broken: true, Detail: err.Error()}
		}
		sum, n, err := sumDenomBalances(q.State, d.Name)
		if err != nil {
			return module.Finding{Broken: true, Detail: d.Name + " balances: " + err.Error()}
		}
		want, ok := s.Minted.Sub(s.Burned)
		if sum != s.Circulating || !ok || want != s.Circulating {
			f.Broken = true
		}
		parts = append(parts, fmt.Sprintf("%s: supply %s, %d balances sum to %s, minted %s − burned %s", d.Name,
			FormatUnits(s.Circulating, d.Decimals), n, FormatUnits(sum, d.Decimals), FormatUnits(s.Minted, d.Decimals), FormatUnits(s.Burned, d.Decimals)))
		f.Figures[d.Name+"_supply"] = fmt.Sprint(uint64(s.Circulating))
		f.Figures[d.Name+"_balances"] = fmt.Sprint(uint64(sum))
		f.Figures[d.Name+"_minted"] = fmt.Sprint(uint64(s.Minted))
		f.Figures[d.Name+"_burned"] = fmt.Sprint(uint64(s.Burned))
	}
	f.Detail = strings.Join(parts, "; ")
	if f.Detail == "" {
		f.Detail = "no other denominations"
	}
	return f
}

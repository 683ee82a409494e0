package bank

import (
	"context"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// ErrInvalidAddress is a query's malformed address.
var ErrInvalidAddress = errs.Register("bank", 9, "invalid_bank_address", "invalid address")

// DenomView is one denomination with its supply, as GET /api/v1/bank/denoms
// shows it. Amounts are integers of base units (micro-AITBC, satoshis), so
// that every denomination reads the same way.
type DenomView struct {
	Name     string   `json:"name"`
	Decimals int      `json:"decimals"`
	Minters  []string `json:"minters"`
	Supply   uint64   `json:"supply"`
	Minted   uint64   `json:"minted"`
	Burned   uint64   `json:"burned"`
}

// DenomsView is GET /api/v1/bank/denoms.
type DenomsView struct {
	Height int64       `json:"height"`
	Denoms []DenomView `json:"denoms"`
}

// BalancesView is GET /api/v1/bank/balances/{address}: every denomination
// registered, zero balances included, in base units.
type BalancesView struct {
	Height   int64             `json:"height"`
	Address  address.Address   `json:"address"`
	Balances map[string]uint64 `json:"balances"`
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/bank/denoms", Summary: "every denomination with its decimals, minters and supply books, in base units", Handle: k.queryDenoms},
		{Method: "GET", Path: "/api/v1/bank/balances/{address}", Summary: "an account's balance of each denomination, in base units", Handle: k.queryBalances},
	}
}

func (k *Keeper) queryDenoms(q module.Query, _ module.Request) (any, error) {
	v := DenomsView{Height: q.Height, Denoms: []DenomView{}}
	for _, d := range k.Denoms() {
		s, err := k.DenomSupply(q.State, d.Name)
		if err != nil {
			return nil, err
		}
		minters := d.Minters
		if minters == nil {
			minters = []string{}
		}
		v.Denoms = append(v.Denoms, DenomView{Name: d.Name, Decimals: d.Decimals, Minters: minters,
			Supply: uint64(s.Circulating), Minted: uint64(s.Minted), Burned: uint64(s.Burned)})
	}
	return v, nil
}

func (k *Keeper) queryBalances(q module.Query, in module.Request) (any, error) {
	a, err := address.Parse(in.PathValue("address"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAddress, err)
	}
	v := BalancesView{Height: q.Height, Address: a, Balances: map[string]uint64{}}
	for _, d := range k.Denoms() {
		b, err := k.BalanceOf(q.State, a, d.Name)
		if err != nil {
			return nil, err
		}
		v.Balances[d.Name] = uint64(b)
	}
	return v, nil
}

// QueryDenoms fetches the denominations and their supplies from a node.
func QueryDenoms(ctx context.Context, g module.Getter) (DenomsView, error) {
	var out DenomsView
	return out, g.GetJSON(ctx, "/api/v1/bank/denoms", &out)
}

// QueryBalances fetches an account's balances of every denomination.
func QueryBalances(ctx context.Context, g module.Getter, a address.Address) (BalancesView, error) {
	var out BalancesView
	return out, g.GetJSON(ctx, "/api/v1/bank/balances/"+a.String(), &out)
}

// Amount returns the view's balance of denom.
func (v BalancesView) Amount(denom string) coin.Amount { return coin.Amount(v.Balances[denom]) }

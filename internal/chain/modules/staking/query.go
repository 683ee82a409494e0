package staking

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// OperatorView is one operator as GET /api/v1/staking/operators shows it.
type OperatorView struct {
	Address        address.Address `json:"address"`
	Kind           string          `json:"kind"`   // miner, validator
	Status         string          `json:"status"` // active, inactive (a miner unbonding or gone)
	Bonded         coin.Amount     `json:"bonded"`
	CommissionBps  uint64          `json:"commission_bps"`
	NextCommission *uint64         `json:"next_commission_bps,omitempty"` // in force after the next epoch's payout
	Disputes       uint32          `json:"open_disputes"`
	Slashed        coin.Amount     `json:"slashed"`
}

// Operators is GET /api/v1/staking/operators.
type Operators struct {
	Height      int64          `json:"height"`
	TotalBonded coin.Amount    `json:"total_bonded"` // of active operators: what shares the staker pot
	Operators   []OperatorView `json:"operators"`
}

// DelegationView is one of a staker's delegations.
type DelegationView struct {
	Operator address.Address `json:"operator"`
	Amount   coin.Amount     `json:"amount"`
}

// UnbondingView is stake on its way back to its staker.
type UnbondingView struct {
	Operator address.Address `json:"operator"`
	Amount   coin.Amount     `json:"amount"`
	Matures  int64           `json:"matures_height"` // paid back at the end of this block
}

// Delegator is GET /api/v1/staking/delegators/{address}.
type Delegator struct {
	Address     address.Address  `json:"address"`
	Height      int64            `json:"height"`
	Staked      coin.Amount      `json:"staked"`
	Unbonding   coin.Amount      `json:"unbonding"`
	Delegations []DelegationView `json:"delegations"`
	Unbondings  []UnbondingView  `json:"unbondings"`
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/staking/params", Summary: "the staking module's parameters", Handle: k.queryParams},
		{Method: "GET", Path: "/api/v1/staking/operators", Summary: "every miner and validator with stake, its bonded total and commission", Handle: k.queryOperators},
		{Method: "GET", Path: "/api/v1/staking/delegators/{address}", Summary: "a staker's delegations and unbonding stake", Handle: k.queryDelegator},
	}
}

func (k *Keeper) queryParams(q module.Query, _ module.Request) (any, error) { return k.Params(q.State) }

func (k *Keeper) queryOperators(q module.Query, _ module.Request) (any, error) {
	out := Operators{Height: q.Height, Operators: []OperatorView{}}
	err := k.eachOperator(q.State, func(a address.Address, o *Operator) error {
		ok, err := k.active(q.State, a, o)
		if err != nil {
			return err
		}
		v := OperatorView{Address: a, Kind: "miner", Status: "inactive", Bonded: o.Bonded, CommissionBps: o.CommissionBps, Disputes: o.Disputes, Slashed: o.Slashed}
		if o.Kind == KindValidator {
			v.Kind = "validator"
		}
		if ok {
			v.Status = "active"
			out.TotalBonded += o.Bonded
		}
		if o.NextSet {
			n := o.NextCommissionBps
			v.NextCommission = &n
		}
		out.Operators = append(out.Operators, v)
		return nil
	})
	return out, err
}

func (k *Keeper) queryDelegator(q module.Query, in module.Request) (any, error) {
	a, err := address.Parse(in.PathValue("address"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errs.ErrInvalidAddress, err)
	}
	out := Delegator{Address: a, Height: q.Height, Delegations: []DelegationView{}, Unbondings: []UnbondingView{}}
	prefix := cat(byDelegator, a[:])
	var ops []address.Address
	err = q.State.Iterate(prefix, false, func(key, _ []byte) bool {
		if op, err := address.FromBytes(key[len(prefix):]); err == nil {
			ops = append(ops, op)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		amt, err := k.Delegation(q.State, op, a)
		if err != nil {
			return nil, err
		}
		out.Delegations = append(out.Delegations, DelegationView{Operator: op, Amount: amt})
		out.Staked += amt
	}
	err = q.State.Iterate(UnbondingPrefix, false, func(key, v []byte) bool {
		rest := key[len(UnbondingPrefix):]
		if len(rest) != 8+2*address.Len || len(v) != 8 || string(rest[8:8+address.Len]) != string(a[:]) {
			return true
		}
		op, _ := address.FromBytes(rest[8+address.Len:])
		amt := coin.Amount(beUint(v))
		out.Unbondings = append(out.Unbondings, UnbondingView{Operator: op, Amount: amt, Matures: int64(binary.BigEndian.Uint64(rest[:8]))})
		out.Unbonding += amt
		return true
	})
	return out, err
}

// QueryParams fetches the module's parameters from a node.
func QueryParams(ctx context.Context, g module.Getter) (Params, error) {
	var out Params
	return out, g.GetJSON(ctx, "/api/v1/staking/params", &out)
}

// QueryOperators fetches every operator from a node.
func QueryOperators(ctx context.Context, g module.Getter) (Operators, error) {
	var out Operators
	return out, g.GetJSON(ctx, "/api/v1/staking/operators", &out)
}

// QueryDelegator fetches a staker's delegations from a node.
func QueryDelegator(ctx context.Context, g module.Getter, a address.Address) (Delegator, error) {
	var out Delegator
	return out, g.GetJSON(ctx, "/api/v1/staking/delegators/"+a.String(), &out)
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeStake, TypeUnstake:
		var m MsgStake
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		op, err := address.FromBytes(m.Operator)
		if err != nil {
			return nil, err
		}
		return map[string]any{"operator": op, "amount": m.Amount}, nil
	case TypeCommission:
		var m MsgCommission
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"commission_bps": m.Bps}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

package staking

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// EndBlock implements module.EndBlocker: the block's proposer becomes a
// validator operator if it is not one yet, and unbonding entries that
// mature at this height are paid back.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	if !ctx.Proposer.IsZero() {
		o, err := k.GetOperator(ctx.KV, ctx.Proposer)
		if err != nil {
			return err
		}
		if o == nil || o.Kind != KindValidator {
			p, err := k.Params(ctx.KV)
			if err != nil {
				return err
			}
			if o == nil {
				o = &Operator{CommissionBps: p.DefaultCommissionBps}
			}
			o.Kind = KindValidator
			if err := k.putOperator(ctx.KV, ctx.Proposer, o); err != nil {
				return err
			}
		}
	}
	prefix := cat(UnbondingPrefix, heightKey(ctx.Height))
	type entry struct {
		key       []byte
		delegator address.Address
		amount    coin.Amount
	}
	var due []entry
	var bad error
	err := ctx.KV.Iterate(prefix, false, func(key, v []byte) bool {
		rest := key[len(prefix):]
		d, err := address.FromBytes(rest[:address.Len])
		if err != nil || len(v) != 8 {
			bad = fmt.Errorf("staking: corrupt unbonding entry %x", key)
			return false
		}
		amt, _ := getAmount(ctx.KV, key)
		due = append(due, entry{append([]byte(nil), key...), d, amt})
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	for _, e := range due {
		if e.amount > 0 {
			if err := k.bank.Send(ctx.KV, k.bonded, e.delegator, e.amount); err != nil {
				return err
			}
		}
		ctx.Touch(e.delegator)
		ctx.KV.Delete(e.key)
	}
	return nil
}

// DistributeRewards implements the rewards module's Staking: it shares
// pot (held by from) between active operators with bonded stake and their
// stakers (StakerRewards), pays them, and then puts announced commission
// changes into force. It returns what it paid.
func (k *Keeper) DistributeRewards(ctx *module.Context, from address.Address, pot coin.Amount) (coin.Amount, error) {
	ops, stakes, delegators, err := k.eligible(ctx)
	if err != nil {
		return 0, err
	}
	out := StakerRewards(pot, stakes)
	for i, op := range ops {
		if c := out.Commission[i]; c > 0 {
			if err := k.bank.Send(ctx.KV, from, op, c); err != nil {
				return 0, err
			}
			ctx.Touch(op)
		}
		for j, d := range delegators[i] {
			if amt := out.Delegators[i][j]; amt > 0 {
				if err := k.bank.Send(ctx.KV, from, d, amt); err != nil {
					return 0, err
				}
				ctx.Touch(d)
			}
		}
	}
	return out.Paid, k.applyCommissions(ctx)
}

// eligible lists the operators that earn this epoch (active, with bonded
// stake), in address order, with their stakers.
func (k *Keeper) eligible(ctx *module.Context) ([]address.Address, []OperatorStake, [][]address.Address, error) {
	var (
		ops        []address.Address
		stakes     []OperatorStake
		delegators [][]address.Address
	)
	err := k.eachOperator(ctx.KV, func(a address.Address, o *Operator) error {
		if o.Bonded == 0 {
			return nil
		}
		ok, err := k.active(ctx.KV, a, o)
		if err != nil || !ok {
			return err
		}
		st := OperatorStake{Bonded: o.Bonded, CommissionBps: o.CommissionBps}
		var ds []address.Address
		err = k.eachDelegation(ctx.KV, a, func(d address.Address, amt coin.Amount) error {
			ds = append(ds, d)
			st.Delegations = append(st.Delegations, amt)
			return nil
		})
		if err != nil {
			return err
		}
		ops, stakes, delegators = append(ops, a), append(stakes, st), append(delegators, ds)
		return nil
	})
	return ops, stakes, delegators, err
}

// applyCommissions puts every announced commission change into force.
func (k *Keeper) applyCommissions(ctx *module.Context) error {
	type change struct {
		a address.Address
		o *Operator
	}
	var list []change
	err := k.eachOperator(ctx.KV, func(a address.Address, o *Operator) error {
		if o.NextSet {
			list = append(list, change{a, o})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range list {
		c.o.CommissionBps, c.o.NextCommissionBps, c.o.NextSet = c.o.NextCommissionBps, 0, false
		if err := k.putOperator(ctx.KV, c.a, c.o); err != nil {
			return err
		}
	}
	return nil
}

// Misbehaved implements module.Misbehavior: a validator's double signing
// slashes double_sign_slash_bps of the stake bonded and unbonding to it.
func (k *Keeper) Misbehaved(ctx *module.Context, validator address.Address, _ string) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	_, err = k.Slash(ctx, validator, p.DoubleSignSlashBps)
	return err
}

// Slash burns bps basis points of every delegation to op and of every
// unbonding entry from it (stake that is unbonding can still be slashed:
// leaving does not escape a fault already made). It returns what was
// burned. The dispute mechanism calls it for a miner found at fault.
func (k *Keeper) Slash(ctx *module.Context, op address.Address, bps uint64) (coin.Amount, error) {
	return k.slash(ctx, op, bps, nil)
}

// slash is Slash, paying what it cuts to *to instead of burning it when
// to is not nil (SlashTo).
func (k *Keeper) slash(ctx *module.Context, op address.Address, bps uint64, to *address.Address) (coin.Amount, error) {
	o, err := k.GetOperator(ctx.KV, op)
	if err != nil || o == nil || bps == 0 {
		return 0, err
	}
	type cut struct {
		key, by []byte // the delegation or unbonding key; by: the delegator (delegations only)
		left    coin.Amount
	}
	var cuts []cut
	var fromBonded, total coin.Amount
	err = k.eachDelegation(ctx.KV, op, func(d address.Address, amt coin.Amount) error {
		c := SlashCut(amt, bps)
		if c > 0 {
			cuts = append(cuts, cut{keyDelegation(op, d), d[:], amt - c})
			fromBonded += c
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var bad error
	err = ctx.KV.Iterate(UnbondingPrefix, false, func(key, v []byte) bool {
		rest := key[len(UnbondingPrefix)+8:]
		if len(rest) != 2*address.Len || len(v) != 8 {
			bad = fmt.Errorf("staking: corrupt unbonding entry %x", key)
			return false
		}
		if string(rest[address.Len:]) != string(op[:]) {
			return true
		}
		amt, _ := getAmount(ctx.KV, key)
		if c := SlashCut(amt, bps); c > 0 {
			cuts = append(cuts, cut{key: append([]byte(nil), key...), left: amt - c})
			total += c
		}
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return 0, err
	}
	total += fromBonded
	if total == 0 {
		return 0, nil
	}
	for _, c := range cuts {
		if c.by != nil {
			d, _ := address.FromBytes(c.by)
			k.setDelegation(ctx.KV, op, d, c.left)
		} else {
			putAmount(ctx.KV, c.key, c.left)
		}
	}
	o.Bonded -= fromBonded
	o.Slashed += total
	if to != nil {
		if err := k.bank.Send(ctx.KV, k.bonded, *to, total); err != nil {
			return 0, err
		}
	} else if err := k.bank.Burn(ctx.KV, k.bonded, total); err != nil {
		return 0, err
	}
	return total, k.putOperator(ctx.KV, op, o)
}

// eachOperator calls fn for every operator, in address order.
func (k *Keeper) eachOperator(r state.View, fn func(a address.Address, o *Operator) error) error {
	var addrs []address.Address
	err := r.Iterate(OperatorPrefix, false, func(key, _ []byte) bool {
		a, err := address.FromBytes(key[len(OperatorPrefix):])
		if err == nil {
			addrs = append(addrs, a)
		}
		return true
	})
	if err != nil {
		return err
	}
	for _, a := range addrs {
		o, err := k.GetOperator(r, a)
		if err != nil {
			return err
		}
		if err := fn(a, o); err != nil {
			return err
		}
	}
	return nil
}

// eachDelegation calls fn for every delegation to op, in delegator order.
func (k *Keeper) eachDelegation(r state.View, op address.Address, fn func(d address.Address, amt coin.Amount) error) error {
	prefix := cat(DelegationPrefix, op[:])
	type del struct {
		d   address.Address
		amt coin.Amount
	}
	var list []del
	var bad error
	err := r.Iterate(prefix, false, func(key, v []byte) bool {
		d, err := address.FromBytes(key[len(prefix):])
		if err != nil || len(v) != 8 {
			bad = fmt.Errorf("staking: corrupt delegation %x", key)
			return false
		}
		list = append(list, del{d, coin.Amount(beUint(v))})
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return err
	}
	for _, x := range list {
		if err := fn(x.d, x.amt); err != nil {
			return err
		}
	}
	return nil
}

func beUint(v []byte) uint64 { return binary.BigEndian.Uint64(v) }

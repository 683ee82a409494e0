package staking

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	switch msg.Type {
	case TypeStake, TypeUnstake:
		var m MsgStake
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		op, err := address.FromBytes(m.Operator)
		if err != nil {
			return fmt.Errorf("%w: operator: %v", ErrUnknownOperator, err)
		}
		if msg.Type == TypeStake {
			return k.stake(ctx, p, op, m.Amount)
		}
		return k.unstake(ctx, p, op, m.Amount)
	case TypeCommission:
		var m MsgCommission
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.setCommission(ctx, p, m.Bps)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

// operatorFor returns op's record for a new stake, made for an active
// miner that has none yet.
func (k *Keeper) operatorFor(ctx *module.Context, p Params, op address.Address) (*Operator, error) {
	o, err := k.GetOperator(ctx.KV, op)
	if err != nil {
		return nil, err
	}
	m, err := k.miners.Get(ctx.KV, op)
	if err != nil {
		return nil, err
	}
	switch {
	case o == nil && m == nil:
		return nil, fmt.Errorf("%w: %s is neither a registered miner nor a validator", ErrUnknownOperator, op)
	case o != nil && o.Kind == KindValidator:
		return o, nil
	case m == nil:
		return nil, fmt.Errorf("%w: miner %s has deregistered", ErrInactive, op)
	case m.Status != miners.StatusActive:
		return nil, fmt.Errorf("%w: miner %s is unbonding", ErrInactive, op)
	case o == nil:
		return &Operator{Kind: KindMiner, CommissionBps: p.DefaultCommissionBps}, nil
	}
	return o, nil
}

func (k *Keeper) stake(ctx *module.Context, p Params, op address.Address, amt coin.Amount) error {
	if amt == 0 || amt < p.MinStake {
		return fmt.Errorf("%w: %s AITBC, minimum %s", ErrAmount, amt, p.MinStake)
	}
	o, err := k.operatorFor(ctx, p, op)
	if err != nil {
		return err
	}
	if o.Disputes > 0 {
		return fmt.Errorf("%w: %s has %d open disputes", ErrInDispute, op, o.Disputes)
	}
	bal, err := k.bank.Balance(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if bal < amt {
		return fmt.Errorf("%w: %s has %s AITBC, stakes %s", ErrExceedsBalance, ctx.Signer, bal, amt)
	}
	d, err := k.Delegation(ctx.KV, op, ctx.Signer)
	if err != nil {
		return err
	}
	nd, err1 := d.Add(amt)
	nb, err2 := o.Bonded.Add(amt)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: overflow", ErrAmount)
	}
	if err := k.bank.Send(ctx.KV, ctx.Signer, k.bonded, amt); err != nil {
		return err
	}
	o.Bonded = nb
	k.setDelegation(ctx.KV, op, ctx.Signer, nd)
	ctx.Touch(op)
	return k.putOperator(ctx.KV, op, o)
}

func (k *Keeper) unstake(ctx *module.Context, p Params, op address.Address, amt coin.Amount) error {
	if amt == 0 {
		return fmt.Errorf("%w: amount must be positive", ErrAmount)
	}
	o, err := k.GetOperator(ctx.KV, op)
	if err != nil {
		return err
	}
	if o == nil {
		return fmt.Errorf("%w: nothing is staked to %s", ErrUnknownOperator, op)
	}
	if o.Disputes > 0 {
		return fmt.Errorf("%w: %s has %d open disputes: its stake stays until they close", ErrInDispute, op, o.Disputes)
	}
	d, err := k.Delegation(ctx.KV, op, ctx.Signer)
	if err != nil {
		return err
	}
	if amt > d {
		return fmt.Errorf("%w: %s has %s AITBC staked to %s, unstakes %s", ErrExceedsStake, ctx.Signer, d, op, amt)
	}
	at := ctx.Height + p.UnbondingBlocks
	key := keyUnbonding(at, ctx.Signer, op)
	u, err := getAmount(ctx.KV, key)
	if err != nil {
		return err
	}
	o.Bonded -= amt
	k.setDelegation(ctx.KV, op, ctx.Signer, d-amt)
	putAmount(ctx.KV, key, u+amt)
	ctx.Touch(op)
	return k.putOperator(ctx.KV, op, o)
}

func (k *Keeper) setCommission(ctx *module.Context, p Params, bps uint64) error {
	if bps > p.MaxCommissionBps {
		return fmt.Errorf("%w: %d bps, at most %d", ErrCommission, bps, p.MaxCommissionBps)
	}
	o, err := k.GetOperator(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	ok, err := k.active(ctx.KV, ctx.Signer, o)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotOperator, ctx.Signer)
	}
	if o == nil {
		o = &Operator{Kind: KindMiner, CommissionBps: p.DefaultCommissionBps}
	}
	o.NextCommissionBps, o.NextSet = bps, true
	return k.putOperator(ctx.KV, ctx.Signer, o)
}

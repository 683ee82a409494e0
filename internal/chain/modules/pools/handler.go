package pools

import (
	"encoding/binary"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// InitGenesis implements module.Genesis: pools start empty.
func (*Keeper) InitGenesis(*module.Context, []byte) error { return nil }

// Exec implements module.Handler. A refused message changes nothing.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeCreate:
		var m MsgCreate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.create(ctx, m)
	case TypeJoin:
		var m MsgJoin
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.join(ctx, m)
	case TypeLeave:
		var m MsgLeave
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.leave(ctx)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k *Keeper) create(ctx *module.Context, m MsgCreate) error {
	if err := CheckName(m.Name); err != nil {
		return err
	}
	if m.FeeBps > MaxFeeBps {
		return fmt.Errorf("%w: %d bps (%d.%02d%%), at most %d", ErrFee, m.FeeBps, m.FeeBps/100, m.FeeBps%100, MaxFeeBps)
	}
	p, err := k.Get(ctx.KV, m.Name)
	if err != nil {
		return err
	}
	if p != nil {
		return fmt.Errorf("%w: %q", ErrExists, m.Name)
	}
	return k.put(ctx.KV, &Pool{Name: m.Name, Operator: ctx.Signer[:], FeeBps: m.FeeBps, Created: ctx.Height})
}

func (k *Keeper) join(ctx *module.Context, m MsgJoin) error {
	if err := CheckName(m.Name); err != nil {
		return err
	}
	p, err := k.Get(ctx.KV, m.Name)
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, m.Name)
	}
	mi, err := k.miners.Get(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if mi == nil || mi.Status != miners.StatusActive {
		return fmt.Errorf("%w: %s", ErrNotAMiner, ctx.Signer)
	}
	cur, err := k.PoolOf(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if cur != "" {
		return fmt.Errorf("%w: %s is in %q", ErrInPool, ctx.Signer, cur)
	}
	p.Members++
	ctx.KV.Set(keyMember(ctx.Signer), []byte(m.Name))
	ctx.KV.Set(keyRoster(m.Name, ctx.Signer), []byte{1})
	ctx.Touch(p.OperatorAddr())
	return k.put(ctx.KV, p)
}

// leave takes the signer out of its pool. Work it did for the pool this
// epoch stays recorded and is paid at the epoch's end.
func (k *Keeper) leave(ctx *module.Context) error {
	name, err := k.PoolOf(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("%w: %s", ErrNotInPool, ctx.Signer)
	}
	p, err := k.Get(ctx.KV, name)
	if err != nil {
		return err
	}
	if p == nil || p.Members == 0 {
		return fmt.Errorf("pools: membership of %s in missing or empty pool %q", ctx.Signer, name)
	}
	p.Members--
	ctx.KV.Delete(keyMember(ctx.Signer))
	ctx.KV.Delete(keyRoster(name, ctx.Signer))
	return k.put(ctx.KV, p)
}

// EndBlock implements module.EndBlocker: at the end of a reward epoch
// (after the rewards module paid it: pools come after rewards in the
// module list), each pool's accrued earnings are split (PoolSplit) and
// its work records cleared.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	if k.epochs == nil {
		return nil
	}
	ends, err := k.epochs.EpochEnds(ctx.KV, ctx.Height)
	if err != nil || !ends {
		return err
	}
	var names []string
	err = ctx.KV.Iterate(PoolPrefix, false, func(key, _ []byte) bool {
		names = append(names, string(key[len(PoolPrefix):]))
		return true
	})
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := k.split(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (k *Keeper) split(ctx *module.Context, name string) error {
	p, err := k.Get(ctx.KV, name)
	if err != nil {
		return err
	}
	var (
		members []address.Address
		tokens  []uint64
		keys    [][]byte
	)
	prefix := workOf(name)
	err = ctx.KV.Iterate(prefix, false, func(key, v []byte) bool {
		keys = append(keys, append([]byte(nil), key...))
		tokens = append(tokens, binary.BigEndian.Uint64(v))
		return true
	})
	if err != nil {
		return err
	}
	for _, key := range keys {
		a, err := address.FromBytes(key[len(prefix):])
		if err != nil {
			return fmt.Errorf("pools: corrupt work key %x", key)
		}
		members = append(members, a)
		ctx.KV.Delete(key)
	}
	if p.Accrued == 0 {
		return nil
	}
	op, shares := PoolSplit(p.Accrued, p.FeeBps, tokens)
	for i, amt := range shares {
		if amt == 0 {
			continue
		}
		if err := k.bank.Send(ctx.KV, k.earnings, members[i], amt); err != nil {
			return err
		}
		ctx.Touch(members[i])
	}
	if op > 0 {
		if err := k.bank.Send(ctx.KV, k.earnings, p.OperatorAddr(), op); err != nil {
			return err
		}
		ctx.Touch(p.OperatorAddr())
	}
	p.Paid += p.Accrued
	p.Accrued = 0
	return k.put(ctx.KV, p)
}

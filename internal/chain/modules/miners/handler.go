package miners

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeRegister:
		var m MsgRegister
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.register(ctx, m)
	case TypeUpdate:
		var m MsgUpdate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		if err := m.Caps.Validate(); err != nil {
			return err
		}
		cur, err := k.active(ctx)
		if err != nil {
			return err
		}
		cur.Caps = m.Caps
		return k.put(ctx.KV, cur)
	case TypeHeartbeat:
		var m MsgHeartbeat
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		cur, err := k.active(ctx)
		if err != nil {
			return err
		}
		cur.LastHeartbeat = ctx.Time.Unix()
		return k.put(ctx.KV, cur)
	case TypeDeregister:
		var m MsgDeregister
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.deregister(ctx)
	case TypeSetProvider:
		var m MsgSetProvider
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.setProvider(ctx, m)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k *Keeper) active(ctx *module.Context) (*Miner, error) {
	cur, err := k.Get(ctx.KV, ctx.Signer)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, ctx.Signer)
	}
	if cur.Status != StatusActive {
		return nil, fmt.Errorf("%w: %s", ErrUnbonding, ctx.Signer)
	}
	return cur, nil
}

func (k *Keeper) register(ctx *module.Context, m MsgRegister) error {
	if err := m.Caps.Validate(); err != nil {
		return err
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if m.Stake < p.MinStake {
		return fmt.Errorf("%w: %s AITBC, minimum %s", ErrStakeTooLow, m.Stake, p.MinStake)
	}
	cur, err := k.Get(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if cur != nil {
		if cur.Status == StatusUnbonding {
			return fmt.Errorf("%w: %s until height %d", ErrUnbonding, ctx.Signer, cur.UnbondAt)
		}
		return fmt.Errorf("%w: %s", ErrRegistered, ctx.Signer)
	}
	if err := k.bank.Send(ctx.KV, ctx.Signer, k.stake, m.Stake); err != nil {
		return err
	}
	return k.put(ctx.KV, &Miner{
		Address: ctx.Signer[:], PubKey: ctx.SignerKey, Caps: m.Caps, Stake: m.Stake,
		Status: StatusActive, Registered: ctx.Height, LastHeartbeat: ctx.Time.Unix(),
	})
}

// setProvider records (or clears) the provider the signing miner works
// for. Only an active miner consents: an unbonding one runs no more jobs.
func (k *Keeper) setProvider(ctx *module.Context, m MsgSetProvider) error {
	if _, err := k.active(ctx); err != nil {
		return err
	}
	if len(m.Provider) == 0 {
		ctx.KV.Delete(keyProvider(ctx.Signer))
		return nil
	}
	p, err := address.FromBytes(m.Provider)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrProvider, err)
	case p == ctx.Signer:
		return fmt.Errorf("%w: a miner is its own provider without naming itself", ErrProvider)
	}
	ctx.Touch(p)
	ctx.KV.Set(keyProvider(ctx.Signer), p[:])
	return nil
}

func (k *Keeper) deregister(ctx *module.Context) error {
	cur, err := k.active(ctx)
	if err != nil {
		return err
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	cur.Status = StatusUnbonding
	cur.UnbondAt = ctx.Height + p.UnbondingBlocks
	if err := k.put(ctx.KV, cur); err != nil {
		return err
	}
	return appendAddr(ctx.KV, keyUnbond(cur.UnbondAt), ctx.Signer)
}

// EndBlock returns the stake of miners whose unbonding ends at this height.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	key := keyUnbond(ctx.Height)
	list, err := readAddrs(ctx.KV, key)
	if err != nil {
		return err
	}
	for _, a := range list {
		m, err := k.Get(ctx.KV, a)
		if err != nil {
			return err
		}
		if m == nil || m.Status != StatusUnbonding || m.UnbondAt != ctx.Height {
			continue
		}
		if m.Stake > 0 {
			if err := k.bank.Send(ctx.KV, k.stake, a, m.Stake); err != nil {
				return err
			}
		}
		ctx.KV.Delete(keyMiner(a))
		ctx.KV.Delete(keyProvider(a)) // a gone miner works for nobody
	}
	if list != nil {
		ctx.KV.Delete(key)
	}
	return nil
}

func readAddrs(r state.Reader, key []byte) ([]address.Address, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return nil, err
	}
	var raw [][]byte
	if err := tx.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make([]address.Address, 0, len(raw))
	for _, r := range raw {
		a, err := address.FromBytes(r)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func appendAddr(kv *state.Cache, key []byte, a address.Address) error {
	list, err := readAddrs(kv, key)
	if err != nil {
		return err
	}
	raw := make([][]byte, 0, len(list)+1)
	for _, x := range list {
		raw = append(raw, x[:])
	}
	raw = append(raw, a[:])
	b, err := tx.Marshal(raw)
	if err != nil {
		return err
	}
	kv.Set(key, b)
	return nil
}

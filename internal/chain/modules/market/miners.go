package market

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// A provider's miners. An agreement pays its provider for the jobs run
// under it, so a bound job may run only on a miner that works for that
// provider, with the consent of both: the provider names the miner
// (market/add_miner) and the miner names the provider
// (miners/set_provider). One side alone is not enough: a provider naming
// someone else's miner would be paid for that miner's work, and a miner
// naming a provider would make the provider answer for its work in
// disputes (which slash the provider's stake). Either side ends it
// alone. A provider's own miner (registered under its address) needs
// neither.

// MaxProviderMiners caps the miners one provider names.
const MaxProviderMiners = 32

// keyProviderMiner: provider ‖ miner, present while the provider names
// the miner.
var providerMinerPrefix = []byte("market/pm/")

func keyProviderMiner(prov, miner address.Address) []byte {
	return cat(providerMinerPrefix, prov[:], miner[:])
}

// keyJobTokens: job id → the tokens a bound job produced, recorded at its
// settlement for its delivery (per-1k-tokens agreements pay by them; the
// job's own record shows no price paid, as the agreement pays).
var jobTokensPrefix = []byte("market/jt/")

func keyJobTokens(job []byte) []byte { return cat(jobTokensPrefix, job) }

// MinerLink is one miner a provider named, and whether the miner named
// the provider back (only then may it run the provider's jobs).
type MinerLink struct {
	Miner     address.Address `json:"miner"`
	Consented bool            `json:"consented"` // the miner named this provider (miners/set_provider)
	Active    bool            `json:"active"`    // registered and not unbonding
}

// NamedMiners lists the miners provider named, in address order.
func (k *Keeper) NamedMiners(r state.View, prov address.Address) ([]MinerLink, error) {
	var out []MinerLink
	var ferr error
	err := r.Iterate(cat(providerMinerPrefix, prov[:]), false, func(key, _ []byte) bool {
		m, err := address.FromBytes(key[len(providerMinerPrefix)+len(prov):])
		if err != nil {
			ferr = err
			return false
		}
		l := MinerLink{Miner: m}
		if l.Consented, ferr = k.namesProvider(r, m, prov); ferr != nil {
			return false
		}
		mi, err := k.miners.Get(r, m)
		if err != nil {
			ferr = err
			return false
		}
		l.Active = mi != nil && mi.Status == miners.StatusActive
		out = append(out, l)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, ferr
}

// namesProvider reports whether miner m named prov as its provider.
func (k *Keeper) namesProvider(r state.Reader, m, prov address.Address) (bool, error) {
	p, ok, err := k.miners.Provider(r, m)
	return ok && p == prov, err
}

// Serves reports whether miner m may run jobs that pay prov: it is prov's
// own miner, or both named each other.
func (k *Keeper) Serves(r state.Reader, prov, m address.Address) (bool, error) {
	if m == prov {
		return true, nil
	}
	named, err := r.Get(keyProviderMiner(prov, m))
	if err != nil || named == nil {
		return false, err
	}
	return k.namesProvider(r, m, prov)
}

// linkMiner handles market/add_miner and market/remove_miner, signed by
// the provider.
func (k *Keeper) linkMiner(ctx *module.Context, m MsgMiner, add bool) error {
	miner, err := address.FromBytes(m.Miner)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMinerLink, err)
	}
	key := keyProviderMiner(ctx.Signer, miner)
	have, err := ctx.KV.Get(key)
	if err != nil {
		return err
	}
	if !add {
		if have == nil {
			return fmt.Errorf("%w: %s does not name miner %s", ErrMinerLink, ctx.Signer, miner)
		}
		ctx.KV.Delete(key)
		ctx.Touch(miner)
		return nil
	}
	switch {
	case miner == ctx.Signer:
		return fmt.Errorf("%w: %s is the provider's own miner, which serves it without being named", ErrMinerLink, miner)
	case have != nil:
		return fmt.Errorf("%w: %s already names miner %s", ErrMinerLink, ctx.Signer, miner)
	}
	n := 0
	err = ctx.KV.Iterate(cat(providerMinerPrefix, ctx.Signer[:]), false, func(_, _ []byte) bool {
		n++
		return n < MaxProviderMiners
	})
	if err != nil {
		return err
	}
	if n >= MaxProviderMiners {
		return fmt.Errorf("%w: %s names %d miners already, the most a provider may", ErrMinerLink, ctx.Signer, MaxProviderMiners)
	}
	ctx.KV.Set(key, []byte{1})
	ctx.Touch(miner)
	return nil
}

// boundProvider is the provider of the agreement job is bound to, if any.
func (k *Keeper) boundProvider(r state.Reader, job []byte) (address.Address, string, bool, error) {
	id, err := r.Get(keyBound(job))
	if err != nil || id == nil {
		return address.Address{}, "", false, err
	}
	a, err := k.Agreement(r, string(id))
	if err != nil || a == nil {
		return address.Address{}, "", false, err
	}
	return a.ProviderAddr(), a.ID, true, nil
}

var _ jobs.Bindings = (*Keeper)(nil)

// MayRun implements jobs.Bindings: a job bound to an agreement may be
// assigned only to a miner that serves the agreement's provider.
func (k *Keeper) MayRun(r state.Reader, job []byte, miner address.Address) error {
	prov, agr, ok, err := k.boundProvider(r, job)
	if err != nil || !ok {
		return err
	}
	serves, err := k.Serves(r, prov, miner)
	if err != nil {
		return err
	}
	if !serves {
		return fmt.Errorf("job runs under agreement %s, paid to provider %s, and miner %s does not work for it (market/add_miner and miners/set_provider)", agr, prov, miner)
	}
	return nil
}

// Settling implements jobs.Bindings: a bound job is paid by its agreement
// (at its delivery, EndBlock), not from its escrow; the tokens it produced
// are kept for a per-1k-tokens agreement's payment.
func (k *Keeper) Settling(kv *state.Cache, job []byte, tokensOut uint64) (bool, error) {
	_, _, ok, err := k.boundProvider(kv, job)
	if err != nil || !ok {
		return false, err
	}
	putUint(kv, keyJobTokens(job), tokensOut)
	return true, nil
}

// serving lists the active miners that may run prov's jobs: its own
// first, then those named both ways.
func (k *Keeper) serving(r state.View, prov address.Address) ([]address.Address, error) {
	out := []address.Address{}
	own, err := k.miners.Get(r, prov)
	if err != nil {
		return nil, err
	}
	if own != nil && own.Status == miners.StatusActive {
		out = append(out, prov)
	}
	links, err := k.NamedMiners(r, prov)
	for _, l := range links {
		if l.Consented && l.Active {
			out = append(out, l.Miner)
		}
	}
	return out, err
}

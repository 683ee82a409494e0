package pools

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/url"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// View is GET /api/v1/pools/{name}.
type View struct {
	Name     string          `json:"name"`
	Operator address.Address `json:"operator"`
	FeeBps   uint64          `json:"fee_bps"`
	Created  int64           `json:"created_height"`
	Accrued  coin.Amount     `json:"accrued"` // this epoch's earnings, not yet split
	Paid     coin.Amount     `json:"paid"`    // ever split
	Members  []MemberView    `json:"members"`
}

// MemberView is a member, or a former member with work this epoch.
type MemberView struct {
	Address address.Address `json:"address"`
	Member  bool            `json:"member"`
	Tokens  uint64          `json:"epoch_tokens"` // output tokens settled for the pool this epoch
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{{Method: "GET", Path: "/api/v1/pools/{name}", Summary: "a mining pool: operator, fee, members and their work this epoch, earnings accrued and paid", Handle: k.query}}
}

func (k *Keeper) query(q module.Query, in module.Request) (any, error) {
	name := in.PathValue("name")
	if err := CheckName(name); err != nil {
		return nil, err
	}
	p, err := k.Get(q.State, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	v := View{Name: p.Name, Operator: p.OperatorAddr(), FeeBps: p.FeeBps, Created: p.Created, Accrued: p.Accrued, Paid: p.Paid, Members: []MemberView{}}
	at := map[address.Address]int{}
	err = q.State.Iterate(rosterOf(name), false, func(key, _ []byte) bool {
		a, _ := address.FromBytes(key[len(rosterOf(name)):])
		at[a] = len(v.Members)
		v.Members = append(v.Members, MemberView{Address: a, Member: true})
		return true
	})
	if err != nil {
		return nil, err
	}
	err = q.State.Iterate(workOf(name), false, func(key, val []byte) bool {
		a, _ := address.FromBytes(key[len(workOf(name)):])
		i, ok := at[a]
		if !ok {
			i = len(v.Members)
			v.Members = append(v.Members, MemberView{Address: a})
		}
		v.Members[i].Tokens = binary.BigEndian.Uint64(val)
		return true
	})
	return v, err
}

// Query fetches a pool from a node.
func Query(ctx context.Context, g module.Getter, name string) (View, error) {
	var v View
	return v, g.GetJSON(ctx, "/api/v1/pools/"+url.PathEscape(name), &v)
}

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "pools/earnings", Check: k.checkEarnings},
		{Name: "pools/members", Check: k.checkMembers},
	}
}

// checkEarnings: pools.earnings holds the sum of the pools' accrued
// earnings.
func (k *Keeper) checkEarnings(q module.Query) module.Finding {
	var sum coin.Amount
	var bad error
	err := q.State.Iterate(PoolPrefix, false, func(key, _ []byte) bool {
		p, err := k.Get(q.State, string(key[len(PoolPrefix):]))
		if err != nil {
			bad = err
			return false
		}
		sum += p.Accrued
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	bal, err := k.bank.Balance(q.State, k.earnings)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.earnings, bal, sum, "the pools' accrued earnings")
}

// checkMembers: each pool's member count equals its roster, and every
// roster entry agrees with the member's record.
func (k *Keeper) checkMembers(q module.Query) module.Finding {
	var detail string
	err := q.State.Iterate(PoolPrefix, false, func(key, _ []byte) bool {
		name := string(key[len(PoolPrefix):])
		p, err := k.Get(q.State, name)
		if err != nil {
			detail = err.Error()
			return false
		}
		var n uint32
		err = q.State.Iterate(rosterOf(name), false, func(rk, _ []byte) bool {
			a, err := address.FromBytes(rk[len(rosterOf(name)):])
			if got, gerr := k.PoolOf(q.State, a); err != nil || gerr != nil || got != name {
				detail = fmt.Sprintf("pool %q lists %s, whose record says %q", name, a, got)
				return false
			}
			n++
			return true
		})
		if err != nil {
			detail = err.Error()
		}
		if detail == "" && n != p.Members {
			detail = fmt.Sprintf("pool %q counts %d members, its roster %d", name, p.Members, n)
		}
		return detail == ""
	})
	if err != nil {
		detail = err.Error()
	}
	if detail != "" {
		return module.Finding{Broken: true, Detail: detail}
	}
	return module.Finding{Detail: "every pool's member count matches its roster"}
}

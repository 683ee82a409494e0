package web

import (
	"context"
	"net/http"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/rpc"
)

// pool reads a pool from the pools module once a block.
func (s *Server) pool(ctx context.Context, name string) (pools.View, error) {
	if err := pools.CheckName(name); err != nil {
		return pools.View{}, errf(ErrNotFound, "no pool %q", name)
	}
	_, _, height := s.feed.latest(0, 0)
	return s.pools.get(ctx, name, height, func(ctx context.Context) (pools.View, error) { return pools.Query(ctx, s.cfg.Node, name) })
}

// PoolMembership is a pool an address operates or belongs to, as the
// pools module holds it.
type PoolMembership struct {
	Pool     pools.View
	Operator bool   // the address operates it
	Member   bool   // the address is a member now
	Tokens   uint64 // the address's work for the pool this epoch
}

// poolsView is what the address page and the miner dashboard show of
// pools. The module has no query for an address's pool, so the pools are
// those named by the address's pools/create and pools/join transactions
// among its newest, each read back from the module.
type poolsView struct {
	Pools   []PoolMembership
	Current *PoolMembership // the pool the address is a member of now
	Err     string          // why the pools module could not be read
}

func (s *Server) readPools(ctx context.Context, a address.Address, history []rpc.Transaction) poolsView {
	var v poolsView
	seen := map[string]bool{}
	for _, t := range history {
		if t.Status != "committed" || t.From != a || (t.Type != pools.TypeCreate && t.Type != pools.TypeJoin) {
			continue
		}
		name, _ := bodyMap(t.Body)["name"].(string)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		p, err := s.pool(ctx, name)
		if err != nil {
			_, _, v.Err = classify(err)
			return v
		}
		m := PoolMembership{Pool: p, Operator: p.Operator == a}
		for _, x := range p.Members {
			if x.Address == a {
				m.Member, m.Tokens = x.Member, x.Tokens
			}
		}
		if !m.Operator && !m.Member && m.Tokens == 0 {
			continue // a former member with no work this epoch
		}
		v.Pools = append(v.Pools, m)
	}
	for i := range v.Pools {
		if v.Pools[i].Member {
			v.Current = &v.Pools[i]
		}
	}
	return v
}

func (s *Server) poolPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.pool(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "pool.html", "Pool "+p.Name, "explorer", p)
}

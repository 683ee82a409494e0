package rentals

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// View is a lease as queries show it (GET /api/v1/rentals/{id}).
type View struct {
	ID          string          `json:"lease_id"`
	Service     string          `json:"service_id"`
	Customer    address.Address `json:"customer"`
	Provider    address.Address `json:"provider"`
	Price       coin.Amount     `json:"price_per_hour"`
	GPU         string          `json:"gpu"`
	GPUMemoryMB uint64          `json:"gpu_memory_mb"`
	Start       time.Time       `json:"start"`
	End         time.Time       `json:"paid_until"`
	Locked      coin.Amount     `json:"locked"`
	Drawn       coin.Amount     `json:"drawn"`
	Refunded    coin.Amount     `json:"refunded"`
	Remaining   coin.Amount     `json:"remaining"`
	Status      string          `json:"status"`
	Opened      int64           `json:"opened_height"`
	Closed      int64           `json:"closed_height,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	// SecondsLeft is the paid-up time left at the queried block (0 once
	// closed).
	SecondsLeft int64 `json:"seconds_left"`
}

// ViewOf is a lease's view at block time now.
func ViewOf(l *Lease, now time.Time) View {
	v := View{
		ID: l.ID, Service: l.Service, Customer: l.CustomerAddr(), Provider: l.ProviderAddr(), Price: l.Price,
		GPU: l.GPU, GPUMemoryMB: l.GPUMemoryMB, Start: time.UnixMilli(l.StartMs).UTC(), End: time.UnixMilli(l.EndMs).UTC(),
		Locked: l.Locked, Drawn: l.Drawn, Refunded: l.Refunded, Remaining: l.Remaining(),
		Status: StatusName(l.Status), Opened: l.Opened, Closed: l.Closed, Reason: l.Reason,
	}
	if l.Status == StatusActive && l.EndMs > now.UnixMilli() {
		v.SecondsLeft = (l.EndMs - now.UnixMilli()) / 1000
	}
	return v
}

// List is GET /api/v1/rentals.
type List struct {
	Leases    []View `json:"leases"`
	Truncated bool   `json:"truncated,omitempty"`
}

// MaxList bounds a list's length.
const MaxList = 500

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/rentals/params", Summary: "the rentals module's parameters", Handle: k.queryParams},
		{Method: "GET", Path: "/api/v1/rentals", Summary: "leases of a customer, a provider or a listing (?customer= | ?provider= | ?service_id=; &status=active), or every active lease; newest first, at most 500", Handle: k.queryList},
		{Method: "GET", Path: "/api/v1/rentals/{id}", Summary: "a GPU lease: listing, parties, hourly price, paid-up end, locked, drawn, refunded, status", Handle: k.queryLease},
	}
}

func (k *Keeper) queryParams(q module.Query, _ module.Request) (any, error) { return k.Params(q.State) }

func (k *Keeper) queryLease(q module.Query, in module.Request) (any, error) {
	id := in.PathValue("id")
	if err := checkID("lease id", id); err != nil {
		return nil, err
	}
	l, err := k.Get(q.State, id)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return ViewOf(l, q.Time), nil
}

func (k *Keeper) queryList(q module.Query, in module.Request) (any, error) {
	var prefix []byte
	n := 0
	for _, f := range []string{"customer", "provider", "service_id"} {
		v := in.Param(f)
		if v == "" {
			continue
		}
		n++
		switch f {
		case "service_id":
			if err := checkID("service id", v); err != nil {
				return nil, err
			}
			prefix = serviceOf(v)
		default:
			a, err := address.Parse(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrInvalidQuery, f, err)
			}
			if f == "customer" {
				prefix = cat(custPrefix, a[:])
			} else {
				prefix = cat(provPrefix, a[:])
			}
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("%w: at most one of customer, provider, service_id", ErrInvalidQuery)
	}
	onlyActive := false
	switch st := in.Param("status"); st {
	case "", "all":
	case "active":
		onlyActive = true
	default:
		return nil, fmt.Errorf("%w: status %q (active or all)", ErrInvalidQuery, st)
	}
	if prefix == nil {
		prefix, onlyActive = activePrefix, true
	}
	ids, err := collectIDs(q.State, prefix)
	if err != nil {
		return nil, err
	}
	// Ids are rent-N: newest first is the largest N first.
	sortNewestFirst(ids)
	out := List{Leases: []View{}}
	for _, id := range ids {
		l, err := k.Get(q.State, id)
		if err != nil {
			return nil, err
		}
		if l == nil || (onlyActive && l.Status != StatusActive) {
			continue
		}
		if len(out.Leases) == MaxList {
			out.Truncated = true
			break
		}
		out.Leases = append(out.Leases, ViewOf(l, q.Time))
	}
	return out, nil
}

// collectIDs reads the lease ids at the end of the keys under prefix.
func collectIDs(v state.View, prefix []byte) ([]string, error) {
	var ids []string
	err := v.Iterate(prefix, false, func(key, _ []byte) bool {
		ids = append(ids, string(key[len(prefix):]))
		return true
	})
	return ids, err
}

func seqOf(id string) uint64 {
	n, _ := strconv.ParseUint(id[len("rent-"):], 10, 64)
	return n
}

func sortNewestFirst(ids []string) {
	slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(seqOf(b), seqOf(a)) })
}

// Query fetches lease id from a node.
func Query(ctx context.Context, g module.Getter, id string) (View, error) {
	var v View
	return v, g.GetJSON(ctx, "/api/v1/rentals/"+url.PathEscape(id), &v)
}

// Filter selects leases for QueryList: one of Customer, Provider, Service
// (none: every active lease).
type Filter struct {
	Customer, Provider, Service string
	ActiveOnly                  bool
}

// QueryList fetches leases from a node.
func QueryList(ctx context.Context, g module.Getter, f Filter) (List, error) {
	vals := url.Values{}
	if f.Customer != "" {
		vals.Set("customer", f.Customer)
	}
	if f.Provider != "" {
		vals.Set("provider", f.Provider)
	}
	if f.Service != "" {
		vals.Set("service_id", f.Service)
	}
	if f.ActiveOnly {
		vals.Set("status", "active")
	}
	path := "/api/v1/rentals"
	if len(vals) > 0 {
		path += "?" + vals.Encode()
	}
	var out List
	return out, g.GetJSON(ctx, path, &out)
}

// QueryParams fetches the module's parameters from a node.
func QueryParams(ctx context.Context, g module.Getter) (Params, error) {
	var p Params
	return p, g.GetJSON(ctx, "/api/v1/rentals/params", &p)
}

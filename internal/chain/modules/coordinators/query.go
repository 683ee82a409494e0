package coordinators

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// View is one announced coordinator as the API shows it.
type View struct {
	Address address.Address `json:"address"`
	URL     string          `json:"url"`
	Region  string          `json:"region"`
	Name    string          `json:"name,omitempty"`
	Created int64           `json:"announced_height"`
	Updated int64           `json:"updated_height"`
}

// ListView is GET /api/v1/coordinators and /api/v1/coordinators/{address}.
type ListView struct {
	Height       int64  `json:"height"`
	Coordinators []View `json:"coordinators"`
	More         bool   `json:"more"` // more matched than limit
}

// MaxList bounds one listing.
const MaxList = 500

func view(e *Endpoint) View {
	return View{Address: e.Addr(), URL: e.URL, Region: e.Region, Name: e.Name, Created: e.Created, Updated: e.Updated}
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/coordinators", Summary: "announced coordinators: public URL, region, name, announcing key; filterable by region", Handle: k.list},
		{Method: "GET", Path: "/api/v1/coordinators/{address}", Summary: "the coordinators one key announced", Handle: k.query},
	}
}

func (k *Keeper) query(q module.Query, in module.Request) (any, error) {
	a, err := address.Parse(in.PathValue("address"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAddress, err)
	}
	es, err := k.Of(q.State, a)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, a)
	}
	out := ListView{Height: q.Height, Coordinators: make([]View, 0, len(es))}
	for _, e := range es {
		out.Coordinators = append(out.Coordinators, view(e))
	}
	return out, nil
}

// Filter narrows GET /api/v1/coordinators. Zero values match everything.
type Filter struct {
	Region string
	Limit  int // at most MaxList; 0 is MaxList
}

func (k *Keeper) list(q module.Query, in module.Request) (any, error) {
	f := Filter{Region: in.Param("region")}
	if f.Region != "" {
		if err := CheckRegion(f.Region); err != nil {
			return nil, fmt.Errorf("%w: region: %w", ErrFilter, err)
		}
	}
	f.Limit = MaxList
	if s := in.Param("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxList {
			return nil, fmt.Errorf("%w: limit must be 1 to %d", ErrFilter, MaxList)
		}
		f.Limit = n
	}
	out := ListView{Height: q.Height, Coordinators: []View{}}
	var bad error
	err := q.State.Iterate(EndpointPrefix, false, func(_, v []byte) bool {
		e, err := decode(v)
		if err != nil {
			bad = err
			return false
		}
		if f.Region != "" && e.Region != f.Region {
			return true
		}
		if len(out.Coordinators) == f.Limit {
			out.More = true
			return false
		}
		out.Coordinators = append(out.Coordinators, view(e))
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
}

// List fetches the announced coordinators matching f from a node.
func List(ctx context.Context, g module.Getter, f Filter) (ListView, error) {
	q := url.Values{}
	if f.Region != "" {
		q.Set("region", f.Region)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/api/v1/coordinators"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var v ListView
	return v, g.GetJSON(ctx, path, &v)
}

// Of fetches the coordinators key a announced from a node; none is
// ErrNotFound.
func Of(ctx context.Context, g module.Getter, a address.Address) (ListView, error) {
	var v ListView
	return v, g.GetJSON(ctx, "/api/v1/coordinators/"+url.PathEscape(a.String()), &v)
}

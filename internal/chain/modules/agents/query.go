package agents

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// SpanView is a span as the API shows it.
type SpanView struct {
	Model string `json:"model"`
	First int    `json:"first_layer"`
	Last  int    `json:"last_layer"`
}

// View is GET /api/v1/agents/{id}.
type View struct {
	Address       address.Address `json:"address"`
	Name          string          `json:"name"`
	ModelHash     string          `json:"model_hash"`
	Capabilities  []string        `json:"capabilities"`
	Span          *SpanView       `json:"span,omitempty"`
	Spans         []SpanView      `json:"spans,omitempty"`    // every span served, Span first
	Endpoint      string          `json:"endpoint,omitempty"` // the span API's public base URL
	Created       int64           `json:"registered_height"`
	Updated       int64           `json:"updated_height"`
	Heartbeat     int64           `json:"last_heartbeat_height"`
	Active        bool            `json:"active"`
	ActiveWindow  int64           `json:"active_window_blocks"`
	Metrics       *Metrics        `json:"metrics,omitempty"` // the oracle's last committed epoch aggregate
	QueriedHeight int64           `json:"height"`
}

// ListView is GET /api/v1/agents.
type ListView struct {
	Height int64  `json:"height"`
	Agents []View `json:"agents"`
	More   bool   `json:"more"` // more agents matched than limit
}

// Filter narrows GET /api/v1/agents. Zero values match everything.
type Filter struct {
	Model      string // the span's model, or the model hash
	Capability string
	ActiveOnly bool
	Limit      int // at most MaxList; 0 is MaxList
}

// MaxList bounds one listing.
const MaxList = 500

func view(a *Agent, height, window int64) View {
	v := View{Address: a.Addr(), Name: a.Name, ModelHash: a.ModelHash, Capabilities: a.Caps, Created: a.Created, Updated: a.Updated,
		Heartbeat: a.Heartbeat, Active: a.Active(height, window), ActiveWindow: window, Metrics: a.Metrics, QueriedHeight: height}
	if v.Capabilities == nil {
		v.Capabilities = []string{}
	}
	if a.Span != nil {
		v.Span = &SpanView{Model: a.Span.Model, First: a.Span.First, Last: a.Span.Last}
		v.Spans = spanViews(a.Spans())
	}
	v.Endpoint = a.Endpoint
	return v
}

func spanViews(s []Span) []SpanView {
	out := make([]SpanView, len(s))
	for i, sp := range s {
		out[i] = SpanView{Model: sp.Model, First: sp.First, Last: sp.Last}
	}
	return out
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/agents", Summary: "registered agents, active or not, filterable by model and capability", Handle: k.list},
		{Method: "GET", Path: "/api/v1/agents/params", Summary: "the agents module's parameters: active_window_blocks, oracles", Handle: k.queryParams},
		{Method: "GET", Path: "/api/v1/agents/{id}", Summary: "an agent: model, capabilities, span, last heartbeat, active, the oracle's last metrics", Handle: k.query},
	}
}

func (k *Keeper) queryParams(q module.Query, _ module.Request) (any, error) { return k.Params(q.State) }

func (k *Keeper) query(q module.Query, in module.Request) (any, error) {
	a, err := address.Parse(in.PathValue("id"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAddress, err)
	}
	p, err := k.Params(q.State)
	if err != nil {
		return nil, err
	}
	ag, err := k.Get(q.State, a)
	if err != nil {
		return nil, err
	}
	if ag == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, a)
	}
	return view(ag, q.Height, p.ActiveWindow), nil
}

func parseFilter(in module.Request) (Filter, error) {
	f := Filter{Model: in.Param("model"), Capability: in.Param("capability")}
	if f.Model != "" && !checkToken(f.Model, ModelHashLen) {
		return f, fmt.Errorf("%w: model %q", ErrFilter, f.Model)
	}
	if f.Capability != "" {
		if err := CheckCapability(f.Capability); err != nil {
			return f, fmt.Errorf("%w: capability %q", ErrFilter, f.Capability)
		}
	}
	switch in.Param("active") {
	case "", "false":
	case "true":
		f.ActiveOnly = true
	default:
		return f, fmt.Errorf("%w: active must be true or false", ErrFilter)
	}
	if s := in.Param("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxList {
			return f, fmt.Errorf("%w: limit must be 1 to %d", ErrFilter, MaxList)
		}
		f.Limit = n
	}
	return f, nil
}

// Match reports whether a agrees with the filter (the activity aside).
func (f Filter) Match(a *Agent) bool {
	if f.Model != "" && a.ModelHash != f.Model && !slices.ContainsFunc(a.Spans(), func(s Span) bool { return s.Model == f.Model }) {
		return false
	}
	if f.Capability != "" {
		for _, c := range a.Caps {
			if c == f.Capability {
				return true
			}
		}
		return false
	}
	return true
}

func (k *Keeper) list(q module.Query, in module.Request) (any, error) {
	f, err := parseFilter(in)
	if err != nil {
		return nil, err
	}
	if f.Limit == 0 {
		f.Limit = MaxList
	}
	p, err := k.Params(q.State)
	if err != nil {
		return nil, err
	}
	out := ListView{Height: q.Height, Agents: []View{}}
	var bad error
	err = q.State.Iterate(AgentPrefix, false, func(key, _ []byte) bool {
		a, _ := address.FromBytes(key[len(AgentPrefix):])
		ag, err := k.Get(q.State, a)
		if err != nil {
			bad = err
			return false
		}
		if !f.Match(ag) || f.ActiveOnly && !ag.Active(q.Height, p.ActiveWindow) {
			return true
		}
		if len(out.Agents) == f.Limit {
			out.More = true
			return false
		}
		out.Agents = append(out.Agents, view(ag, q.Height, p.ActiveWindow))
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
}

// QueryParams fetches the module's parameters from a node (an agent's
// heartbeat loop reads the active window: Params.HeartbeatEvery).
func QueryParams(ctx context.Context, g module.Getter) (Params, error) {
	var p Params
	return p, g.GetJSON(ctx, "/api/v1/agents/params", &p)
}

// Query fetches an agent from a node.
func Query(ctx context.Context, g module.Getter, id address.Address) (View, error) {
	var v View
	return v, g.GetJSON(ctx, "/api/v1/agents/"+url.PathEscape(id.String()), &v)
}

// List fetches the agents matching filter from a node.
func List(ctx context.Context, g module.Getter, f Filter) (ListView, error) {
	q := url.Values{}
	if f.Model != "" {
		q.Set("model", f.Model)
	}
	if f.Capability != "" {
		q.Set("capability", f.Capability)
	}
	if f.ActiveOnly {
		q.Set("active", "true")
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/api/v1/agents"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var v ListView
	return v, g.GetJSON(ctx, path, &v)
}

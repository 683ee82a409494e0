package web

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/swarm"
)

// SwarmServer is one announced span of a span agent, as the swarm page
// lists it: the agents module's record (endpoint, heartbeat, whether the
// heartbeat is within the module's window) and the oracle's last
// committed aggregate for the agent, if any.
type SwarmServer struct {
	Agent     agents.View     `json:"agent"`
	First     int             `json:"first_layer"` // inclusive, as announced
	Last      int             `json:"last_layer"`  // inclusive
	Active    bool            `json:"active"`
	Heartbeat int64           `json:"last_heartbeat_height"`
	Metrics   *agents.Metrics `json:"metrics,omitempty"`
}

// SwarmModel is one model's spans: the servers by first layer, and the
// layers no active server announces (a route through them cannot be
// completed).
type SwarmModel struct {
	Model   string        `json:"model"`
	Layers  int           `json:"layers"` // the highest announced layer + 1: the chain does not hold a model's depth
	Servers []SwarmServer `json:"servers"`
	Missing []int         `json:"missing_layers"`
}

// swarmData is the swarm page: the span agents registered on chain, per
// model (what `aitbc swarm` probes, read from the chain only).
type swarmData struct {
	Height       int64        `json:"height"`
	ActiveWindow int64        `json:"active_window_blocks"`
	Models       []SwarmModel `json:"models"`
	More         bool         `json:"more"` // more span agents than one listing holds
}

// swarmList reads the span agents once a block.
func (s *Server) swarmList(ctx context.Context) (swarmData, error) {
	_, _, height := s.feed.latest(0, 0)
	return s.swarms.get(ctx, "swarm", height, func(ctx context.Context) (swarmData, error) {
		l, err := agents.List(ctx, s.cfg.Node, agents.Filter{Capability: "span"})
		if err != nil {
			return swarmData{}, err
		}
		return buildSwarm(l), nil
	})
}

// buildSwarm groups the agents' spans by model and asks the router
// (swarm.Route, as a driver would over the same agents) which layers no
// active one serves.
func buildSwarm(l agents.ListView) swarmData {
	d := swarmData{Height: l.Height, More: l.More, Models: []SwarmModel{}}
	byModel := map[string]*SwarmModel{}
	peers := map[string][]swarm.Peer{}
	for _, a := range l.Agents {
		d.ActiveWindow = a.ActiveWindow
		for _, sp := range a.Spans {
			m := byModel[sp.Model]
			if m == nil {
				m = &SwarmModel{Model: sp.Model}
				byModel[sp.Model] = m
			}
			m.Layers = max(m.Layers, sp.Last+1)
			m.Servers = append(m.Servers, SwarmServer{Agent: a, First: sp.First, Last: sp.Last, Active: a.Active,
				Heartbeat: a.Heartbeat, Metrics: a.Metrics})
			if a.Active {
				peers[sp.Model] = append(peers[sp.Model], swarm.Peer{ID: a.Address.String(), URL: a.Endpoint, Model: sp.Model,
					First: sp.First, Last: sp.Last + 1})
			}
		}
	}
	for _, m := range byModel {
		slices.SortFunc(m.Servers, func(a, b SwarmServer) int {
			return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last), cmp.Compare(a.Agent.Address.String(), b.Agent.Address.String()))
		})
		m.Missing = []int{}
		var miss *swarm.MissingLayersError
		if _, err := swarm.Route(m.Model, 0, m.Layers, peers[m.Model], swarm.MaxThroughput, nil); errors.As(err, &miss) {
			m.Missing = miss.Layers
		}
		d.Models = append(d.Models, *m)
	}
	slices.SortFunc(d.Models, func(a, b SwarmModel) int { return cmp.Compare(a.Model, b.Model) })
	return d
}

// Ranges is the missing layers as inclusive ranges ("2-3, 5").
func (m SwarmModel) Ranges() [][2]int {
	var out [][2]int
	for _, l := range m.Missing {
		if n := len(out); n > 0 && out[n-1][1] == l-1 {
			out[n-1][1] = l
			continue
		}
		out = append(out, [2]int{l, l})
	}
	return out
}

func (s *Server) swarmPage(w http.ResponseWriter, r *http.Request) error {
	d, err := s.swarmList(r.Context())
	if err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "swarm.html", "Swarm", "explorer", d)
}

func (s *Server) apiSwarm(w http.ResponseWriter, r *http.Request) error {
	d, err := s.swarmList(r.Context())
	if err != nil {
		return err
	}
	return ok(w, d)
}

// Throughput is the oracle's aggregate as tokens per second of uptime
// ("" without an aggregate or uptime).
func (s SwarmServer) Throughput() string {
	if s.Metrics == nil || s.Metrics.UptimeSeconds == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(s.Metrics.ProcessedTokens)/float64(s.Metrics.UptimeSeconds), 'f', 1, 64)
}

package swarm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
)

// ChainPeers is the Directory of the chain's agent registry: the active
// agents with the "span" capability and an endpoint, probed on every call
// for their round trip and speed (a route repair sees which ones answer
// now). A server is routed to only for spans it both announced on chain
// and serves now: the chain's record is what it is paid against
// (jobs/settle_stages checks every stage's layers against it), the probe
// is what it can do.
type ChainPeers struct {
	Node module.Getter
	HTTP *http.Client
	Log  *slog.Logger
}

// Peers returns the span servers of model, with peer ids their agent
// addresses.
func (c ChainPeers) Peers(ctx context.Context, model string) ([]Peer, error) {
	l, err := agents.List(ctx, c.Node, agents.Filter{Model: model, Capability: "span", ActiveOnly: true})
	if err != nil {
		return nil, fmt.Errorf("swarm: agents of %s: %w", model, err)
	}
	var urls []string
	var recs []agents.View
	for _, a := range l.Agents {
		if a.Endpoint != "" {
			urls, recs = append(urls, a.Endpoint), append(recs, a)
		}
	}
	var out []Peer
	for i, p := range ProbeAll(ctx, c.HTTP, urls) {
		if p.Error != "" {
			if c.Log != nil {
				c.Log.Warn("span server unreachable", "agent", recs[i].Address, "url", p.URL, "err", p.Error)
			}
			continue
		}
		for _, sp := range p.Info.Spans {
			if sp.Model != model {
				continue
			}
			for _, on := range recs[i].Spans {
				// The overlap of what is served and what is announced.
				first, last := max(sp.First, on.First), min(sp.Last, on.Last+1)
				if on.Model == model && first < last {
					out = append(out, Peer{ID: recs[i].Address.String(), URL: p.URL, Model: model, First: first, Last: last,
						RTT: p.RTT, LayerRPS: p.Info.LayerTokensPerSecond})
				}
			}
		}
	}
	return out, nil
}

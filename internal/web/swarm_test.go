package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/engine"
)

// TestSwarmPage: the devnet's two span servers (--span-miners 2) announce
// their halves of the default model on chain; /swarm lists both with
// their agent, endpoint, layer range, heartbeat and activity as the
// agents module has them, names the layers of an inactive one as unserved
// (or says every layer has a server), and /api/explorer/swarm answers the
// same; the explorer links to it.
func TestSwarmPage(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	c := client()
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	layers := m.Config().Layers
	if len(e.d.SpanURLs) != 2 {
		t.Fatalf("span servers %v", e.d.SpanURLs)
	}
	// The announcements are sent as the devnet starts. An agent is active
	// while its heartbeat (every minute) is within the module's window of
	// blocks, which on this fast devnet lapses between heartbeats: so each
	// expectation is computed from the module's state read just before
	// the page, and the page (read once a block) must agree with one such
	// reading.
	expect := func() []string {
		t.Helper()
		l, err := agents.List(ctx, e.node, agents.Filter{Capability: "span"})
		if err != nil {
			t.Fatal(err)
		}
		byURL := map[string]agents.View{}
		for _, a := range l.Agents {
			byURL[a.Endpoint] = a
		}
		var want []string
		var missing []string
		for i, u := range e.d.SpanURLs {
			a, ok := byURL[u]
			if !ok {
				return []string{"agent with endpoint " + u + " (not on chain yet)"}
			}
			first, last := i*layers/2, (i+1)*layers/2-1
			status := "active"
			if !a.Active {
				status = "inactive"
				missing = append(missing, fmt.Sprintf("%d-%d", first, last))
			}
			want = append(want, fmt.Sprintf(`<td>%d-%d</td><td><a class="mono" href="/explorer/address/%s" title="%s">%s</a></td><td class="mono">%s</td><td>%s</td><td><a href="/explorer/block/%d">%d</a></td>`,
				first, last, a.Address, a.Address, shortAddr(a.Address.String()), u, status, a.Heartbeat, a.Heartbeat))
		}
		switch len(missing) {
		case 0:
			want = append(want, fmt.Sprintf("Every layer 0-%d has an active server.", layers-1))
		case 1:
			want = append(want, fmt.Sprintf("No active server for layers %s of %d: a route through this model cannot be completed.", missing[0], layers))
		default: // adjacent halves: one range
			want = append(want, fmt.Sprintf("No active server for layers 0-%d of %d", layers-1, layers))
		}
		return append(want, "<h2>"+engine.DefaultModel+"</h2>")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		want := expect()
		a := get(t, c, e.web+"/swarm")
		missing := ""
		for _, s := range want {
			if !strings.Contains(a.body, s) {
				missing = s
				break
			}
		}
		if a.status == 200 && missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/swarm (%d) lacks %q:\n%s", a.status, missing, a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var j struct {
		Models []struct {
			Model   string `json:"model"`
			Layers  int    `json:"layers"`
			Missing []int  `json:"missing_layers"`
			Servers []struct {
				Agent     agents.View `json:"agent"`
				First     int         `json:"first_layer"`
				Last      int         `json:"last_layer"`
				Active    bool        `json:"active"`
				Heartbeat int64       `json:"last_heartbeat_height"`
			} `json:"servers"`
		} `json:"models"`
	}
	getJSONInto(t, c, e.web+"/api/explorer/swarm", &j)
	if len(j.Models) != 1 || j.Models[0].Model != engine.DefaultModel || j.Models[0].Layers != layers ||
		j.Models[0].Missing == nil || len(j.Models[0].Servers) != 2 {
		t.Fatalf("/api/explorer/swarm: %+v", j)
	}
	for i, s := range j.Models[0].Servers {
		if s.Agent.Endpoint != e.d.SpanURLs[i] || s.First != i*layers/2 || s.Last != (i+1)*layers/2-1 || s.Active != s.Agent.Active || s.Heartbeat <= 0 {
			t.Errorf("server %d: %+v", i, s)
		}
	}
	if a := get(t, c, e.web+"/explorer"); !strings.Contains(a.body, `<a href="/swarm">Swarm</a>`) {
		t.Errorf("the explorer does not link to /swarm")
	}
}

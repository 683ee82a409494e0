package web

import (
	"slices"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
)

// TestBuildSwarmGaps: an inactive server's layers count as unserved, and
// its oracle aggregate is still shown; models are apart.
func TestBuildSwarmGaps(t *testing.T) {
	a1, a2, a3 := address.Address{1}, address.Address{2}, address.Address{3}
	met := &agents.Metrics{Epoch: 4, Reports: 2, ProcessedTokens: 600, AvgLatencyMs: 12, UptimeSeconds: 60}
	l := agents.ListView{Height: 90, Agents: []agents.View{
		{Address: a2, Active: false, Heartbeat: 10, ActiveWindow: 50, Metrics: met, Spans: []agents.SpanView{{Model: "m", First: 2, Last: 3}}},
		{Address: a1, Active: true, Heartbeat: 80, ActiveWindow: 50, Spans: []agents.SpanView{{Model: "m", First: 0, Last: 1}, {Model: "n", First: 0, Last: 1}}},
		{Address: a3, Active: true, Heartbeat: 85, ActiveWindow: 50, Spans: []agents.SpanView{{Model: "m", First: 5, Last: 5}}},
	}}
	d := buildSwarm(l)
	if len(d.Models) != 2 || d.Models[0].Model != "m" || d.Models[1].Model != "n" || d.ActiveWindow != 50 {
		t.Fatalf("%+v", d)
	}
	m := d.Models[0]
	if m.Layers != 6 || !slices.Equal(m.Missing, []int{2, 3, 4}) || !slices.Equal(m.Ranges(), [][2]int{{2, 4}}) {
		t.Errorf("model m: layers %d, missing %v, ranges %v", m.Layers, m.Missing, m.Ranges())
	}
	if len(m.Servers) != 3 || m.Servers[0].Agent.Address != a1 || m.Servers[1].Agent.Address != a2 || m.Servers[1].Active ||
		m.Servers[1].Throughput() != "10.0" || m.Servers[0].Throughput() != "" {
		t.Errorf("servers: %+v", m.Servers)
	}
	if n := d.Models[1]; n.Layers != 2 || len(n.Missing) != 0 {
		t.Errorf("model n: %+v", n)
	}
	s := &Server{}
	if err := s.parsePages(); err != nil {
		t.Fatal(err)
	}
	page, err := s.render(nil, 200, "swarm.html", "Swarm", "explorer", d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"No active server for layers 2-4 of 6: a route through this model cannot be completed.",
		"<td>2-3</td>", "<td>inactive</td>", "<td>4</td><td>12 ms</td><td>600</td><td>10.0</td>", "Every layer 0-1 has an active server.",
		`<td colspan="4">no aggregate yet</td>`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
}

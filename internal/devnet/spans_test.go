package devnet_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/swarm"
)

// TestSpanMinersRunASplitJob: a devnet with --span-miners 2 serves the
// halves of tolstoy-1m, a routed generation through them equals the whole
// model's, and both span servers are registered on chain with their span.
func TestSpanMinersRunASplitJob(t *testing.T) {
	e := start(t, devnet.Config{SpanMiners: 2, SpanListen: "127.0.0.1:0", Miners: -1})
	if len(e.d.SpanURLs) != 2 {
		t.Fatalf("span servers %v, want 2", e.d.SpanURLs)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, err := m.Generate(ctx, engine.GenerateRequest{Prompt: "It was", MaxTokens: 30, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &swarm.Pipeline{Dir: swarm.URLPeers{HTTP: &http.Client{}, URLs: e.d.SpanURLs}}
	got, err := p.Generate(ctx, swarm.GenerateRequest{Model: engine.DefaultModel, Layers: m.Config().Layers, Prompt: want.PromptTokens, MaxTokens: 30, Stop: m.StopTokens()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Tokens, want.Tokens) || len(got.Route) != 2 {
		t.Fatalf("split job %v via %d hops, whole model %v", got.Tokens, len(got.Route), want.Tokens)
	}
	// The registrations land in a block; wait for them (not for a time).
	var l agents.ListView
	for {
		if l, err = agents.List(ctx, e.node, agents.Filter{Model: engine.DefaultModel}); err == nil && len(l.Agents) == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("span agents on chain: %+v, %v", l, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	var spans [][2]int
	for _, a := range l.Agents {
		if a.Span == nil || !a.Active {
			t.Fatalf("agent %+v has no span or is inactive", a)
		}
		spans = append(spans, [2]int{a.Span.First, a.Span.Last})
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	if !slices.Equal(spans, [][2]int{{0, 1}, {2, 3}}) {
		t.Fatalf("spans on chain %v, want 0-1 and 2-3", spans)
	}
}

package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/swarm"
)

// TestSwarmFindsServersOnChain: on a devnet with --span-miners 2, `aitbc
// swarm` and `aitbc swarm generate` without --peers find the span servers
// by the endpoints their agent records carry, and the routed text equals
// the whole model's.
func TestSwarmFindsServersOnChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: t.TempDir(), BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true, NoHosting: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0", // span servers start with the coordinator
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr, SpanMiners: 2, SpanListen: "127.0.0.1:0",
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	node := rpc.NewClient(d.RPCURL())
	var l agents.ListView
	for { // the registrations land in a block: wait for them, not for a time
		l, err = agents.List(ctx, node, agents.Filter{Capability: "span", ActiveOnly: true})
		if err == nil && len(l.Agents) == 2 && l.Agents[0].Endpoint != "" && l.Agents[1].Endpoint != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("span agents: %+v %v", l, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	out, _, err := runCLI(t, "swarm", "--node", d.RPCURL(), "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var probes []swarm.Probe
	if err := json.Unmarshal([]byte(out), &probes); err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, p := range probes {
		if p.Error != "" {
			t.Fatalf("probe %s: %s", p.URL, p.Error)
		}
		urls = append(urls, p.URL)
	}
	slices.Sort(urls)
	want := slices.Clone(d.SpanURLs)
	slices.Sort(want)
	if !slices.Equal(urls, want) {
		t.Fatalf("swarm found %v on chain, the devnet serves %v", urls, want)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := m.Generate(ctx, engine.GenerateRequest{Prompt: "It was", MaxTokens: 20, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, "swarm", "generate", "--node", d.RPCURL(), "--prompt", "It was", "--max-tokens", "20", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Text  string `json:"text"`
		Route []struct {
			Server string `json:"server"`
		} `json:"route"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Text != ref.Text || len(res.Route) != 2 {
		t.Fatalf("routed %q via %d hops, whole model %q", res.Text, len(res.Route), ref.Text)
	}
	for _, h := range res.Route {
		if !slices.ContainsFunc(l.Agents, func(a agents.View) bool { return a.Address.String() == h.Server }) {
			t.Fatalf("hop server %s is not a span agent on chain", h.Server)
		}
	}
}

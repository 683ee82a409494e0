package cli_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/oracle/report"
)

type edKey struct{ ed25519.PrivateKey }

func (k edKey) PublicKey() ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
func (k edKey) Sign(m []byte) []byte         { return ed25519.Sign(k.PrivateKey, m) }

// TestAgentsAndOracleOnADevnet: the seed's chain-registration and
// metrics-reporting suites on a real devnet. An agent registers a span
// and heartbeats with `aitbc agent`, shows active, then inactive once its
// last heartbeat is older than the window; its signed report is accepted
// by the devnet's oracle, an unregistered key's is refused, and the
// oracle's epoch aggregate lands on chain in the agent's record.
func TestAgentsAndOracleOnADevnet(t *testing.T) {
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
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kopts := []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())}
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true, NoHosting: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		OracleListen: "127.0.0.1:0", OracleEpoch: 2 * time.Second,
		Keystore: kopts,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
	pw := []string{"--password", "123"}
	agent := devnet.GenesisWallet
	addr := e.addrOf(agent)
	hash := strings.Repeat("ab", 32)

	e.fails("a span names a model", append([]string{"agent", "register", "--wallet", agent, "--name", "node-a", "--model-hash", hash, "--span-model", "tolstoy-1m", "--layers", "3-1"}, pw...)...)
	e.fails("model hash must be 64", append([]string{"agent", "register", "--wallet", agent, "--name", "node-a", "--model-hash", "abc"}, pw...)...)
	e.ok(append([]string{"agent", "register", "--wallet", agent, "--name", "node-a", "--model-hash", hash, "--capabilities", "inference,span", "--span-model", "tolstoy-1m", "--layers", "0-1"}, pw...)...)

	show := func() agents.View {
		t.Helper()
		var v agents.View
		out, _, err := e.run("agent", "show", addr, "--output", "json")
		if err != nil {
			return v // agent_not_found until the registration is committed
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("agent show: %v\n%s", err, out)
		}
		return v
	}
	waitFor := func(what string, ok func(agents.View) bool) agents.View {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			v := show()
			if ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %+v", what, v)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	v := waitFor("the registration", func(v agents.View) bool { return v.Name == "node-a" })
	if !v.Active || v.Span == nil || v.Span.Model != "tolstoy-1m" || v.Span.First != 0 || v.Span.Last != 1 || v.ModelHash != hash {
		t.Fatalf("registered agent: %+v", v)
	}
	var l agents.ListView
	if err := json.Unmarshal([]byte(e.ok("agent", "list", "--model", "tolstoy-1m", "--capability", "span", "--output", "json")), &l); err != nil || len(l.Agents) != 1 || l.Agents[0].Address.String() != addr {
		t.Fatalf("agent list: %+v %v", l, err)
	}
	e.ok(append([]string{"agent", "heartbeat", "--wallet", agent}, pw...)...)
	v = waitFor("the heartbeat", func(n agents.View) bool { return n.Heartbeat > v.Heartbeat })
	if !v.Active {
		t.Fatalf("after a heartbeat: %+v", v)
	}

	// Reports to the devnet's oracle, signed with the agent's key.
	ks, err := keystore.ForHome(home, kopts...)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ks.Unlock(agent, "123")
	if err != nil {
		t.Fatal(err)
	}
	col := report.NewMetricsCollector(nil)
	col.Task(120, 40*time.Millisecond)
	col.Task(80, 20*time.Millisecond)
	rep := &report.OracleReporter{URL: d.OracleURL(), ChainID: d.Node.ChainID(), Key: key, Collector: col}
	if ack, err := rep.Send(ctx); err != nil || ack.Status != "success" {
		t.Fatalf("report: %+v %v", ack, err)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	srep := &report.OracleReporter{URL: d.OracleURL(), ChainID: d.Node.ChainID(), Key: edKey{stranger}, Collector: report.NewMetricsCollector(nil)}
	if _, err := srep.Send(ctx); !httpx.IsCode(err, "agent_not_registered") {
		t.Fatalf("an unregistered agent's report: %v", err)
	}
	col.Task(5, time.Millisecond)
	if _, err := rep.Send(ctx); !httpx.IsCode(err, "rate_limited") && !httpx.IsCode(err, "replayed_timestamp") {
		t.Fatalf("a second report at once: %v", err)
	}

	// The epoch's aggregate on chain, from the oracle's key.
	v = waitFor("the oracle's commit", func(v agents.View) bool { return v.Metrics != nil })
	if m := v.Metrics; m.Reports != 1 || m.ProcessedTokens != 200 || m.TasksCompleted != 2 || m.AvgLatencyMs != 30 {
		t.Fatalf("committed metrics: %+v", m)
	}
	var mv struct {
		Total struct {
			Reports uint64 `json:"reports"`
		} `json:"total"`
	}
	if err := httpx.Do(ctx, http.DefaultClient, "GET", d.OracleURL()+"/api/v1/agents/"+addr+"/metrics", nil, nil, &mv); err != nil || mv.Total.Reports != 1 {
		t.Fatalf("oracle metrics: %+v %v", mv, err)
	}

	// Silent for longer than the window (60 blocks): inactive, and out of
	// the active list.
	waitFor("inactivity", func(v agents.View) bool { return v.Name != "" && !v.Active })
	if err := json.Unmarshal([]byte(e.ok("agent", "list", "--active", "--output", "json")), &l); err != nil || len(l.Agents) != 0 {
		t.Fatalf("active list after the window: %+v %v", l, err)
	}
}

package cli_test

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/swarm"
)

func startSpan(t *testing.T, first, last int) string {
	t.Helper()
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	s, err := swarm.NewServer([]swarm.ServedSpan{{Name: engine.DefaultModel, Model: m, First: first, Last: last}}, swarm.ServerConfig{Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// TestSwarmGenerateMatchesModelRun runs a split generation from the CLI
// through two span servers holding the halves of tolstoy-1m and checks it
// against the whole model's greedy output (aitbc model run).
func TestSwarmGenerateMatchesModelRun(t *testing.T) {
	a, b := startSpan(t, 0, 2), startSpan(t, 2, 4)
	out, _, err := runCLI(t, "model", "run", "--model", "tolstoy-1m", "--prompt", "It was", "--temperature", "0", "--max-tokens", "30", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var whole struct {
		Text   string `json:"text"`
		Tokens []int  `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(out), &whole); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, "swarm", "generate", "--peers", a+","+b, "--prompt", "It was", "--max-tokens", "30", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var split struct {
		Text   string `json:"text"`
		Tokens []int  `json:"tokens"`
		Route  []struct {
			Server string `json:"server"`
		} `json:"route"`
	}
	if err := json.Unmarshal([]byte(out), &split); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Equal(split.Tokens, whole.Tokens) || split.Text != whole.Text {
		t.Fatalf("split %v %q, whole model %v %q", split.Tokens, split.Text, whole.Tokens, whole.Text)
	}
	if len(split.Route) != 2 || split.Route[0].Server != a || split.Route[1].Server != b {
		t.Fatalf("route %+v, want %s then %s", split.Route, a, b)
	}

	out, _, err = runCLI(t, "swarm", "--peers", a+","+b, "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var probes []swarm.Probe
	if err := json.Unmarshal([]byte(out), &probes); err != nil {
		t.Fatal(err)
	}
	if len(probes) != 2 || probes[1].Info.Spans[0].First != 2 || probes[1].Info.TokensProcessed == 0 {
		t.Fatalf("swarm status: %s", out)
	}
}

func TestSwarmGenerateNamesMissingLayers(t *testing.T) {
	a := startSpan(t, 0, 2)
	_, _, err := runCLI(t, "swarm", "generate", "--peers", a, "--prompt", "It was")
	if err == nil || !strings.Contains(err.Error(), "no server for layers 2, 3 of tolstoy-1m") {
		t.Fatalf("err = %v", err)
	}
	// Without --peers the servers come from the chain: with no node
	// there, the answer says so.
	if _, _, err := runCLI(t, "swarm", "--node", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "span agents on chain (or give --peers)") {
		t.Fatalf("without --peers: %v", err)
	}
}

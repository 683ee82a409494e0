package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// --via relay puts every hop a round trip away on any machine: the output
// says so, and no route decodes faster than its round trips allow (each
// token crosses every hop once, so tokens/s <= 1 / (spans × RTT); a lower
// bound on time only, never an upper one).
func TestBenchSwarmInjectsTheRoundTripThroughRelays(t *testing.T) {
	out, _, err := runCLI(t, "bench", "swarm", "--rtt", "20ms", "--via", "relay", "--tokens", "3", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		RTTMs      float64 `json:"injected_rtt_ms"`
		InjectedBy string  `json:"injected_by"`
		Routes     []struct {
			Spans        int     `json:"spans"`
			Tokens       int     `json:"tokens"`
			TokensPerSec float64 `json:"tokens_per_second"`
		} `json:"routes"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.InjectedBy != "relay" || got.RTTMs != 20 || len(got.Routes) != 3 {
		t.Fatalf("injected by %q, rtt %v ms, %d routes; want relay, 20, 3 (1, 2, 4 spans): %s", got.InjectedBy, got.RTTMs, len(got.Routes), out)
	}
	for _, r := range got.Routes {
		if r.Tokens < 1 || r.TokensPerSec*float64(r.Spans)*0.020 > 1.0001 {
			t.Errorf("%d spans: %d tokens at %.1f tokens/s, faster than %d round trips of 20 ms a token allow", r.Spans, r.Tokens, r.TokensPerSec, r.Spans)
		}
	}
}

func TestBenchSwarmRejectsAnUnknownVia(t *testing.T) {
	_, _, err := runCLI(t, "bench", "swarm", "--rtt", "20ms", "--via", "carrier-pigeon")
	if err == nil || !strings.Contains(err.Error(), "--via must be auto, netem or relay") {
		t.Fatalf("err %v", err)
	}
}

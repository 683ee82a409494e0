package swarm

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"
)

// Span servers behind 50 ms relays decode exactly as on loopback, and
// every hop pays at least the injected round trip (a relay never delivers
// early: a lower bound, not a timing race). The netem lab's test, on any
// machine.
func TestRelayLabInjectsTheRoundTrip(t *testing.T) {
	ctx := context.Background()
	const rtt = 50 * time.Millisecond
	lab, err := NewRelayLab(rtt)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	ref := reference(t, "It was", n)
	m := tolstoy(t)
	peers, stop, err := startLoopback(ctx, model, m, 2, lab.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	probes := ProbeAll(ctx, &http.Client{}, []string{peers[0].URL, peers[1].URL})
	for _, p := range probes {
		if p.Error != "" || p.RTT < rtt {
			t.Fatalf("probe of %s: rtt %s, error %q; want at least the injected %s", p.URL, p.RTT, p.Error, rtt)
		}
	}
	p := &Pipeline{HTTP: &http.Client{}, Dir: peers}
	start := time.Now()
	res, err := p.Generate(ctx, request(ref, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tokens, ref.Tokens) {
		t.Fatalf("through relays %v, whole model %v", res.Tokens, ref.Tokens)
	}
	// The prompt and n-1 tokens, each crossing two hops of >= rtt.
	if el, least := time.Since(start), time.Duration(2*n)*rtt; el < least {
		t.Fatalf("%d tokens through 2 hops took %s, less than the injected %s", n, el, least)
	}
}

func TestRelayLabRejectsABadRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, time.Hour} {
		if _, err := NewRelayLab(d); err == nil {
			t.Errorf("NewRelayLab(%s) accepted", d)
		}
	}
}

//go:build linux

package swarm

import (
	"context"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// Span servers in network namespaces 50 ms of round trip away (tc netem)
// route and decode exactly as on loopback, and every hop pays at least the
// injected round trip (netem never delivers early: a lower bound, not a
// timing race).
func TestNetemLabInjectsTheRoundTrip(t *testing.T) {
	if err := exec.Command("ip", "netns", "list").Run(); err != nil {
		t.Skipf("no iproute2 here (%v): the netem lab cannot run", err)
	}
	ctx := context.Background()
	lab, err := NewNetemLab(ctx, 2, 50*time.Millisecond)
	if err != nil {
		t.Skipf("the netem lab cannot be built on this machine (root, network namespaces and the kernel's netem qdisc are needed): %v", err)
	}
	defer func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	}()
	const n = 10
	ref := reference(t, "It was", n)
	m := tolstoy(t)
	peers, stop, err := startLoopback(ctx, model, m, 2, lab.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for i, p := range peers {
		if want := "http://" + lab.IP(i) + ":"; len(p.URL) <= len(want) || p.URL[:len(want)] != want {
			t.Fatalf("server %d listens on %s, not in its namespace", i, p.URL)
		}
	}
	probes := ProbeAll(ctx, &http.Client{}, []string{peers[0].URL, peers[1].URL})
	for _, p := range probes {
		if p.Error != "" || p.RTT < 50*time.Millisecond {
			t.Fatalf("probe of %s: rtt %s, error %q; want at least the injected 50 ms", p.URL, p.RTT, p.Error)
		}
	}
	p := &Pipeline{HTTP: &http.Client{}, Dir: peers}
	start := time.Now()
	res, err := p.Generate(ctx, request(ref, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Tokens, ref.Tokens) {
		t.Fatalf("through namespaces %v, whole model %v", res.Tokens, ref.Tokens)
	}
	// The prompt and n-1 tokens, each crossing two hops of >= 50 ms.
	if el, least := time.Since(start), time.Duration(2*n)*50*time.Millisecond; el < least {
		t.Fatalf("%d tokens through 2 hops took %s, less than the injected %s", n, el, least)
	}
}

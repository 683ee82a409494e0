package testnet

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// After relayLinks every node's persistent peers are the other nodes'
// ids at relay addresses, peer exchange is off, and a connection to the
// relay a node dials for peer j reaches j's p2p port one round trip away.
func TestRelayLinksPointPeersThroughDelayingRelays(t *testing.T) {
	m, err := Init(Options{Dir: t.TempDir(), Validators: 3, FreePorts: true, NoCometRPC: true, BlockTime: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const rtt = 40 * time.Millisecond
	closeRelays, err := relayLinks(m, rtt)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = closeRelays() }()

	// Stand-ins for the nodes' p2p listeners (the nodes are not started):
	// each echoes what it reads.
	for _, n := range m.Nodes {
		ln, err := net.Listen("tcp", n.P2P)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
			}
		}()
	}
	for i := range m.Nodes {
		nc, err := LoadNodeConfig(m.HomeOf(i))
		if err != nil {
			t.Fatal(err)
		}
		if nc.PEX || len(nc.PersistentPeers) != len(m.Nodes)-1 {
			t.Fatalf("node%d: pex %v, peers %v", i, nc.PEX, nc.PersistentPeers)
		}
		for _, p := range nc.PersistentPeers {
			id, addr, _ := strings.Cut(p, "@")
			j := -1
			for k, n := range m.Nodes {
				if n.NodeID == id && k != i {
					j = k
				}
			}
			if j < 0 || addr == m.Nodes[j].P2P {
				t.Fatalf("node%d's peer %q: not another node's id at a relay", i, p)
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, _ = c.Write([]byte(id))
			got := make([]byte, len(id))
			_, err = io.ReadFull(c, got)
			el := time.Since(start)
			_ = c.Close()
			if err != nil || string(got) != id {
				t.Fatalf("through %s: %q, %v", addr, got, err)
			}
			if el < rtt {
				t.Fatalf("node%d to node%d: a round trip of %s through a relay of %s", i, j, el, rtt)
			}
		}
	}
	if err := closeRelays(); err != nil {
		t.Fatal(err)
	}
	nc, _ := LoadNodeConfig(m.HomeOf(0))
	_, addr, _ := strings.Cut(nc.PersistentPeers[0], "@")
	if c, err := net.Dial("tcp", addr); err == nil {
		_ = c.Close()
		t.Fatal("a relay still accepts after close")
	}
}

func TestBenchRejectsABadRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, time.Hour} {
		if _, err := Bench(t.Context(), BenchOptions{Binary: "unused", RTT: d}); err == nil || !strings.Contains(err.Error(), "round trip") {
			t.Errorf("RTT %s: %v", d, err)
		}
	}
}

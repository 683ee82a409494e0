package netsim

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer is a real TCP echo server on loopback.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func relayTo(t *testing.T, target string, cfg Config) *Relay {
	t.Helper()
	r, err := Listen(target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// roundTrip writes msg and reads the echo back, timing it.
func roundTrip(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo %q, want %q", got, msg)
	}
	return el
}

// Every echo through a relay of round trip R takes at least R: half on
// the way out, half on the way back (a lower bound only: the machine may
// be slow, never early).
func TestEchoThroughRelayCostsTheRoundTrip(t *testing.T) {
	const rtt = 80 * time.Millisecond
	r := relayTo(t, echoServer(t), Config{RTT: rtt})
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if el := roundTrip(t, c, []byte("ping "+string(rune('a'+i)))); el < rtt {
			t.Fatalf("round trip %d took %s through a relay of %s", i, el, rtt)
		}
	}
}

// Two relays in a row add up: a request crossing both pays both round
// trips, as a route through two hops does.
func TestChainedRelaysAddTheirRoundTrips(t *testing.T) {
	const rtt = 60 * time.Millisecond
	inner := relayTo(t, echoServer(t), Config{RTT: rtt})
	outer := relayTo(t, inner.Addr().String(), Config{RTT: rtt})
	c, err := net.Dial("tcp", outer.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if el := roundTrip(t, c, []byte("two hops")); el < 2*rtt {
		t.Fatalf("round trip took %s through two relays of %s", el, rtt)
	}
}

// Many writes in flight at once come back whole and in order, whatever
// the chunking: the relay delays, it never reorders or loses.
func TestRelayKeepsOrderAndBytes(t *testing.T) {
	r := relayTo(t, echoServer(t), Config{RTT: 20 * time.Millisecond})
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 3<<20) // more than the queue holds: backpressure too
	if _, err := rand.Read(msg); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		for off := 0; off < len(msg); off += 1000 {
			if _, err := c.Write(msg[off:min(off+1000, len(msg))]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the bytes came back changed or out of order")
	}
}

// A client's half-close reaches the server (after the delay), and the
// server's answer and end of stream come back.
func TestRelayPassesHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the client's half-close
		_, _ = c.Write([]byte("got " + string(b)))
	}()
	r := relayTo(t, ln.Addr().String(), Config{RTT: 10 * time.Millisecond})
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("all"))
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "got all" {
		t.Fatalf("read %q, %v; want \"got all\" then the end", b, err)
	}
}

// Close ends the relayed connections too: the client sees its stream end
// rather than hanging.
func TestCloseEndsOpenConnections(t *testing.T) {
	r, err := Listen(echoServer(t), Config{RTT: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("x"))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the relayed connection still reads after Close")
	}
	if _, err := net.Dial("tcp", r.Addr().String()); err == nil {
		t.Fatal("a closed relay still accepts")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// A rate cap holds throughput down: 64 KiB at 256 KiB/s takes at least
// a quarter of a second each way.
func TestBandwidthCap(t *testing.T) {
	r := relayTo(t, echoServer(t), Config{BytesPerSecond: 256 << 10})
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("z"), 64<<10)
	// Each direction is capped and the echo starts as the first bytes
	// arrive, so the two crossings overlap: one full one is certain.
	if el := roundTrip(t, c, msg); el < 250*time.Millisecond {
		t.Fatalf("64 KiB echoed in %s through a 256 KiB/s cap", el)
	}
}

func TestListenRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		target string
		cfg    Config
	}{
		{"127.0.0.1:1", Config{RTT: -time.Millisecond}},
		{"127.0.0.1:1", Config{RTT: MaxDelay + 1}},
		{"127.0.0.1:1", Config{BytesPerSecond: -1}},
		{"", Config{}},
	} {
		if r, err := Listen(tc.target, tc.cfg); err == nil {
			_ = r.Close()
			t.Errorf("Listen(%q, %+v) accepted", tc.target, tc.cfg)
		}
	}
}

// A target that refuses ends the client's connection instead of leaving
// it open.
func TestUnreachableTargetClosesTheClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	r := relayTo(t, dead, Config{})
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("read %v from a relay whose target refuses", err)
	}
}

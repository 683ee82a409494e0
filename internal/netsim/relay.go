// Package netsim injects network latency in user space: a TCP relay on
// loopback that delays every chunk it forwards, for machines whose kernel
// has no netem qdisc (docs/PERFORMANCE.md). It delays, it does not drop or
// reorder: TCP underneath still delivers every byte in order.
package netsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Limits of a relay: a relay is a measuring tool, not a proxy to expose.
const (
	MaxDelay    = 10 * time.Second
	MaxConns    = 1024
	chunkSize   = 32 << 10
	queueChunks = 64 // per direction: at most 2 MiB in flight, then the reader waits
)

// Config says how a relay delays.
type Config struct {
	// RTT is the round trip the relay adds: each direction delays every
	// chunk by RTT/2, so a request and its answer through the relay cost one
	// RTT more than without it.
	RTT time.Duration
	// BytesPerSecond caps each direction's throughput; 0: no cap.
	BytesPerSecond int64
	// Listen is the address to listen on; "": 127.0.0.1:0.
	Listen string
	// Logger; nil: slog.Default.
	Logger *slog.Logger
}

// Relay accepts TCP connections and forwards each to Target, delayed.
type Relay struct {
	target string
	cfg    Config
	ln     net.Listener
	log    *slog.Logger
	dialer net.Dialer
	// ctx ends at Close, so that a dial in progress does not hold it up.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen starts a relay to target.
func Listen(target string, cfg Config) (*Relay, error) {
	if cfg.RTT < 0 || cfg.RTT > MaxDelay {
		return nil, fmt.Errorf("netsim: a round trip of %s (0 to %s)", cfg.RTT, MaxDelay)
	}
	if cfg.BytesPerSecond < 0 {
		return nil, fmt.Errorf("netsim: a rate of %d bytes/s", cfg.BytesPerSecond)
	}
	if target == "" {
		return nil, errors.New("netsim: no target")
	}
	addr := cfg.Listen
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netsim: %w", err)
	}
	r := &Relay{target: target, cfg: cfg, ln: ln, log: cfg.Logger, conns: map[net.Conn]struct{}{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if r.log == nil {
		r.log = slog.Default()
	}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is where the relay listens.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

// Target is where it forwards.
func (r *Relay) Target() string { return r.target }

// Close stops accepting, closes every relayed connection and waits for
// the relay's goroutines.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	conns := make([]net.Conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	r.cancel()
	err := r.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	r.wg.Wait()
	return err
}

// track registers c; false when the relay is closed or full.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || len(r.conns) >= MaxConns {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	for _, c := range cs {
		delete(r.conns, c)
	}
	r.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Warn("netsim: accept", "err", err)
			}
			return
		}
		if !r.track(c) {
			_ = c.Close()
			continue
		}
		r.wg.Add(1)
		go r.relay(c)
	}
}

// relay forwards one connection: two directions, each a reader and a
// delaying writer.
func (r *Relay) relay(in net.Conn) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	out, err := r.dialer.DialContext(ctx, "tcp", r.target)
	cancel()
	if err != nil {
		r.log.Warn("netsim: dial target", "target", r.target, "err", err)
		r.untrack(in)
		return
	}
	if !r.track(out) {
		_ = out.Close()
		r.untrack(in)
		return
	}
	var dirs sync.WaitGroup
	dirs.Add(2)
	go func() { defer dirs.Done(); r.pipe(out, in) }()
	go func() { defer dirs.Done(); r.pipe(in, out) }()
	dirs.Wait()
	r.untrack(in, out)
}

type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each chunk written no earlier than RTT/2 after
// it was read. The queue is FIFO and every chunk gets the same delay, so
// the order is kept; a full queue stops the reader (TCP backpressure).
func (r *Relay) pipe(dst, src net.Conn) {
	half := r.cfg.RTT / 2
	q := make(chan chunk, queueChunks)
	go func() {
		defer close(q)
		for {
			b := make([]byte, chunkSize)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b[:n], time.Now().Add(half)}
			}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	failed := false
	for c := range q {
		if failed {
			continue // drain so the reader can end
		}
		wait := time.Until(c.due)
		if bps := r.cfg.BytesPerSecond; bps > 0 {
			// The chunk's time on a link of that rate, as a serialization
			// delay before it is delivered: N bytes never take less than
			// N/rate.
			wait = max(wait, 0) + time.Duration(int64(len(c.b))*int64(time.Second)/bps)
		}
		if wait > 0 {
			timer.Reset(wait)
			<-timer.C
		}
		if _, err := dst.Write(c.b); err != nil {
			failed = true
			// The other side is gone: stop the reader too.
			_ = src.Close()
			continue
		}
	}
	// src reached EOF (or failed): pass the half-close on, so that a
	// peer waiting for the end of the stream sees it after the delay.
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && !failed {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
}

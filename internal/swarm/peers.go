package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/httpx"
)

// ParseLayers parses a --layers value: comma-separated inclusive ranges
// "A-B" (or single layers "A"), e.g. "0-1" or "0-0,2-3". It returns
// half-open [first, last) pairs.
func ParseLayers(s string) ([][2]int, error) {
	var out [][2]int
	for part := range strings.SplitSeq(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			b = a
		}
		first, err1 := strconv.Atoi(a)
		last, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || first < 0 || last < first || last >= 1<<10 {
			return nil, fmt.Errorf("layers %q: want A-B with 0 <= A <= B, e.g. 0-11", part)
		}
		out = append(out, [2]int{first, last + 1})
	}
	if len(out) == 0 {
		return nil, errors.New("layers: empty")
	}
	return out, nil
}

// SpansOf makes the ServedSpans of model m for ranges (ParseLayers),
// checking each against the model.
func SpansOf(name string, m *engine.Model, ranges [][2]int) ([]ServedSpan, error) {
	var out []ServedSpan
	for _, r := range ranges {
		if r[1] > m.Config().Layers {
			return nil, fmt.Errorf("%w: layers %d-%d, %s has %d", engine.ErrLayerRange, r[0], r[1]-1, name, m.Config().Layers)
		}
		out = append(out, ServedSpan{Name: name, Model: m, First: r[0], Last: r[1]})
	}
	return out, nil
}

// Serve serves s on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, s *Server) error {
	return ServeHandler(ctx, ln, s.Handler())
}

// ServeHandler serves a span server's handler (wrapped, in tests) on ln
// until ctx ends.
func ServeHandler(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := httpx.NewServer(h, httpx.Limits{MaxBody: maxForwardBody}, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// Probe is one span server's answer to GET /v1/spans and its round trip.
type Probe struct {
	URL   string        `json:"url"`
	RTT   time.Duration `json:"rtt_ns"`
	Info  Info          `json:"info"`
	Error string        `json:"error,omitempty"`
}

// ProbeAll asks each URL for its spans, timing the round trip (the
// routing graph's weights: Petals' ping aggregator does the same). Up to
// probeParallel probes run at once, each bounded by 5 s, so that dead
// servers on chain cost one timeout rather than one each.
func ProbeAll(ctx context.Context, c *http.Client, urls []string) []Probe {
	out := make([]Probe, len(urls))
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u = strings.TrimSuffix(strings.TrimSpace(u), "/")
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			start := time.Now()
			var in Info
			err := httpx.Do(pctx, c, http.MethodGet, u+PathInfo, nil, nil, &in)
			out[i] = Probe{URL: u, RTT: time.Since(start), Info: in}
			if err != nil {
				out[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	return out
}

// probeParallel bounds the probes in flight at once.
const probeParallel = 16

// URLPeers is a Directory of span servers given by URL, probed on every
// call (a route repair sees which ones answer now).
type URLPeers struct {
	HTTP *http.Client
	URLs []string
	Log  *slog.Logger
}

// Peers probes the URLs and returns their spans of model.
func (u URLPeers) Peers(ctx context.Context, model string) ([]Peer, error) {
	var out []Peer
	for _, p := range ProbeAll(ctx, u.HTTP, u.URLs) {
		if p.Error != "" {
			if u.Log != nil {
				u.Log.Warn("span server unreachable", "url", p.URL, "err", p.Error)
			}
			continue
		}
		for _, sp := range p.Info.Spans {
			if sp.Model == model {
				out = append(out, Peer{ID: p.URL, URL: p.URL, Model: sp.Model, First: sp.First, Last: sp.Last, RTT: p.RTT, LayerRPS: p.Info.LayerTokensPerSecond})
			}
		}
	}
	return out, nil
}

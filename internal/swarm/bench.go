package swarm

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aitbc/aitbc/internal/engine"
)

// BenchResult is one configuration of BenchLoopback.
type BenchResult struct {
	Spans        int     `json:"spans"`
	Tokens       int     `json:"tokens"`
	TokensPerSec float64 `json:"tokens_per_second"`
	// PerHopMs is the time a token spends per hop beyond the computation:
	// (time per token through the route - time per token in one process)
	// / hops.
	PerHopMs float64 `json:"per_hop_ms"`
}

// BenchLoopback measures greedy decoding of m through 1..n span servers
// on loopback (spans: the span counts, each dividing the layers evenly as
// far as they go), against the same decoding in one process.
func BenchLoopback(ctx context.Context, name string, m *engine.Model, spans []int, tokens int) (base float64, out []BenchResult, err error) {
	return BenchRoutes(ctx, name, m, spans, tokens, nil)
}

// ListenFunc opens span server i's listener (nil: loopback).
type ListenFunc func(i int) (net.Listener, error)

// BenchRoutes is BenchLoopback with the servers listening where listen
// says: in network namespaces RTT away (NetemLab.Listen), say.
func BenchRoutes(ctx context.Context, name string, m *engine.Model, spans []int, tokens int, listen ListenFunc) (base float64, out []BenchResult, err error) {
	layers := m.Config().Layers
	prompt := []int{m.Tokenizer().BOS()}
	// The in-process baseline: the engine's own decoding loop.
	s, err := m.NewSession(engine.SessionOptions{Threads: 1})
	if err != nil {
		return 0, nil, err
	}
	defer s.Close()
	start := time.Now()
	tok := prompt[0]
	for pos := range tokens {
		logits, err := s.Forward(tok, pos)
		if err != nil {
			return 0, nil, err
		}
		tok = argmax(logits)
	}
	perTokenBase := time.Since(start).Seconds() / float64(tokens)
	base = 1 / perTokenBase
	for _, n := range spans {
		if n < 1 || n > layers {
			return 0, nil, fmt.Errorf("swarm: %d spans of a %d-layer model", n, layers)
		}
		peers, stop, err := startLoopback(ctx, name, m, n, listen)
		if err != nil {
			return 0, nil, err
		}
		p := &Pipeline{HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, Dir: peers}
		t0 := time.Now()
		res, err := p.Generate(ctx, GenerateRequest{Model: name, Layers: layers, Prompt: prompt, MaxTokens: tokens}, nil)
		el := time.Since(t0).Seconds()
		stop()
		if err != nil {
			return 0, nil, err
		}
		per := el / float64(len(res.Tokens))
		out = append(out, BenchResult{Spans: n, Tokens: len(res.Tokens), TokensPerSec: 1 / per, PerHopMs: (per - perTokenBase) / float64(n) * 1000})
	}
	return base, out, nil
}

// startLoopback starts n span servers for even shares of m's layers.
func startLoopback(ctx context.Context, name string, m *engine.Model, n int, listen ListenFunc) (StaticPeers, func(), error) {
	if listen == nil {
		listen = func(int) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	}
	layers := m.Config().Layers
	ctx, cancel := context.WithCancel(ctx)
	var peers StaticPeers
	done := make(chan struct{}, n)
	for i := range n {
		first, last := i*layers/n, (i+1)*layers/n
		srv, err := NewServer([]ServedSpan{{Name: name, Model: m, First: first, Last: last}}, ServerConfig{Threads: 1}, nil)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		ln, err := listen(i)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		go func() { _ = Serve(ctx, ln, srv); done <- struct{}{} }()
		u := "http://" + ln.Addr().String()
		peers = append(peers, Peer{ID: u, URL: u, Model: name, First: first, Last: last})
	}
	return peers, func() {
		cancel()
		for range n {
			<-done
		}
	}, nil
}

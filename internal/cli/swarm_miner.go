package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/swarm"
)

// minerSpans is the span server a miner runs beside its jobs (--layers).
// The zero value (no --layers) does nothing.
type minerSpans struct {
	srv    *swarm.Server
	ln     net.Listener
	url    string // the public base URL registered on chain
	spans  []swarm.ServedSpan
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

// startSpans loads the spans and binds their listener (so that a taken
// port fails before the wallet is unlocked); run starts serving.
// publicURL is the base URL registered on chain (default: http:// and the
// bound address, right for loopback and LAN devnets).
// observe, when set, is told of every forward request served (the
// oracle reporter's collector: minerCollector).
func startSpans(g *Globals, model, layers, listen, publicURL string, observe func(rows int, took time.Duration)) (*minerSpans, error) {
	if layers == "" {
		return &minerSpans{}, nil
	}
	srv, err := newSpanServer(g, model, layers, swarm.ServerConfig{Observe: observe})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("--span-listen: %w", err)
	}
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	if err := agents.CheckEndpoint(publicURL); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("--span-url: %w", err)
	}
	ms := &minerSpans{srv: srv, ln: ln, url: publicURL}
	for _, sp := range srv.Info().Spans {
		ms.spans = append(ms.spans, swarm.ServedSpan{Name: sp.Model, First: sp.First, Last: sp.Last})
	}
	return ms, nil
}

// run serves the spans and announces them, with the URL, on chain until
// close.
func (ms *minerSpans) run(ctx context.Context, sender swarm.TxSender, heartbeat time.Duration, log *slog.Logger) {
	if ms.srv == nil {
		return
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, ms.cancel = context.WithCancel(ctx)
	ms.wg.Add(2)
	go func() {
		defer ms.wg.Done()
		ms.record(swarm.Serve(ctx, ms.ln, ms.srv))
	}()
	go func() {
		defer ms.wg.Done()
		spans := ms.srv.Spans()
		hash, err := swarm.ModelHash(spans[0].Model)
		if err == nil {
			err = swarm.Announce(ctx, sender, spans, ms.url, hash, heartbeat, log)
		}
		if err != nil {
			// Serving goes on: routing by URL works without the record.
			log.Error("span announcement", "err", err)
		}
	}()
}

func (ms *minerSpans) record(err error) {
	if err != nil {
		ms.mu.Lock()
		ms.errs = append(ms.errs, err)
		ms.mu.Unlock()
	}
}

func (ms *minerSpans) banner() string {
	if ms.srv == nil {
		return ""
	}
	s := ""
	for _, sp := range ms.spans {
		s += fmt.Sprintf("serving layers %d-%d of %s on http://%s\n", sp.First, sp.Last-1, sp.Name, ms.ln.Addr())
	}
	return s
}

func (ms *minerSpans) close() error {
	if ms.srv == nil {
		return nil
	}
	if ms.cancel == nil { // never run: only the listener to free
		return ms.ln.Close()
	}
	ms.cancel()
	ms.wg.Wait()
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if len(ms.errs) > 0 {
		return ms.errs[0]
	}
	return nil
}

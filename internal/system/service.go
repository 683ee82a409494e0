package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/httpx"
)

// shutdownGrace is how long an HTTP server waits for in-flight requests,
// and then for handlers that outlive Shutdown (WebSocket sessions), when
// its service stops.
const shutdownGrace = 5 * time.Second

// service is one started part of a System: the goroutines it runs and the
// things to close once they have returned.
type service struct {
	sys    *System
	name   string
	ctx    context.Context // ends when the service stops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closers  []func() error // run in reverse order after wg
	stopErrs []error        // goroutine errors after ctx ended

	once    sync.Once
	stopErr error
}

func newService(s *System, name string) *service {
	ctx, cancel := context.WithCancel(context.Background())
	return &service{sys: s, name: name, ctx: ctx, cancel: cancel}
}

// onClose registers f to run when the service stops, after its goroutines
// have returned; closers run newest first.
func (sv *service) onClose(f func() error) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.closers = append(sv.closers, f)
}

// goRun runs f(ctx) as one of the service's goroutines. An error returned
// while the service runs is reported to the System; one returned after
// the service began stopping is returned by stop (a cancelled context is
// not an error then).
func (sv *service) goRun(f func(ctx context.Context) error) {
	sv.wg.Add(1)
	go func() {
		defer sv.wg.Done()
		err := f(sv.ctx)
		if err == nil {
			return
		}
		if sv.ctx.Err() == nil {
			sv.sys.report(err)
			return
		}
		if !errors.Is(err, context.Canceled) {
			sv.mu.Lock()
			sv.stopErrs = append(sv.stopErrs, err)
			sv.mu.Unlock()
		}
	}()
}

// stop ends the service's context, joins its goroutines, then runs its
// closers newest first. Only the first call does anything.
func (sv *service) stop() error {
	sv.once.Do(func() {
		sv.cancel()
		sv.wg.Wait()
		sv.mu.Lock()
		closers, errs := sv.closers, sv.stopErrs
		sv.closers = nil
		sv.mu.Unlock()
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
		sv.stopErr = errors.Join(errs...)
	})
	return sv.stopErr
}

// listen binds addr for one of the service's HTTP servers; the listener is
// closed when the service stops, served or not.
func (sv *service) listen(addr, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", what, addr, err)
	}
	sv.onClose(func() error {
		_ = ln.Close() // already closed by Shutdown when it was served
		return nil
	})
	return ln, nil
}

// serveHTTP serves h on ln as one of the service's goroutines, under
// limits (httpx.Limits: timeouts, connection caps, body limit, write rate;
// the zero value is the defaults, fitted to the process's descriptors).
// When the service stops, the server shuts down (in-flight requests get
// shutdownGrace), then the contexts of requests it no longer tracks
// (hijacked WebSocket connections) end, and the goroutine returns only
// once their handlers have returned too, so that nothing handles a request
// after the service's stores close.
func (sv *service) serveHTTP(ln net.Listener, h http.Handler, what string, log *slog.Logger, limits httpx.Limits) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limits = listenerLimits(limits)
	var track inflight
	reqCtx, endRequests := context.WithCancel(context.Background())
	srv := httpx.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !track.enter() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		defer track.leave()
		h.ServeHTTP(w, r)
	}), limits, slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	srv.BaseContext = func(net.Listener) context.Context { return reqCtx }
	// Connections that have not sent a byte of a request: Shutdown counts
	// them as busy for up to 5 s (a client's transport may dial one it
	// then never uses), so the shutdown below closes them itself.
	var fresh freshConns
	srv.ConnState = fresh.track
	ln = httpx.LimitListener(ln, limits, refusalLogger(log, what))
	log.Info("listening", "addr", ln.Addr().String(), "max_conns", limits.MaxConns, "max_conns_per_client", limits.MaxConnsPerClient)
	sv.goRun(func(ctx context.Context) error {
		defer endRequests()
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		select {
		case err := <-done:
			return fmt.Errorf("%s: %w", what, err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- srv.Shutdown(sctx) }()
		err := fresh.closeUntil(shut)
		<-done
		endRequests()
		select {
		case <-track.close():
		case <-time.After(shutdownGrace):
			log.Warn("handlers still running after shutdown", "service", what)
		}
		if err != nil {
			return fmt.Errorf("%s: shutdown: %w", what, err)
		}
		return nil
	})
}

// freshConns are a server's connections that have read no byte of a
// request yet (http.StateNew).
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (f *freshConns) track(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st == http.StateNew {
		if f.conns == nil {
			f.conns = map[net.Conn]struct{}{}
		}
		f.conns[c] = struct{}{}
		return
	}
	delete(f.conns, c)
}

// closeUntil closes the fresh connections every 20 ms until the server's
// Shutdown (whose result done delivers) returns, and returns its result.
// Closing one loses nothing: no byte of a request was read from it.
func (f *freshConns) closeUntil(done <-chan error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		conns := make([]net.Conn, 0, len(f.conns))
		for c := range f.conns {
			conns = append(conns, c)
		}
		f.mu.Unlock()
		for _, c := range conns { // closed outside the lock: Close is I/O
			_ = c.Close()
		}
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
	}
}

// inflight counts running handlers; after close, new requests are refused
// and the returned channel closes when the last one returns.
type inflight struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{}
}

func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

func (f *inflight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.closed && f.n == 0 {
		close(f.zero)
	}
}

func (f *inflight) close() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		f.zero = make(chan struct{})
		if f.n == 0 {
			close(f.zero)
		}
	}
	return f.zero
}

// refusalLogger logs connections refused over a cap: the first, then at
// most one line a second with the count since, so that a flood does not
// become a flood of log lines.
func refusalLogger(log *slog.Logger, what string) func(reason string) {
	var n atomic.Uint64
	var last atomic.Int64
	return func(reason string) {
		c := n.Add(1)
		now := time.Now().UnixNano()
		prev := last.Load()
		if now-prev < int64(time.Second) || !last.CompareAndSwap(prev, now) {
			return
		}
		log.Warn("connections refused", "server", what, "reason", reason, "refused_total", c)
	}
}

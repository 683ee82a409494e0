package system

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/httpx"
)

// events records what happened, in order.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

// TestServicesStopNewestFirstAndJoinBeforeClosing starts two services with
// a goroutine and two stores each: Close stops the newer one whole (its
// goroutine returned, then its stores closed newest first) before the
// older one.
func TestServicesStopNewestFirstAndJoinBeforeClosing(t *testing.T) {
	s := New(nil)
	var ev events
	for _, name := range []string{"a", "b"} {
		sv, err := s.begin(name)
		if err != nil {
			t.Fatal(err)
		}
		sv.onClose(func() error { ev.add(name + " store 1 closed"); return nil })
		sv.onClose(func() error { ev.add(name + " store 2 closed"); return nil })
		sv.goRun(func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // a loop that takes a moment to finish
			ev.add(name + " loop returned")
			return ctx.Err() // a cancelled context is not a failure
		})
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []string{
		"b loop returned", "b store 2 closed", "b store 1 closed",
		"a loop returned", "a store 2 closed", "a store 1 closed",
	}
	if got := ev.get(); !slices.Equal(got, want) {
		t.Fatalf("stop order\n got %q\nwant %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.begin("late"); err == nil {
		t.Fatal("a closed system accepted a new service")
	}
}

// TestRunningFailureIsReportedAndStopFailureReturned: a goroutine that
// fails while its service runs reaches Errors; one that fails while it
// stops, and a store that fails to close, come back from Close.
func TestRunningFailureIsReportedAndStopFailureReturned(t *testing.T) {
	s := New(nil)
	sv, _ := s.begin("x")
	boom := errors.New("boom")
	sv.goRun(func(context.Context) error { return boom })
	select {
	case err := <-s.Errors():
		if !errors.Is(err, boom) {
			t.Fatalf("reported %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("failure not reported")
	}
	late, closeErr := errors.New("late"), errors.New("close")
	sv.goRun(func(ctx context.Context) error { <-ctx.Done(); return late })
	sv.onClose(func() error { return closeErr })
	err := s.Close()
	if !errors.Is(err, late) || !errors.Is(err, closeErr) {
		t.Fatalf("Close returned %v", err)
	}
}

// TestAbortedStartIsForgotten: a service whose start failed is stopped at
// once and not stopped again by Close.
func TestAbortedStartIsForgotten(t *testing.T) {
	s := New(nil)
	sv, _ := s.begin("x")
	closed := 0
	sv.onClose(func() error { closed++; return nil })
	want := errors.New("start failed")
	if err := s.abort(sv, want); err != want {
		t.Fatalf("abort returned %v", err)
	}
	if closed != 1 {
		t.Fatalf("closed %d times by abort", closed)
	}
	if err := s.Close(); err != nil || closed != 1 {
		t.Fatalf("Close: %v, closed %d times", err, closed)
	}
}

// TestHTTPServiceWaitsForLongHandlersBeforeItsStoresClose: a handler that
// runs until its request's context ends (a WebSocket session, which
// Shutdown does not track) has returned before the service's store
// closes, and no port stays bound.
func TestHTTPServiceWaitsForLongHandlersBeforeItsStoresClose(t *testing.T) {
	s := New(nil)
	sv, _ := s.begin("api")
	var ev events
	sv.onClose(func() error { ev.add("store closed"); return nil })
	ln, err := sv.listen("127.0.0.1:0", "api")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	sv.serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/quick" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			t.Error("no hijacker")
			return
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		close(entered)
		<-r.Context().Done()
		time.Sleep(20 * time.Millisecond)
		ev.add("session handler returned")
	}), "api", nil, httpx.Limits{})
	url := "http://" + ln.Addr().String()
	resp, err := http.Get(url + "/quick")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("GET /session HTTP/1.1\r\nHost: x\r\n\r\n"))
		_, _ = c.Read(make([]byte, 1))
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("session not started")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := ev.get(), []string{"session handler returned", "store closed"}; !slices.Equal(got, want) {
		t.Fatalf("order %q, want %q", got, want)
	}
	if l, err := net.Listen("tcp", ln.Addr().String()); err != nil {
		t.Fatalf("port still bound: %v", err)
	} else {
		l.Close()
	}
}

// TestListenNamesTheServiceAndTheAddress: a busy port is reported as the
// service, the address and the operating system's words.
func TestListenNamesTheServiceAndTheAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s := New(nil)
	defer s.Close()
	sv, _ := s.begin("api")
	_, err = sv.listen(busy.Addr().String(), "coordinator")
	if err == nil || !strings.HasPrefix(err.Error(), "coordinator on "+busy.Addr().String()+": ") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v", err)
	}
}

// A client's transport may dial a connection it then never sends a request
// on (it raced another connection that came free): to the server that
// connection is new, not idle, and http.Server.Shutdown waits for it until
// its grace runs out. With no handler running, stopping is still clean.
func TestHTTPServiceStopsCleanlyWithAnUnusedConnection(t *testing.T) {
	s := New(nil)
	sv, _ := s.begin("api")
	ln, err := sv.listen("127.0.0.1:0", "api")
	if err != nil {
		t.Fatal(err)
	}
	sv.serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}), "api", nil, httpx.Limits{})
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c, err := net.Dial("tcp", ln.Addr().String()) // connected, no request
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("Close with an unused connection open: %v", err)
	}
}

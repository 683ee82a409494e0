package httpx_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/httpx"
)

// serve starts h under l on a loopback listener, as every AITBC service
// does (httpx.NewServer on httpx.LimitListener), and returns its address.
func serve(t *testing.T, h http.Handler, l httpx.Limits) (string, httpx.ConnCounter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lln := httpx.LimitListener(ln, l, nil)
	srv := httpx.NewServer(h, l, nil)
	go func() { _ = srv.Serve(lln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	return ln.Addr().String(), lln.(httpx.ConnCounter)
}

// echo is a service: GET /health answers ok, POST /echo decodes a JSON
// body as every handler does and answers 413 for a body too large.
func echo() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := httpx.DecodeJSON(r, &v); err != nil {
			httpx.WriteDecodeError(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
	return mux
}

// healthy asserts that a fresh client gets the health check within a
// second.
func healthy(t *testing.T, addr string) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("health check failed under attack: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health check: %d", resp.StatusCode)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin asserts the server closes c within d (reads return EOF or
// a reset); bytes it sends first (an error answer) are returned.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
	return string(b)
}

// Finding 1: slow headers (slowloris) are cut at ReadHeaderTimeout.
func TestSlowHeadersAreCut(t *testing.T) {
	addr, _ := serve(t, echo(), httpx.Limits{ReadHeaderTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	closedWithin(t, c, 2*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("slow header held for %v", d)
	}
}

// Finding 1: a body that trickles in is cut at BodyTimeout, and the
// handler sees an error, not a request that never ends.
func TestSlowBodyIsCut(t *testing.T) {
	addr, _ := serve(t, echo(), httpx.Limits{BodyTimeout: 300 * time.Millisecond})
	c := dial(t, addr)
	if _, err := io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":"); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, c, 2*time.Second)
}

// Finding 1: an idle keep-alive connection is closed at IdleTimeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	addr, open := serve(t, echo(), httpx.Limits{IdleTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	closedWithin(t, c, 2*time.Second)
	waitFor(t, func() bool { return open.Open() == 0 }, "open connections back to 0")
}

// Finding 1: one client cannot hold more than MaxConnsPerClient
// connections, nor all clients more than MaxConns; connections over a cap
// get 503 overloaded and are closed at once (holding no descriptor),
// while the service keeps answering health checks within a second.
func TestConnectionFloodIsCapped(t *testing.T) {
	const perClient, total = 20, 30
	addr, open := serve(t, echo(), httpx.Limits{MaxConns: total, MaxConnsPerClient: perClient, ReadHeaderTimeout: 10 * time.Second})
	// 200 connections that each send half a request line and stall.
	var stalled int
	for i := 0; i < 200; i++ {
		c := dial(t, addr)
		_, _ = io.WriteString(c, "GET /health HT")
		stalled++
	}
	waitFor(t, func() bool { return open.Open() == perClient }, fmt.Sprintf("%d connections held", perClient))
	if got := open.Open(); got > perClient {
		t.Fatalf("one client holds %d connections, cap %d", got, perClient)
	}
	waitFor(t, func() bool { return open.Refused() == uint64(stalled-perClient) }, fmt.Sprintf("%d connections refused", stalled-perClient))
	// Over the cap: 503 overloaded, closed at once.
	c := dial(t, addr)
	answer := closedWithin(t, c, time.Second)
	if !strings.Contains(answer, "503") || !strings.Contains(answer, httpx.CodeOverloaded) {
		t.Fatalf("refused connection got %q", answer)
	}
	// The health check comes from the same loopback address, which is at
	// its cap: the listener refuses it. A per-client cap protects others,
	// so the health check here must come from another address.
	other := otherLoopback(t)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: other}, Timeout: time.Second}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := client.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("health check from %v while %v floods: %v", other, "127.0.0.1", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health check: %d", resp.StatusCode)
	}
}

// otherLoopback is a second loopback address (127.0.0.2): Linux routes
// all of 127/8 to lo. Tests that need it skip where it is not there.
func otherLoopback(t *testing.T) net.IP {
	ip := net.IPv4(127, 0, 0, 2)
	c, err := (&net.Dialer{LocalAddr: &net.UDPAddr{IP: ip}}).Dial("udp", "127.0.0.1:9")
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	c.Close()
	return ip
}

// Finding 7: an oversized body is answered 413 body_too_large, before a
// byte of it is read when it says its length, and when it is chunked too.
func TestOversizedBodyIs413(t *testing.T) {
	addr, _ := serve(t, echo(), httpx.Limits{MaxBody: 1024})
	big := `{"a":"` + strings.Repeat("x", 4096) + `"}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // no length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/echo", body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb httpx.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || eb.Error.Code != httpx.CodeBodyTooLarge {
			t.Fatalf("chunked=%v: %d %q, want 413 %s", chunked, resp.StatusCode, eb.Error.Code, httpx.CodeBodyTooLarge)
		}
	}
	// A body within the limit still works.
	resp, err := http.Post("http://"+addr+"/echo", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("small body: %d", resp.StatusCode)
	}
}

// Finding 5: writes from one client address are rate limited with 429
// and Retry-After; reads are not.
func TestWriteRateLimit(t *testing.T) {
	// One write per 1,000 s after the burst: no refill during the test.
	addr, _ := serve(t, echo(), httpx.Limits{WriteRate: 0.001, WriteBurst: 5})
	var ok, limited int
	var retry string
	for i := 0; i < 10; i++ {
		resp, err := http.Post("http://"+addr+"/echo", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			retry = resp.Header.Get("Retry-After")
		}
	}
	if ok != 5 || limited != 5 || retry != "1000" {
		t.Fatalf("%d allowed, %d limited (Retry-After %q); want 5, 5 and 1000", ok, limited, retry)
	}
	healthy(t, addr) // GETs are not writes
}

// /metrics is served to loopback clients, or with the metrics key.
func TestMetricsNeedLoopbackOrKey(t *testing.T) {
	h := httpx.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }), httpx.Limits{MetricsKey: "s3cret"})
	for _, tc := range []struct {
		remote, auth string
		want         int
	}{
		{"127.0.0.1:5000", "", http.StatusOK},
		{"10.0.0.1:5000", "", http.StatusForbidden},
		{"10.0.0.1:5000", "Bearer wrong", http.StatusForbidden},
		{"10.0.0.1:5000", "Bearer s3cret", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
		req.RemoteAddr = tc.remote
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := &recorder{h: http.Header{}}
		h.ServeHTTP(rec, req)
		if rec.status != tc.want {
			t.Errorf("%s %q: %d, want %d", tc.remote, tc.auth, rec.status, tc.want)
		}
	}
}

type recorder struct {
	h      http.Header
	status int
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(p), nil
}
func (r *recorder) WriteHeader(s int) { r.status = s }

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Behind a reverse proxy every request comes from the proxy's address.
// From a trusted proxy, the per-client write rate counts by the client its
// X-Real-IP names, so one client's burst does not limit another's; from
// any other peer the header is ignored (a client cannot pick its address).
func TestTrustedProxyNamesTheClient(t *testing.T) {
	post := func(addr, realIP string) int {
		req, err := http.NewRequest("POST", "http://"+addr+"/echo", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if realIP != "" {
			req.Header.Set("X-Real-IP", realIP)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	limits := httpx.Limits{WriteRate: 0.001, WriteBurst: 2}

	proxied := limits
	proxied.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	addr, _ := serve(t, echo(), proxied)
	for i, want := range []int{200, 200, 429} {
		if got := post(addr, "203.0.113.7"); got != want {
			t.Fatalf("client A's write %d through the proxy: %d, want %d", i+1, got, want)
		}
	}
	if got := post(addr, "203.0.113.8"); got != 200 {
		t.Fatalf("client B after A's burst: %d, want 200 (counted apart)", got)
	}

	// Not trusted: the header is the client's own claim and is ignored.
	addr, _ = serve(t, echo(), limits)
	for i, ip := range []string{"203.0.113.7", "203.0.113.8"} {
		if got := post(addr, ip); got != 200 {
			t.Fatalf("write %d: %d", i+1, got)
		}
	}
	if got := post(addr, "203.0.113.9"); got != 429 {
		t.Fatalf("a third write claiming a new X-Real-IP from an untrusted peer: %d, want 429", got)
	}
}

// A trusted proxy multiplexes many clients: its connections are capped by
// MaxConns only, not per client.
func TestTrustedProxyIsNotCappedPerClient(t *testing.T) {
	const perClient = 5
	addr, open := serve(t, echo(), httpx.Limits{
		MaxConnsPerClient: perClient, ReadHeaderTimeout: 10 * time.Second,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	for i := 0; i < 3*perClient; i++ {
		c := dial(t, addr)
		_, _ = io.WriteString(c, "GET /health HT")
	}
	waitFor(t, func() bool { return open.Open() == 3*perClient }, "every proxy connection held")
	if open.Refused() != 0 {
		t.Fatalf("%d proxy connections refused", open.Refused())
	}
}

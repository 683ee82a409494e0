package httpx

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/ratelimit"
)

// Errors a guarded server answers with before a handler runs, and that
// DecodeJSON returns; every service's error table maps them to the same
// status and code.
var (
	ErrBodyTooLarge = errors.New("request body too large")    // 413 body_too_large
	ErrRateLimited  = errors.New("too many requests")         // 429 rate_limited
	ErrForbidden    = errors.New("forbidden for this client") // 403 forbidden
)

// Codes of the errors above.
const (
	CodeBodyTooLarge = "body_too_large"
	CodeRateLimited  = "rate_limited"
	CodeForbidden    = "forbidden"
	CodeOverloaded   = "overloaded"
)

// Defaults of Limits (docs/SECURITY.md lists them with their knobs).
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultBodyTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerClient = 256
)

// Limits are the protections every AITBC HTTP server applies: timeouts
// for each stage of a connection, caps on connections per listener and
// per client address, a body limit answered with 413, a write rate per
// client address answered with 429, and who may read /metrics. The zero
// value means the defaults; a negative number turns a limit off.
type Limits struct {
	// ReadHeaderTimeout bounds the request line and headers (slowloris).
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body. It is lifted once the
	// body has been read, so a long handler (a stream) keeps its context.
	BodyTimeout time.Duration
	// WriteTimeout bounds each write of a response: a client that stops
	// reading is dropped, while a stream that keeps flushing may last.
	WriteTimeout time.Duration
	// IdleTimeout bounds a keep-alive connection between requests.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
	// MaxBody bounds a request body (1 MiB); larger ones are answered 413.
	MaxBody int64
	// MaxConns caps open connections on the listener (0: DefaultMaxConns;
	// the composition root lowers it to fit the process's descriptors).
	MaxConns int
	// MaxConnsPerClient caps open connections from one client address.
	MaxConnsPerClient int
	// WriteRate limits POST, PUT, PATCH and DELETE requests per second
	// from one client address (429 with Retry-After); 0: no limit.
	WriteRate  float64
	WriteBurst int // 0: 2 × WriteRate
	// MetricsKey, when set, lets a client that sends it as a Bearer token
	// read /metrics from any address; without it only loopback clients may.
	MetricsKey string
	// TrustedProxies are the reverse proxies (nginx in deploy/) whose
	// X-Real-IP header names the client. Behind a proxy every request
	// comes from the proxy's address, so without this the per-client
	// limits would count all clients as one: one abuser would use up
	// everyone's write rate and registrations. A request from a trusted
	// proxy is counted by the address in its X-Real-IP (the proxy must
	// overwrite the header, as deploy/nginx/aitbc.conf does), and a
	// trusted proxy's connections are not capped per client (only by
	// MaxConns): it multiplexes many clients. X-Real-IP from any other
	// peer is ignored. Empty: no proxy is trusted.
	TrustedProxies []netip.Prefix
}

// IsZero reports whether l is the zero value (every limit its default, no
// trusted proxy): the services then apply their own defaults.
func (l Limits) IsZero() bool {
	return reflect.ValueOf(l).IsZero()
}

// WithDefaults fills the zero fields with the defaults.
func (l Limits) WithDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.BodyTimeout, DefaultBodyTimeout)
	def(&l.WriteTimeout, DefaultWriteTimeout)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBody == 0 {
		l.MaxBody = MaxBody
	}
	if l.MaxConns == 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerClient == 0 {
		l.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if l.WriteRate > 0 && l.WriteBurst == 0 {
		l.WriteBurst = max(1, int(2*l.WriteRate))
	}
	return l
}

func positive(d time.Duration) time.Duration { return max(d, 0) }

// NewServer returns an http.Server that serves h under l: its timeouts,
// header limit, and Guard around h. Serve it on LimitListener(ln, l).
func NewServer(h http.Handler, l Limits, errorLog *log.Logger) *http.Server {
	l = l.WithDefaults()
	srv := &http.Server{
		Handler:           Guard(h, l),
		ReadHeaderTimeout: positive(l.ReadHeaderTimeout),
		// No ReadTimeout or WriteTimeout here: net/http applies them to
		// the whole exchange, and a read deadline that passes while a
		// handler streams cancels its request's context. Guard sets the
		// body and write deadlines per stage instead.
		IdleTimeout: positive(l.IdleTimeout),
		ErrorLog:    errorLog,
	}
	if l.MaxHeaderBytes > 0 {
		srv.MaxHeaderBytes = l.MaxHeaderBytes
	}
	return srv
}

// ClientAddr is the client address a request came from (the host part of
// RemoteAddr): what per-client limits count by. Behind a trusted reverse
// proxy (Limits.TrustedProxies) Guard has already put the client's address
// from X-Real-IP there; behind an untrusted one it is the proxy's.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// proxiedClient is the client address a trusted proxy names in X-Real-IP.
// A header from a peer that is not a trusted proxy, or one that is not a
// single IP address, is ignored.
func proxiedClient(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	if len(trusted) == 0 {
		return netip.Addr{}, false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !isTrusted(peer.Addr(), trusted) {
		return netip.Addr{}, false
	}
	real, err := netip.ParseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP")))
	if err != nil {
		return netip.Addr{}, false
	}
	return real.Unmap(), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IsLoopback reports whether a client address is a loopback address.
func IsLoopback(addr string) bool {
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// Guard wraps h with the per-request limits of l (already defaulted by
// NewServer, or given whole): /metrics access, the body limit (413), the
// body and write deadlines, and the write rate per client address (429).
func Guard(h http.Handler, l Limits) http.Handler {
	var metricsKey [32]byte
	if l.MetricsKey != "" {
		metricsKey = sha256.Sum256([]byte(l.MetricsKey))
	}
	var writes *ratelimit.Limiter
	if l.WriteRate > 0 {
		writes = ratelimit.New(ratelimit.Config{Rate: l.WriteRate, Burst: l.WriteBurst})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if real, ok := proxiedClient(r, l.TrustedProxies); ok {
			// Everything downstream (rate limits, quotas, logs) sees the
			// client, not the proxy. A shallow copy: r is the server's.
			r2 := *r
			r2.RemoteAddr = net.JoinHostPort(real.String(), "0")
			r = &r2
		}
		client := ClientAddr(r)
		if r.URL.Path == "/metrics" && !IsLoopback(client) && !bearerMatches(r, metricsKey, l.MetricsKey != "") {
			WriteError(w, http.StatusForbidden, CodeForbidden, "metrics are served to loopback clients, or with the metrics key as a Bearer token")
			return
		}
		if isWrite(r.Method) {
			if ok, wait := writes.Allow(client); !ok {
				WriteRateLimited(w, wait, "too many write requests from "+client)
				return
			}
		}
		if l.MaxBody > 0 && r.ContentLength > l.MaxBody {
			// Refused before a byte of the body is read; the connection
			// closes after the answer so the rest is never read either.
			w.Header().Set("Connection", "close")
			WriteError(w, http.StatusRequestEntityTooLarge, CodeBodyTooLarge,
				fmt.Sprintf("request body is %d bytes, limit %d", r.ContentLength, l.MaxBody))
			return
		}
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			body := r.Body
			if l.MaxBody > 0 {
				body = http.MaxBytesReader(w, body, l.MaxBody)
			}
			if l.BodyTimeout > 0 {
				_ = rc.SetReadDeadline(time.Now().Add(l.BodyTimeout))
				body = &deadlineBody{ReadCloser: body, rc: rc}
			}
			r.Body = body
		}
		if l.WriteTimeout > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(l.WriteTimeout))
			w = &deadlineWriter{ResponseWriter: w, rc: rc, d: l.WriteTimeout}
		}
		h.ServeHTTP(w, r)
	})
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func bearerMatches(r *http.Request, want [32]byte, set bool) bool {
	if !set {
		return false
	}
	a := r.Header.Get("Authorization")
	if len(a) < 8 || !strings.EqualFold(a[:7], "bearer ") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(a[7:])))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// WriteRateLimited answers 429 rate_limited with Retry-After.
func WriteRateLimited(w http.ResponseWriter, wait time.Duration, message string) {
	secs := ratelimit.RetryAfterSeconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	WriteError(w, http.StatusTooManyRequests, CodeRateLimited, fmt.Sprintf("%s: retry after %d s", message, secs))
}

// deadlineBody lifts the body's read deadline once the body is read, so
// that net/http's background read (which notices a client leaving) does
// not time out and cancel a handler that runs long after it.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	// Only a body read to its end lifts the deadline: after a timeout it
	// stays passed, so that net/http does not wait, without a deadline,
	// to discard the rest of a body that trickles in (slow-body attack).
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// deadlineWriter moves the write deadline forward before each write and
// flush: a write that a client does not take within d fails, however long
// the response as a whole lasts.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

// Flush implements http.Flusher for streaming handlers.
func (w *deadlineWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

// Hijack implements http.Hijacker for WebSocket upgrades (net/http clears
// the connection's deadlines when it hands it over).
func (w *deadlineWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.rc.Hijack() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// LimitListener caps the connections ln hands out: at most l.MaxConns at
// once and l.MaxConnsPerClient from one client address. A connection over
// a cap is answered "503 overloaded" and closed at once, so that it holds
// no descriptor (leaving it in the kernel's backlog would stall every
// client behind it). refused, if not nil, is called for each one.
func LimitListener(ln net.Listener, l Limits, refused func(reason string)) net.Listener {
	l = l.WithDefaults()
	return &limitListener{Listener: ln, max: l.MaxConns, perClient: l.MaxConnsPerClient, trusted: l.TrustedProxies, refused: refused, byClient: map[string]int{}}
}

type limitListener struct {
	net.Listener
	max, perClient int
	trusted        []netip.Prefix // proxies: not capped per client
	refused        func(string)

	mu       sync.Mutex
	open     int
	byClient map[string]int
	dropped  atomic.Uint64
}

// Open is the number of connections the listener has handed out that are
// not closed yet.
func (l *limitListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// ConnCounter is implemented by the listener LimitListener returns.
type ConnCounter interface {
	Open() int       // connections handed out and not yet closed
	Refused() uint64 // connections refused over a cap
}

// Refused is the number of connections refused over a cap.
func (l *limitListener) Refused() uint64 { return l.dropped.Load() }

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := ""
		if tcp, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			client = tcp.IP.String()
		}
		reason := l.admit(client)
		if reason == "" {
			return &limitConn{Conn: c, l: l, client: client}, nil
		}
		l.dropped.Add(1)
		refuse(c)
		if l.refused != nil {
			l.refused(reason)
		}
	}
}

func (l *limitListener) admit(client string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.open >= l.max:
		return "connection limit reached"
	case l.perClient > 0 && l.byClient[client] >= l.perClient && !l.isProxy(client):
		return "per-client connection limit reached"
	}
	l.open++
	l.byClient[client]++
	return ""
}

func (l *limitListener) isProxy(client string) bool {
	a, err := netip.ParseAddr(client)
	return err == nil && isTrusted(a, l.trusted)
}

func (l *limitListener) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.byClient[client] - 1; n > 0 {
		l.byClient[client] = n
	} else {
		delete(l.byClient, client)
	}
}

var overloaded = func() []byte {
	body := `{"error":{"code":"` + CodeOverloaded + `","message":"too many connections; retry later"}}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// refuse answers a connection over a cap and closes it. The answer fits
// an empty socket buffer, so the write does not wait on the client.
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	_, _ = c.Write(overloaded)
	_ = c.Close()
}

type limitConn struct {
	net.Conn
	l      *limitListener
	client string
	once   sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.client) })
	return err
}

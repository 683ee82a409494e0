package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/httpx"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the web server.
type Config struct {
	Node        Node        // the chain (required)
	Coordinator Coordinator // nil: no job submission, no live miner figures
	Wallets     Signer      // the wallet daemon; nil: sign-in is off
	Market      Market      // the market module; nil: not on this chain yet
	Submitter   Submitter   // signs the signed-in wallet's listings (with the password typed in the form)
	// SessionTTL is how long a sign-in lasts: at most (and by default)
	// MaxSessionTTL.
	SessionTTL time.Duration
	PollEvery  time.Duration // how often the head is polled: 0 is 100 ms
	KeepBlocks int           // blocks kept for lists and charts: 0 is 1,800 (an hour of 2 s blocks)
	Registry   *prometheus.Registry
	Logger     *slog.Logger
	Now        func() time.Time // nil: time.Now
}

// MaxSessionTTL is the longest a sign-in lasts.
const MaxSessionTTL = 24 * time.Hour

// Server serves the pages and their JSON.
type Server struct {
	cfg      Config
	log      *slog.Logger
	feed     *feed
	pages    map[string]*template.Template
	sessions *sessions
	mux      *http.ServeMux
	static   http.Handler
	stopped  chan struct{} // closed when Run returns: live streams end
	stopOnce sync.Once

	chainInfo  memo[chainSnapshot]
	registry   memo[registrySnapshot]
	validators memo[validatorSnapshot]
	blocks     blockCache
	txs        finalCache[txData]  // committed transactions
	jobs       finalCache[jobData] // jobs that have ended
	jobParams  memo[jobs.Params]
	addresses  heightCache[addressData]
	minerDashs heightCache[minerDash]
	repScores  heightCache[map[string]uint32] // the market module's score of each miner, per block
	supply     heightCache[supplyData]
	stakes     heightCache[stakeSnapshot] // the staking module's operators, per block
	pools      heightCache[pools.View]    // pools by name, per block
	swarms     heightCache[swarmData]     // the span agents, per block
	rendered   heightCache[[]byte]        // pages as signed-out viewers get them
	statsCache statsCache

	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

// New builds the server; Run starts following the chain.
func New(cfg Config) (*Server, error) {
	if cfg.Node == nil {
		return nil, errors.New("web: a chain node is required")
	}
	if cfg.SessionTTL <= 0 || cfg.SessionTTL > MaxSessionTTL {
		cfg.SessionTTL = MaxSessionTTL
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 100 * time.Millisecond
	}
	if cfg.KeepBlocks <= 0 {
		cfg.KeepBlocks = 1800
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sessions: newSessions(cfg.SessionTTL, cfg.Now), mux: http.NewServeMux(), stopped: make(chan struct{})}
	s.feed = newFeed(cfg.Node, cfg.PollEvery, cfg.KeepBlocks, cfg.Logger)
	for _, m := range []interface{ setTTL(time.Duration) }{&s.chainInfo, &s.registry} {
		m.setTTL(time.Second)
	}
	s.validators.setTTL(2 * time.Second)
	s.blocks.max = 512
	s.txs.max, s.jobs.max = 4096, 4096
	s.addresses.max, s.minerDashs.max, s.supply.max, s.rendered.max = 1024, 256, 1, 256
	s.repScores.max, s.stakes.max, s.pools.max = 1, 1, 256
	s.swarms.max = 1
	s.jobParams.setTTL(time.Second)
	if err := s.parsePages(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	// The assets are a few KiB: ranges buy nothing, and net/http's Range
	// parsing before go1.26.9 spends CPU without limit on a header of many
	// small ranges (GO-2026-6609, scripts/vulndb/accepted).
	s.static = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Range")
		files.ServeHTTP(w, r)
	})
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aitbc", Subsystem: "web", Name: "requests_total", Help: "Web requests by route and status.",
	}, []string{"route", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "aitbc", Subsystem: "web", Name: "request_seconds", Help: "Web latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"route"})
	if err := cfg.Registry.Register(s.reqs); err != nil {
		return nil, err
	}
	if err := cfg.Registry.Register(s.latency); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Run follows the chain for the live pages and expires sessions until
// ctx ends; then it closes every live stream, so that open pages do not
// hold the HTTP server's shutdown.
func (s *Server) Run(ctx context.Context) error {
	defer s.stopOnce.Do(func() { close(s.stopped) })
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.sessions.sweep()
			}
		}
	}()
	err := s.feed.run(ctx)
	wg.Wait()
	return err
}

// streamContext is a request's context that also ends when the server
// stops, so that a long stream does not hold the HTTP server's shutdown.
func (s *Server) streamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Handler returns the server's pages, static files and JSON.
func (s *Server) Handler() http.Handler { return s }

// ServeHTTP sets the headers every answer carries, refuses cross-site
// writes, and serves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline script or style, nothing from another origin: the pages
	// need only their own files and their own event streams.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		s.fail(w, r, errf(ErrCrossSite, "this form must be sent from the page it belongs to"))
		return
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("web: panic", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			s.fail(w, r, fmt.Errorf("internal error"))
		}
	}()
	s.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether a state-changing request comes from a page
// of this server: browsers send Sec-Fetch-Site and Origin with every form
// post; a request with neither (a script, curl) must still carry the
// form's token, checked by the handler.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		return o == scheme+r.Host
	}
	return true
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(c int) { w.status = c; w.ResponseWriter.WriteHeader(c) }

// Flush lets event streams flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) handle(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		if err := h(sw, r); err != nil {
			s.fail(sw, r, err)
		}
		s.reqs.WithLabelValues(pattern, strconv.Itoa(sw.status)).Inc()
		s.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
	})
}

func (s *Server) routes() {
	s.handle("GET /{$}", s.home)
	s.handle("GET /explorer", s.explorerHome)
	s.handle("GET /explorer/{$}", s.explorerHome)
	s.handle("GET /explorer/blocks", s.blocksPage)
	s.handle("GET /explorer/block/{height}", s.blockPage)
	s.handle("GET /explorer/txs", s.txsPage)
	s.handle("GET /explorer/tx/{hash}", s.txPage)
	s.handle("GET /explorer/address/{address}", s.addressPage)
	s.handle("GET /explorer/job/{id}", s.jobPage)
	s.handle("GET /explorer/validators", s.validatorsPage)
	s.handle("GET /explorer/miners", s.minersPage)
	s.handle("GET /explorer/supply", s.supplyPage)
	s.handle("GET /explorer/search", s.searchPage)
	s.handle("GET /explorer/pool/{name}", s.poolPage)
	s.handle("GET /swarm", s.swarmPage) // swarmpage.go

	s.handle("GET /marketplace", s.marketPage)
	s.handle("GET /marketplace/{$}", s.marketPage)
	s.handle("GET /marketplace/service/{id}", s.servicePage)
	s.handle("GET /marketplace/provide", s.providePage)
	s.handle("POST /marketplace/provide", s.provideSubmit)
	s.handle("GET /marketplace/mine", s.minePage)
	s.handle("POST /marketplace/jobs", s.jobSubmit)
	s.handle("GET /marketplace/jobs/{id}", s.myJobPage)
	s.handle("GET /marketplace/jobs/{id}/events", s.myJobEvents)

	s.handle("GET /miner", s.minerIndex)
	s.handle("GET /miner/{$}", s.minerIndex)
	s.handle("GET /miner/{address}", s.minerPage)

	s.handle("GET /exchange", s.exchangePage) // exchange.go
	s.handle("GET /exchange/{$}", s.exchangePage)

	s.handle("GET /signin", s.signinPage)
	s.handle("POST /signin", s.signinSubmit)
	s.handle("POST /signout", s.signout)

	s.apiRoutes()
	s.mux.Handle("GET /static/", s.static)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errf(ErrNotFound, "no page at %s", r.URL.Path))
	})
}

// view is what every page template receives.
type view struct {
	Title   string
	Section string // explorer, marketplace, miner: the navigation's current item
	Session *session
	CSRF    string // the session's form token
	SignIn  bool   // sign-in is offered
	Status  int
	Data    any
}

// page renders a page template with the layout.
func (s *Server) page(w http.ResponseWriter, r *http.Request, status int, name, title, section string, data any) error {
	sess := s.sessions.from(r)
	body, err := s.render(sess, status, name, title, section, data)
	if err != nil {
		return err
	}
	writePage(w, status, body, sess != nil)
	return nil
}

// render executes a page template with the layout, for the session's
// viewer (nil: signed out).
func (s *Server) render(sess *session, status int, name, title, section string, data any) ([]byte, error) {
	t := s.pages[name]
	if t == nil {
		return nil, fmt.Errorf("web: no template %q", name)
	}
	v := view{Title: title, Section: section, Data: data, Status: status, SignIn: s.cfg.Wallets != nil}
	if sess != nil {
		v.Session, v.CSRF = sess, sess.CSRF
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "base", v); err != nil {
		return nil, fmt.Errorf("web: render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

func writePage(w http.ResponseWriter, status int, body []byte, signedIn bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if signedIn {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body) // an error: the viewer went away
}

// sharedPage serves a page that is the same for every signed-out viewer
// at one height of the chain (the explorer's front page, a block): it is
// rendered once per key and height for all of them. A signed-in viewer's
// page (its header names the wallet) is rendered for that viewer.
func (s *Server) sharedPage(w http.ResponseWriter, r *http.Request, key string, height int64,
	build func(ctx context.Context) (name, title, section string, data any, err error)) error {
	if sess := s.sessions.from(r); sess != nil {
		name, title, section, data, err := build(r.Context())
		if err != nil {
			return err
		}
		return s.page(w, r, http.StatusOK, name, title, section, data)
	}
	body, err := s.rendered.get(r.Context(), key, height, func(ctx context.Context) ([]byte, error) {
		name, title, section, data, err := build(ctx)
		if err != nil {
			return nil, err
		}
		return s.render(nil, http.StatusOK, name, title, section, data)
	})
	if err != nil {
		return err
	}
	writePage(w, http.StatusOK, body, false)
	return nil
}

// errorPage is the data of the error template.
type errorPage struct {
	Code    string
	Message string
}

// fail answers err: JSON under /api/, an error page elsewhere.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := classify(err)
	if status >= 500 {
		s.log.Warn("web", "path", r.URL.Path, "err", err)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		httpx.WriteError(w, status, code, msg)
		return
	}
	title := http.StatusText(status)
	if status == http.StatusNotFound {
		title = "Not found"
	}
	if perr := s.page(w, r, status, "error.html", title, "", errorPage{Code: code, Message: msg}); perr != nil {
		http.Error(w, msg, status)
	}
}

// memo keeps one value fetched from a service for a short while: under
// 200 viewers a page's figures cost the node one read a second, not one
// per view. The first fetch is waited for (concurrent misses wait for
// one); after that a viewer never waits for a refresh: an expired value is
// served while one refresh runs in the background.
type memo[T any] struct {
	mu         sync.Mutex
	ttl        time.Duration
	at         time.Time
	v          T
	ok         bool
	refreshing bool
}

func (m *memo[T]) setTTL(d time.Duration) { m.ttl = d }

// memoRefreshTimeout bounds a background refresh.
const memoRefreshTimeout = 10 * time.Second

func (m *memo[T]) get(ctx context.Context, fetch func(context.Context) (T, error)) (T, error) {
	m.mu.Lock()
	if m.ok {
		v := m.v
		if time.Since(m.at) >= m.ttl && !m.refreshing {
			m.refreshing = true
			go m.refresh(fetch)
		}
		m.mu.Unlock()
		return v, nil
	}
	defer m.mu.Unlock()
	v, err := fetch(ctx)
	if err != nil {
		return v, err
	}
	m.v, m.at, m.ok = v, time.Now(), true
	return v, nil
}

func (m *memo[T]) refresh(fetch func(context.Context) (T, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), memoRefreshTimeout)
	defer cancel()
	v, err := fetch(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshing = false
	if err == nil { // on failure the old value stays, and the next view tries again
		m.v, m.at = v, time.Now()
	}
}

// heightCache keeps, per key, what a page read at one height of the
// chain: an address's or a miner's figures do not change within a block.
// Concurrent viewers of one key at one height wait for one read.
type heightCache[T any] struct {
	mu  sync.Mutex
	max int
	m   map[string]*heightEntry[T]
}

type heightEntry[T any] struct {
	height int64
	ready  chan struct{}
	v      T
	err    error
}

func (c *heightCache[T]) get(ctx context.Context, key string, height int64, fetch func(context.Context) (T, error)) (T, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*heightEntry[T]{}
	}
	e := c.m[key]
	if e == nil || e.height != height || height == 0 {
		if len(c.m) >= c.max {
			for k := range c.m { // any one: the cache is a convenience
				delete(c.m, k)
				break
			}
		}
		e = &heightEntry[T]{height: height, ready: make(chan struct{})}
		c.m[key] = e
		c.mu.Unlock()
		e.v, e.err = fetch(ctx)
		if e.err != nil {
			c.mu.Lock()
			if c.m[key] == e {
				delete(c.m, key) // the next viewer asks again
			}
			c.mu.Unlock()
		}
		close(e.ready)
		return e.v, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
		return e.v, e.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// finalCache keeps what the pages read about things that no longer
// change (a committed transaction, a job that has ended), up to max.
type finalCache[T any] struct {
	mu  sync.Mutex
	max int
	m   map[string]T
}

func (c *finalCache[T]) get(k string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *finalCache[T]) put(k string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]T{}
	}
	if len(c.m) >= c.max {
		for k := range c.m { // any one: the cache is a convenience
			delete(c.m, k)
			break
		}
	}
	c.m[k] = v
}

// blockCache keeps rendered data of committed blocks, which never change.
type blockCache struct {
	mu  sync.Mutex
	max int
	m   map[int64]blockData
}

func (c *blockCache) get(h int64) (blockData, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[h]
	return b, ok
}

func (c *blockCache) put(h int64, b blockData) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int64]blockData{}
	}
	if len(c.m) >= c.max {
		for k := range c.m { // any one: the cache is a convenience
			delete(c.m, k)
			break
		}
	}
	c.m[h] = b
}

package walletd

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/ratelimit"
)

// DefaultListen is the daemon's default address: loopback only.
const DefaultListen = "127.0.0.1:8002"

// APIKeyHeader is the header every request must carry.
const APIKeyHeader = "X-API-Key"

// Config configures a Server.
type Config struct {
	Home   string // AITBC home: wallets in keystore.Dir(Home), API key in APIKeyPath(Home)
	Listen string // default DefaultListen
	APIKey string // "": LoadOrCreateAPIKey(Home); the admin key (keys.go)
	// ServiceWallets are wallets the admin key may read but not unlock or
	// sign with over HTTP: only a key scoped to them can (keys.go). The
	// devnet puts its coordinator's and miners' wallets here; in-process
	// callers (the Service) are not affected.
	ServiceWallets []string
	Node           Node                 // chain node; nil: balance and signing answer 503
	DefaultWallet  string               // wallet of GET /api/v1/wallet/balance without ?name= or ?address=
	Logger         *slog.Logger         // nil: discard
	Registry       *prometheus.Registry // metrics go here and are served at /metrics; nil: a new one
	Keystore       []keystore.Option    // e.g. keystore.WithKDF(keystore.InsecureTestKDF()) in tests
	Clock          func() time.Time     // nil: time.Now
	// Limits are the HTTP server's limits (zero: the defaults, see
	// httpx.Limits); the composition root fits them to the process.
	Limits httpx.Limits
	// Guard bounds and paces password checks (scrypt runs at once, backoff
	// after wrong passwords); zero fields take the defaults (guard.go).
	Guard GuardConfig
	// MinPasswordLength is the fewest characters of a new wallet's
	// password (0: any; see ServiceConfig).
	MinPasswordLength int
}

// Server is the wallet daemon's HTTP API.
type Server struct {
	cfg     Config
	svc     *Service
	keyHash [32]byte
	keys    *keyring        // scoped keys
	service map[string]bool // Config.ServiceWallets
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec

	mu sync.Mutex
	ln net.Listener
}

// NewServer builds the daemon: its keystore, Service, API key and routes.
// It does not listen yet (see Listen and Run).
func NewServer(cfg Config) (*Server, error) {
	if cfg.Home == "" {
		return nil, errors.New("walletd: home directory required")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.APIKey == "" {
		k, err := LoadOrCreateAPIKey(cfg.Home)
		if err != nil {
			return nil, err
		}
		cfg.APIKey = k
	}
	ks, err := keystore.ForHome(cfg.Home, cfg.Keystore...)
	if err != nil {
		return nil, err
	}
	svc, err := NewService(ServiceConfig{Store: ks, Node: cfg.Node, DefaultWallet: cfg.DefaultWallet, Logger: cfg.Logger, Clock: cfg.Clock, Guard: cfg.Guard, MinPasswordLength: cfg.MinPasswordLength})
	if err != nil {
		return nil, err
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	keys, err := loadKeyring(KeysPath(cfg.Home), now)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, svc: svc, keyHash: sha256.Sum256([]byte(cfg.APIKey)), keys: keys, service: map[string]bool{}, log: cfg.Logger, mux: http.NewServeMux()}
	for _, w := range cfg.ServiceWallets {
		s.service[w] = true
	}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aitbc", Subsystem: "walletd", Name: "requests_total", Help: "Wallet daemon requests by endpoint and status code.",
	}, []string{"endpoint", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "aitbc", Subsystem: "walletd", Name: "request_seconds", Help: "Wallet daemon request latency by endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"endpoint"})
	unlocked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "aitbc", Subsystem: "walletd", Name: "unlocked_wallets", Help: "Wallets whose key is held in memory.",
	}, func() float64 {
		svc.mu.Lock()
		defer svc.mu.Unlock()
		return float64(len(svc.sessions))
	})
	if err := registerAll(cfg.Registry, s.reqs, s.latency, unlocked); err != nil {
		return nil, fmt.Errorf("walletd: metrics: %w", err)
	}
	s.routes()
	s.handler = s.instrument(s.mux)
	return s, nil
}

func registerAll(reg *prometheus.Registry, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/v1/health", s.health)
	m.HandleFunc("GET /api/v1/wallet/balance", s.balance)
	m.HandleFunc("GET /api/v1/wallets", s.list)
	m.HandleFunc("POST /api/v1/wallets", s.create)
	m.HandleFunc("POST /api/v1/wallets/restore", s.restore)
	m.HandleFunc("GET /api/v1/wallets/{name}", s.wallet(false, s.get))
	m.HandleFunc("POST /api/v1/wallets/{name}/backup", s.wallet(true, s.backup))
	m.HandleFunc("POST /api/v1/wallets/{name}/unlock", s.wallet(true, s.unlock))
	m.HandleFunc("POST /api/v1/wallets/{name}/lock", s.wallet(true, s.lock))
	m.HandleFunc("POST /api/v1/wallets/{name}/send", s.wallet(true, s.send))
	m.HandleFunc("POST /api/v1/wallets/{name}/submit", s.wallet(true, s.submit))
	m.HandleFunc("POST /api/v1/wallets/{name}/sign-message", s.wallet(true, s.signMessage))
	m.HandleFunc("POST /api/v1/keys", s.adminOnly(http.HandlerFunc(s.createKey)))
	m.HandleFunc("GET /api/v1/keys", s.adminOnly(http.HandlerFunc(s.listKeys)))
	m.HandleFunc("DELETE /api/v1/keys/{id}", s.adminOnly(http.HandlerFunc(s.revokeKey)))
	m.Handle("GET /metrics", s.adminOnly(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{})))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// Service returns the daemon's Service (for in-process callers).
func (s *Server) Service() *Service { return s.svc }

// APIKey returns the key clients must send in X-API-Key.
func (s *Server) APIKey() string { return s.cfg.APIKey }

// Handler returns the API with authentication and metrics (for tests and
// for embedding in another server).
func (s *Server) Handler() http.Handler { return s.handler }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(c int) { w.status = c; w.ResponseWriter.WriteHeader(c) }

// instrument checks the API key, then serves, then counts the request by
// route pattern and status.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		_, endpoint := s.mux.Handler(r)
		if endpoint == "/" || endpoint == "" {
			endpoint = "other"
		}
		if p := s.authenticate(requestKey(r)); p != nil {
			next.ServeHTTP(sw, r.WithContext(withPrincipal(r.Context(), p)))
		} else {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="aitbc-wallet"`)
			httpx.WriteError(sw, http.StatusUnauthorized, "unauthorized", "walletd: missing or wrong API key (send it in the "+APIKeyHeader+" header)")
		}
		s.reqs.WithLabelValues(endpoint, strconv.Itoa(sw.status)).Inc()
		s.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start))
	})
}

// requestKey is the request's API key: X-API-Key, or "Authorization:
// Bearer <key>" (for Prometheus).
func requestKey(r *http.Request) string {
	k := r.Header.Get(APIKeyHeader)
	if k == "" {
		if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			k = strings.TrimSpace(a[7:])
		}
	}
	return k
}

// Listen opens the listening socket (once). Run calls it when needed; call
// it first to learn the address (Addr) before serving, e.g. with port 0.
func (s *Server) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr(), nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("walletd: listen %s: %w", s.cfg.Listen, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		s.log.Warn("wallet daemon listens beyond loopback; anyone who can reach it and knows the API key can sign", "addr", ln.Addr().String())
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Addr is the listening address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL is the daemon's base URL (after Listen).
func (s *Server) URL() string {
	if a := s.Addr(); a != nil {
		return "http://" + a.String()
	}
	return "http://" + s.cfg.Listen
}

// Run serves until ctx ends, then shuts down gracefully (in-flight requests
// get up to 5 seconds) and wipes every unlocked key.
func (s *Server) Run(ctx context.Context) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	defer s.svc.LockAll()
	srv := httpx.NewServer(s.handler, s.cfg.Limits, slog.NewLogLogger(s.log.Handler(), slog.LevelWarn))
	ln := httpx.LimitListener(s.ln, s.cfg.Limits, func(reason string) { s.log.Debug("connection refused", "reason", reason) })
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	s.log.Info("wallet daemon listening", "addr", s.ln.Addr().String(), "wallets", s.svc.Store().Path())
	select {
	case err := <-done:
		return fmt.Errorf("walletd: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	s.log.Info("wallet daemon stopped")
	if err != nil {
		return fmt.Errorf("walletd: shutdown: %w", err)
	}
	return nil
}

// --- handlers ---

func (s *Server) fail(w http.ResponseWriter, err error) {
	status, code := HTTPStatus(err)
	var re *RetryError
	if errors.As(err, &re) {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(re.Wait)))
	}
	if status >= 500 {
		s.log.Error("request failed", "code", code, "err", err)
	}
	httpx.WriteError(w, status, code, err.Error())
}

func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := httpx.DecodeJSON(r, v); err != nil {
		s.fail(w, fmt.Errorf("%w: %w", ErrInvalidRequest, err))
		return false
	}
	return true
}

// Health is GET /api/v1/health.
type Health struct {
	Status        string `json:"status"`
	Wallets       int    `json:"wallets"`
	DefaultWallet string `json:"default_wallet,omitempty"`
	Node          bool   `json:"node_configured"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.List(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, Health{Status: "ok", Wallets: len(list), DefaultWallet: s.svc.DefaultWallet(), Node: s.svc.node != nil})
}

func (s *Server) balance(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, addr := q.Get("name"), q.Get("address")
	var b Balance
	var err error
	switch {
	case name != "" && addr != "":
		err = fmt.Errorf("%w: give ?name= or ?address=, not both", ErrInvalidRequest)
	case addr != "":
		var a address.Address
		if a, err = address.Parse(addr); err != nil {
			err = fmt.Errorf("%w: %v", ErrInvalidAddress, err)
			break
		}
		b, err = s.svc.BalanceOf(r.Context(), a)
	default:
		// A chain address's balance is public; a wallet's is for keys
		// that may use it (the default wallet included).
		if name == "" {
			name = s.svc.DefaultWallet()
		}
		if name != "" {
			err = s.mayUse(r, name, false)
		} else if p := principalFrom(r.Context()); p == nil || !p.admin {
			err = fmt.Errorf("%w: name the wallet (?name=)", ErrNoWallet)
		}
		if err == nil {
			b, err = s.svc.Balance(r.Context(), name)
		}
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, b)
}

// WalletList is GET /api/v1/wallets.
type WalletList struct {
	Wallets []WalletInfo `json:"wallets"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	list, err := s.svc.List(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	// A scoped key sees its own wallets only.
	list = slices.DeleteFunc(list, func(wi WalletInfo) bool { return s.mayUse(r, wi.Name, false) != nil })
	httpx.WriteJSON(w, http.StatusOK, WalletList{Wallets: list})
}

// CreateRequest is POST /api/v1/wallets.
type CreateRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req CreateRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.mayUse(r, req.Name, true); err != nil {
		s.fail(w, err)
		return
	}
	info, err := s.svc.Create(r.Context(), req.Name, req.Password)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, info)
}

// RestoreRequest is POST /api/v1/wallets/restore.
type RestoreRequest struct {
	Name     string `json:"name"`
	Mnemonic string `json:"mnemonic"`
	Password string `json:"password"`
}

func (s *Server) restore(w http.ResponseWriter, r *http.Request) {
	var req RestoreRequest
	if !s.decode(w, r, &req) {
		return
	}
	if err := s.mayUse(r, req.Name, true); err != nil {
		s.fail(w, err)
		return
	}
	info, err := s.svc.Restore(r.Context(), req.Name, req.Mnemonic, req.Password)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, info)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	info, err := s.svc.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, info)
}

// PasswordRequest is POST /api/v1/wallets/{name}/backup.
type PasswordRequest struct {
	Password string `json:"password"`
}

func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	var req PasswordRequest
	if !s.decode(w, r, &req) {
		return
	}
	b, err := s.svc.Backup(r.Context(), r.PathValue("name"), req.Password)
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, b)
}

// UnlockRequest is POST /api/v1/wallets/{name}/unlock. Timeout is a Go
// duration string ("15m", "1h30m") or a number of seconds; absent means
// DefaultUnlockTimeout.
type UnlockRequest struct {
	Password string          `json:"password"`
	Timeout  json.RawMessage `json:"timeout,omitempty"`
}

// parseTimeout reads a duration given as "15m" or as seconds.
func parseTimeout(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrInvalidTimeout, err)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%w: %q: want a duration such as \"15m\"", ErrInvalidTimeout, s)
		}
		if d < MinUnlockTimeout {
			// Not rounded to zero, which would mean the default (15 minutes).
			return 0, fmt.Errorf("%w: %q: must be at least %v", ErrInvalidTimeout, s, MinUnlockTimeout)
		}
		return d, nil
	}
	secs, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || secs < MinUnlockTimeout.Seconds() || secs > MaxUnlockTimeout.Seconds() {
		return 0, fmt.Errorf("%w: %s: want seconds between %v and %v, or a duration string", ErrInvalidTimeout, raw, MinUnlockTimeout.Seconds(), MaxUnlockTimeout)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	var req UnlockRequest
	if !s.decode(w, r, &req) {
		return
	}
	d, err := parseTimeout(req.Timeout)
	if err != nil {
		s.fail(w, err)
		return
	}
	info, err := s.svc.Unlock(r.Context(), r.PathValue("name"), req.Password, d)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, info)
}

func (s *Server) lock(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > 0 { // a body is optional; if present it must be {}
		var empty struct{}
		if !s.decode(w, r, &empty) {
			return
		}
	}
	info, err := s.svc.Lock(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, info)
}

// SendRequest is POST /api/v1/wallets/{name}/send. Amount and Fee are
// decimal AITBC, as a JSON string ("1000", "0.25") or number; Fee absent
// or 0 means the chain's minimum. Password may be empty while the wallet
// is unlocked.
type SendRequest struct {
	To       string          `json:"to"`
	Amount   json.RawMessage `json:"amount"`
	Password string          `json:"password,omitempty"`
	Fee      json.RawMessage `json:"fee,omitempty"`
}

// parseAmount reads a JSON string or number of AITBC.
func parseAmount(field string, raw json.RawMessage, required bool) (coin.Amount, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return 0, fmt.Errorf("%w: %s required", ErrInvalidAmount, field)
		}
		return 0, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("%w: %s: %v", ErrInvalidAmount, field, err)
		}
	}
	a, err := coin.Parse(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrInvalidAmount, field, err)
	}
	if required && a == 0 {
		return 0, fmt.Errorf("%w: %s must be positive", ErrInvalidAmount, field)
	}
	return a, nil
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if !s.decode(w, r, &req) {
		return
	}
	to, err := address.Parse(req.To)
	if err != nil {
		s.fail(w, fmt.Errorf("%w: to: %v", ErrInvalidAddress, err))
		return
	}
	amount, err := parseAmount("amount", req.Amount, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	fee, err := parseAmount("fee", req.Fee, false)
	if err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.svc.Send(r.Context(), r.PathValue("name"), req.Password, to, amount, fee)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, res)
}

// SubmitRequest is POST /api/v1/wallets/{name}/submit: any module message,
// built by the caller, signed by the daemon. Body is the base64 of the
// message body's canonical CBOR.
type SubmitRequest struct {
	MsgType  string          `json:"msg_type"`
	Body     string          `json:"body"`
	Password string          `json:"password,omitempty"`
	Fee      json.RawMessage `json:"fee,omitempty"`
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	var req SubmitRequest
	if !s.decode(w, r, &req) {
		return
	}
	body, err := base64.StdEncoding.DecodeString(strings.TrimSpace(req.Body))
	if err != nil {
		s.fail(w, fmt.Errorf("%w: body must be base64 of the message's CBOR: %v", ErrInvalidRequest, err))
		return
	}
	fee, err := parseAmount("fee", req.Fee, false)
	if err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.svc.SignAndSubmit(r.Context(), r.PathValue("name"), req.Password, tx.Msg{Type: req.MsgType, Body: body}, fee)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, res)
}

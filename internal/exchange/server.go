package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/ratelimit"
	"github.com/aitbc/aitbc/internal/walletd"
)

// DefaultListen is the exchange API's address (DESIGN.md: port 8001).
const DefaultListen = "127.0.0.1:8001"

// Wallets is what the server needs of a wallet daemon: to check that a
// wallet is the signed-in address, and to sign and submit its orders.
type Wallets interface {
	Address(ctx context.Context, name string) (address.Address, error)
	SignAndSubmit(ctx context.Context, name, password string, msg tx.Msg, fee coin.Amount) (walletd.Submitted, error)
}

// Config configures the server.
type Config struct {
	Node    module.Getter // a chain node's REST API (rpc.Client)
	Wallets Wallets       // nil: reads and sign-in only
	Log     *slog.Logger
	// Poll is how often the WebSocket feed reads the node (default 1s).
	Poll time.Duration
	// AuthRate limits sign-in attempts per client address, per second
	// (default 1, burst 10).
	AuthRate float64
	Now      func() time.Time
	// Sessions, when set, keeps signed-in sessions across restarts (their
	// expiry too); nil: in memory only. Its opener closes it.
	Sessions *SessionStore
}

// Server is the exchange API.
type Server struct {
	cfg      Config
	sessions *sessions
	auth     *ratelimit.Limiter
	hub      *hub
	mux      *http.ServeMux
}

// NewServer returns the server; Run serves it.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Node == nil {
		return nil, errors.New("exchange: a node is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.AuthRate <= 0 {
		cfg.AuthRate = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, sessions: newSessions(cfg.Now), hub: newHub(cfg.Node, cfg.Poll, cfg.Log),
		auth: ratelimit.New(ratelimit.Config{Rate: cfg.AuthRate, Burst: 10, Now: cfg.Now})}
	if cfg.Sessions != nil {
		// A start-up read of a local file: nothing to cancel it.
		n, err := s.sessions.restore(context.Background(), cfg.Sessions)
		if err != nil {
			return nil, err
		}
		cfg.Log.Info("exchange sessions restored", "sessions", n)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /api/exchange/health", s.health)
	m.HandleFunc("GET /api/exchange/book", s.book)
	m.HandleFunc("GET /api/exchange/trades", s.trades)
	m.HandleFunc("GET /api/exchange/candles", s.candles)
	m.HandleFunc("GET /api/exchange/ticker", s.ticker)
	m.HandleFunc("POST /api/exchange/auth/challenge", s.challenge)
	m.HandleFunc("POST /api/exchange/auth/login", s.login)
	m.HandleFunc("POST /api/exchange/auth/logout", s.signedIn(s.logout))
	m.HandleFunc("GET /api/exchange/auth/session", s.signedIn(s.session))
	m.HandleFunc("GET /api/exchange/orders", s.signedIn(s.orders))
	m.HandleFunc("POST /api/exchange/orders", s.signedIn(s.place))
	m.HandleFunc("DELETE /api/exchange/orders/{id}", s.signedIn(s.cancel))
	m.HandleFunc("GET /api/exchange/ws", s.hub.serve)
	m.HandleFunc("/", httpx.NotFound(Routes()))
	s.mux = m
	return s, nil
}

// Routes lists the server's routes (the OpenAPI spec is tested against it).
func Routes() []string {
	return []string{
		"GET /api/exchange/health", "GET /api/exchange/book", "GET /api/exchange/trades", "GET /api/exchange/candles",
		"GET /api/exchange/ticker", "POST /api/exchange/auth/challenge", "POST /api/exchange/auth/login",
		"POST /api/exchange/auth/logout", "GET /api/exchange/auth/session", "GET /api/exchange/orders",
		"POST /api/exchange/orders", "DELETE /api/exchange/orders/{id}", "GET /api/exchange/ws",
	}
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves on ln until ctx ends, with the WebSocket feed's poller.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := httpx.NewServer(s.mux, httpx.Limits{}, nil)
	go s.RunFeed(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		s.hub.closeAll()
		return nil
	case err := <-errc:
		return err
	}
}

// RunFeed polls the node for the WebSocket feed until ctx ends (Run
// starts it).
func (s *Server) RunFeed(ctx context.Context) { s.hub.run(ctx) }

func (s *Server) fail(w http.ResponseWriter, err error) {
	status, code := statusOf(err)
	if status >= 500 {
		s.cfg.Log.Warn("exchange request failed", "err", err)
	}
	httpx.WriteError(w, status, code, err.Error())
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	t, err := chainex.QueryTicker(r.Context(), s.cfg.Node)
	if err != nil {
		s.fail(w, fmt.Errorf("%w: %v", ErrNodeUnavailable, err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "height": t.Height, "pair": t.Pair, "wallets": s.cfg.Wallets != nil})
}

func queryInt(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %s=%q", ErrInvalidRequest, name, v)
	}
	return n, nil
}

// nodeErr keeps a node's coded refusal (a chain error such as
// invalid_exchange_query) and marks anything else as the node failing.
func nodeErr(err error) error {
	var ae *httpx.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return err
	}
	var ce *errs.Error
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrNodeUnavailable, err)
}

func (s *Server) book(w http.ResponseWriter, r *http.Request) {
	depth, err := queryInt(r, "depth", 50)
	if err != nil {
		s.fail(w, err)
		return
	}
	v, err := chainex.QueryBook(r.Context(), s.cfg.Node, min(depth, chainex.MaxDepth))
	if err != nil {
		s.fail(w, nodeErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) trades(w http.ResponseWriter, r *http.Request) {
	n, err := queryInt(r, "limit", 50)
	if err != nil {
		s.fail(w, err)
		return
	}
	v, err := chainex.QueryTrades(r.Context(), s.cfg.Node, min(n, chainex.MaxTradesShown))
	if err != nil {
		s.fail(w, nodeErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) candles(w http.ResponseWriter, r *http.Request) {
	n, err := queryInt(r, "limit", 100)
	if err != nil {
		s.fail(w, err)
		return
	}
	iv := r.URL.Query().Get("interval")
	if iv == "" {
		iv = "1m"
	}
	v, err := chainex.QueryCandles(r.Context(), s.cfg.Node, iv, min(n, chainex.MaxCandles))
	if err != nil {
		s.fail(w, nodeErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) ticker(w http.ResponseWriter, r *http.Request) {
	v, err := chainex.QueryTicker(r.Context(), s.cfg.Node)
	if err != nil {
		s.fail(w, nodeErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// ChallengeRequest is POST /api/exchange/auth/challenge.
type ChallengeRequest struct {
	Address string `json:"address"`
}

// LoginRequest is POST /api/exchange/auth/login.
type LoginRequest struct {
	ChallengeID string `json:"challenge_id"`
	PubKey      string `json:"pubkey"`    // hex ed25519
	Signature   string `json:"signature"` // hex, over sha256(domain NUL payload)
}

func (s *Server) limited(w http.ResponseWriter, r *http.Request) bool {
	if ok, wait := s.auth.Allow(httpx.ClientAddr(r)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(wait)))
		s.fail(w, fmt.Errorf("%w: sign-in attempts; retry in %s", ErrRateLimited, wait.Round(time.Second)))
		return true
	}
	return false
}

func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	if s.limited(w, r) {
		return
	}
	var req ChallengeRequest
	if err := httpx.DecodeJSONLimit(r, &req, 4096); err != nil {
		s.fail(w, fmt.Errorf("%w: %w", ErrInvalidRequest, err))
		return
	}
	a, err := address.Parse(strings.TrimSpace(req.Address))
	if err != nil {
		s.fail(w, fmt.Errorf("%w: address: %v", ErrInvalidRequest, err))
		return
	}
	c, err := s.sessions.challenge(r.Host, a)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, c)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.limited(w, r) {
		return
	}
	var req LoginRequest
	if err := httpx.DecodeJSONLimit(r, &req, 4096); err != nil {
		s.fail(w, fmt.Errorf("%w: %w", ErrInvalidRequest, err))
		return
	}
	sess, err := s.sessions.login(r.Context(), req.ChallengeID, req.PubKey, req.Signature)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.cfg.Log.Info("exchange sign-in", "address", sess.Address)
	httpx.WriteJSON(w, http.StatusOK, sess)
}

// signedIn runs h with the request's session (Authorization: Bearer
// <token>), or answers 401.
func (s *Server) signedIn(h func(http.ResponseWriter, *http.Request, Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			s.fail(w, ErrSignInRequired)
			return
		}
		sess, ok := s.sessions.lookup(r.Context(), strings.TrimSpace(tok))
		if !ok {
			s.fail(w, fmt.Errorf("%w: the session is unknown or expired", ErrSignInRequired))
			return
		}
		h(w, r, sess)
	}
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, sess Session) {
	if err := s.sessions.logout(r.Context(), sess.Token); err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "signed out"})
}

func (s *Server) session(w http.ResponseWriter, _ *http.Request, sess Session) {
	sess.Token = ""
	httpx.WriteJSON(w, http.StatusOK, sess)
}

func (s *Server) orders(w http.ResponseWriter, r *http.Request, sess Session) {
	v, err := chainex.QueryOrders(r.Context(), s.cfg.Node, sess.Address)
	if err != nil {
		s.fail(w, nodeErr(err))
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// PlaceRequest is POST /api/exchange/orders: an order, and the wallet
// daemon's wallet that signs it (it must be the signed-in address).
type PlaceRequest struct {
	OrderRequest
	Wallet   string `json:"wallet"`
	Password string `json:"password,omitempty"` // not needed while the daemon holds the wallet unlocked
}

// CancelRequest is the body of DELETE /api/exchange/orders/{id}.
type CancelRequest struct {
	Wallet   string `json:"wallet"`
	Password string `json:"password,omitempty"`
}

// wallet checks that the named wallet is the session's address.
func (s *Server) wallet(ctx context.Context, name string, sess Session) error {
	if s.cfg.Wallets == nil {
		return ErrNoWallets
	}
	if name == "" {
		return fmt.Errorf("%w: wallet is required", ErrInvalidRequest)
	}
	a, err := s.cfg.Wallets.Address(ctx, name)
	if err != nil {
		return err
	}
	if a != sess.Address {
		return fmt.Errorf("%w: wallet %s is %s, signed in as %s", ErrNotYourWallet, name, a, sess.Address)
	}
	return nil
}

func (s *Server) place(w http.ResponseWriter, r *http.Request, sess Session) {
	var req PlaceRequest
	if err := httpx.DecodeJSONLimit(r, &req, 4096); err != nil {
		s.fail(w, fmt.Errorf("%w: %w", ErrInvalidRequest, err))
		return
	}
	if err := s.wallet(r.Context(), req.Wallet, sess); err != nil {
		s.fail(w, err)
		return
	}
	msg, err := BuildOrder(r.Context(), s.cfg.Node, req.OrderRequest)
	if err != nil {
		s.fail(w, err)
		return
	}
	sub, err := s.cfg.Wallets.SignAndSubmit(r.Context(), req.Wallet, req.Password, msg, 0)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, sub)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, sess Session) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		s.fail(w, fmt.Errorf("%w: order id %q", ErrInvalidRequest, r.PathValue("id")))
		return
	}
	var req CancelRequest
	if err := httpx.DecodeJSONLimit(r, &req, 4096); err != nil {
		s.fail(w, fmt.Errorf("%w: %w", ErrInvalidRequest, err))
		return
	}
	if err := s.wallet(r.Context(), req.Wallet, sess); err != nil {
		s.fail(w, err)
		return
	}
	// The chain refuses another's order too (not_order_owner); asking the
	// node first gives the answer before a fee is spent.
	o, err := chainex.QueryOrder(r.Context(), s.cfg.Node, id)
	if err != nil {
		s.fail(w, nodeErr(err))
		return
	}
	if o.Order.Owner != sess.Address {
		s.fail(w, fmt.Errorf("%w: order %d", chainex.ErrNotOwner, id))
		return
	}
	sub, err := s.cfg.Wallets.SignAndSubmit(r.Context(), req.Wallet, req.Password, chainex.NewCancelMsg(id), 0)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, sub)
}

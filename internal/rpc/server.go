package rpc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/ratelimit"
)

// Backend is what the REST API needs of a node.
type Backend interface {
	Health() Health
	ChainInfo() (ChainInfo, error)
	Account(addr address.Address) (Account, error)
	Submit(ctx context.Context, raw []byte) (string, error)
	SubmitMany(ctx context.Context, raws [][]byte) []SubmitOutcome
	Tx(hash string) (Transaction, error)
	Proof(hash string) (TxProof, error)
	Block(height int64) (Block, error)
	Head() (Head, error)
	Sync() SyncStatus
	Transactions(addr address.Address, limit int) (TxList, error)
	// Routes are the modules' queries; Query runs one against committed
	// state.
	Routes() []module.Route
	Query(fn func(q module.Query) error) error
	Audit() module.Audit
}

// ExplorerBackend is what a node offers block explorers beyond Backend: a
// block's transactions decoded in one request, and the validators with
// their recent signing. A Backend without it answers those routes 501.
type ExplorerBackend interface {
	BlockTransactions(height int64, offset, limit int) (BlockTxs, error)
	Validators(window int) (ValidatorSet, error)
}

// ErrorMapper turns a backend error into an HTTP status and error code.
// Chain errors (errs.Error) are mapped by the server itself.
type ErrorMapper func(err error) (status int, code string, ok bool)

// Server serves the node REST API.
type Server struct {
	routes  []string
	b       Backend
	log     *slog.Logger
	mapErr  ErrorMapper
	mux     *http.ServeMux
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
	// faucetLimit limits POST /api/v1/faucet per client address.
	faucetLimit *ratelimit.Limiter
}

// NewServer builds the API over b. reg receives the API's metrics and is
// served at /metrics (with whatever else it holds).
func NewServer(b Backend, mapErr ErrorMapper, reg *prometheus.Registry, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{b: b, log: log, mapErr: mapErr, mux: http.NewServeMux()}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aitbc", Subsystem: "rpc", Name: "requests_total", Help: "Node REST requests by route and status.",
	}, []string{"route", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "aitbc", Subsystem: "rpc", Name: "request_seconds", Help: "Node REST latency by route.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"route"})
	reg.MustRegister(s.reqs, s.latency)

	s.handle("GET /api/v1/health", s.health)
	s.handle("GET /api/v1/chain", s.chain)
	s.handle("GET /api/v1/block/latest", s.blockLatest)
	s.handle("GET /api/v1/block/{height}", s.blockAt)
	s.handle("GET /api/v1/block/{height}/transactions", s.blockTxs)
	s.handle("GET /api/v1/validators", s.validators)
	s.handle("GET /api/v1/sync/status", s.sync)
	s.handle("GET /rpc/head", s.head)
	s.handle("GET /api/v1/account/{address}", s.account)
	s.handle("GET /api/v1/account/{address}/transactions", s.accountTxs)
	s.handle("POST /api/v1/transaction/submit", s.submit)
	s.handle("POST /api/v1/transactions/submit", s.submitBatch)
	s.handle("POST /api/v1/transaction/get", s.txGet)
	s.handle("GET /api/v1/transaction/{hash}", s.txByPath)
	s.handle("GET /api/v1/transaction/{hash}/proof", s.proof)
	s.handle("GET /api/v1/audit", s.audit)
	s.handle("POST /api/v1/faucet", s.faucetDrip)
	s.faucetLimit = ratelimit.New(DefaultFaucetLimit)
	for _, rt := range b.Routes() {
		s.handle(rt.Method+" "+rt.Path, s.moduleRoute(rt))
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", httpx.NotFound(s.routes))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(c int) { w.status = c; w.ResponseWriter.WriteHeader(c) }

// Routes lists the patterns the API serves ("GET /api/v1/health", ...).
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

func (s *Server) handle(pattern string, h http.HandlerFunc) {
	route := pattern
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h(sw, r)
		s.reqs.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// fail writes err with the right status and code.
func (s *Server) fail(w http.ResponseWriter, err error) {
	status, code := s.classify(err)
	httpx.WriteError(w, status, code, err.Error())
}

// failTx writes the refusal of a submitted transaction: 400 for anything
// the transaction got wrong, whatever the error's kind.
func (s *Server) failTx(w http.ResponseWriter, err error) {
	status, code := s.classify(err)
	var ce *errs.Error
	if errors.As(err, &ce) && ce.Kind == errs.KindNotFound {
		status = http.StatusBadRequest
	}
	httpx.WriteError(w, status, code, err.Error())
}

// classify maps err to an HTTP status and error code: a chain error by its
// kind (a transaction refused for naming a missing job is still a bad
// request: submissions use classifyTx).
func (s *Server) classify(err error) (int, string) {
	var ce *errs.Error
	if errors.As(err, &ce) {
		switch ce.Kind {
		case errs.KindInternal:
			return http.StatusInternalServerError, ce.Name
		case errs.KindNotFound:
			return http.StatusNotFound, ce.Name
		}
		return http.StatusBadRequest, ce.Name
	}
	if s.mapErr != nil {
		if status, code, ok := s.mapErr(err); ok {
			return status, code
		}
	}
	s.log.Error("rpc", "err", err)
	return http.StatusInternalServerError, "internal"
}

func badRequest(w http.ResponseWriter, code, msg string) {
	httpx.WriteError(w, http.StatusBadRequest, code, msg)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, s.b.Health())
}

func (s *Server) chain(w http.ResponseWriter, _ *http.Request) {
	v, err := s.b.ChainInfo()
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) blockLatest(w http.ResponseWriter, _ *http.Request) {
	v, err := s.b.Block(0)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) blockAt(w http.ResponseWriter, r *http.Request) {
	h, err := strconv.ParseInt(r.PathValue("height"), 10, 64)
	if err != nil || h < 1 {
		badRequest(w, "invalid_height", "height must be a positive integer, not "+strconv.Quote(r.PathValue("height")))
		return
	}
	v, err := s.b.Block(h)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// explorer returns the backend's explorer queries, or answers 501.
func (s *Server) explorer(w http.ResponseWriter) (ExplorerBackend, bool) {
	eb, ok := s.b.(ExplorerBackend)
	if !ok {
		httpx.WriteError(w, http.StatusNotImplemented, "not_implemented", "this node does not serve explorer queries")
	}
	return eb, ok
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, bool) {
	q := r.URL.Query().Get(name)
	if q == "" {
		return def, true
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

func (s *Server) blockTxs(w http.ResponseWriter, r *http.Request) {
	h, err := strconv.ParseInt(r.PathValue("height"), 10, 64)
	if err != nil || h < 1 {
		badRequest(w, "invalid_height", "height must be a positive integer, not "+strconv.Quote(r.PathValue("height")))
		return
	}
	offset, ok := intParam(r, "offset", 0, 0, 1<<30)
	if !ok {
		badRequest(w, "invalid_offset", "offset must be a non-negative integer")
		return
	}
	limit, ok := intParam(r, "limit", 100, 1, MaxBlockTxsPage)
	if !ok {
		badRequest(w, "invalid_limit", fmt.Sprintf("limit must be an integer from 1 to %d", MaxBlockTxsPage))
		return
	}
	eb, ok := s.explorer(w)
	if !ok {
		return
	}
	v, err := eb.BlockTransactions(h, offset, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) validators(w http.ResponseWriter, r *http.Request) {
	window, ok := intParam(r, "window", 100, 1, MaxValidatorWindow)
	if !ok {
		badRequest(w, "invalid_window", fmt.Sprintf("window must be an integer from 1 to %d", MaxValidatorWindow))
		return
	}
	eb, ok := s.explorer(w)
	if !ok {
		return
	}
	v, err := eb.Validators(window)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) sync(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, s.b.Sync())
}

func (s *Server) head(w http.ResponseWriter, _ *http.Request) {
	v, err := s.b.Head()
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func parseAddr(w http.ResponseWriter, s string) (address.Address, bool) {
	a, err := address.Parse(s)
	if err != nil {
		badRequest(w, "invalid_address", err.Error())
		return a, false
	}
	return a, true
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	a, ok := parseAddr(w, r.PathValue("address"))
	if !ok {
		return
	}
	v, err := s.b.Account(a)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) accountTxs(w http.ResponseWriter, r *http.Request) {
	a, ok := parseAddr(w, r.PathValue("address"))
	if !ok {
		return
	}
	limit := 50
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 1000 {
			badRequest(w, "invalid_limit", "limit must be an integer from 1 to 1000")
			return
		}
		limit = n
	}
	v, err := s.b.Transactions(a, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	var req SubmitRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		badRequest(w, "invalid_request", err.Error())
		return
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(req.Tx))
	if err != nil || len(raw) == 0 {
		badRequest(w, "malformed_tx", "tx must be the base64 of the transaction bytes")
		return
	}
	hash, err := s.b.Submit(r.Context(), raw)
	if err != nil {
		s.failTx(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusAccepted, SubmitResult{TxHash: hash, Status: "pending"})
}

// maxBatchBody bounds a batch submission's body: MaxSubmitBatch
// transfers fit many times over; it is not enough for MaxSubmitBatch
// transactions of the largest size, which must be sent in smaller batches.
const maxBatchBody = 8 << 20

// submitBatch admits many transactions in one request. The request as a
// whole is refused (400) only when it is malformed; otherwise every
// transaction gets its own outcome and the answer is 200.
func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request) {
	var req SubmitBatchRequest
	if err := httpx.DecodeJSONLimit(r, &req, maxBatchBody); err != nil {
		badRequest(w, "invalid_request", err.Error())
		return
	}
	switch {
	case len(req.Txs) == 0:
		badRequest(w, "invalid_request", "txs must hold at least one transaction")
		return
	case len(req.Txs) > MaxSubmitBatch:
		badRequest(w, "batch_too_large", fmt.Sprintf("%d transactions, at most %d per request", len(req.Txs), MaxSubmitBatch))
		return
	}
	raws := make([][]byte, len(req.Txs))
	for i, t := range req.Txs {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(t))
		if err != nil || len(raw) == 0 {
			badRequest(w, "malformed_tx", fmt.Sprintf("txs[%d] must be the base64 of the transaction bytes", i))
			return
		}
		raws[i] = raw
	}
	res := SubmitBatchResult{Results: make([]SubmitBatchEntry, len(raws))}
	for i, o := range s.b.SubmitMany(r.Context(), raws) {
		e := &res.Results[i]
		e.TxHash = o.Hash
		if o.Err != nil {
			_, code := s.classify(o.Err)
			e.Status, e.Error = "rejected", &httpx.ErrorDetail{Code: code, Message: o.Err.Error()}
			res.Rejected++
			continue
		}
		e.Status = "pending"
		res.Accepted++
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}

func (s *Server) txGet(w http.ResponseWriter, r *http.Request) {
	var req TxGetRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		badRequest(w, "invalid_request", err.Error())
		return
	}
	s.txReply(w, req.TxHash)
}

func (s *Server) txByPath(w http.ResponseWriter, r *http.Request) { s.txReply(w, r.PathValue("hash")) }

func (s *Server) txReply(w http.ResponseWriter, hash string) {
	if hash == "" {
		badRequest(w, "invalid_hash", "tx_hash is required")
		return
	}
	v, err := s.b.Tx(hash)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	v, err := s.b.Proof(r.PathValue("hash"))
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, v)
}

// request is a module.Request over an HTTP request.
type request struct{ r *http.Request }

func (q request) PathValue(name string) string { return q.r.PathValue(name) }
func (q request) Param(name string) string     { return q.r.URL.Query().Get(name) }

// moduleRoute serves a module's query against committed state.
func (s *Server) moduleRoute(rt module.Route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var v any
		err := s.b.Query(func(q module.Query) error {
			var err error
			v, err = rt.Handle(q, request{r})
			return err
		})
		if err != nil {
			s.fail(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	}
}

// audit runs every invariant at the committed height: 200 with the
// findings whether or not they hold (ok says which); the CLI exits
// non-zero on a broken one.
func (s *Server) audit(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, s.b.Audit())
}

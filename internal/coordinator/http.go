package coordinator

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
)

// JobView is a job as the API shows it to its tenant.
type JobView struct {
	JobID     string      `json:"job_id"`
	Status    string      `json:"status"`
	Model     string      `json:"model"`
	Kind      string      `json:"kind"`
	Payment   string      `json:"payment"`
	MaxPrice  coin.Amount `json:"max_price"`
	MaxTokens int         `json:"max_tokens"`
	Miner     string      `json:"miner,omitempty"`
	Attempt   int         `json:"attempt"`
	Waiting   string      `json:"waiting,omitempty"` // why a queued job waits
	Error     string      `json:"error,omitempty"`
	ErrorCode string      `json:"error_code,omitempty"` // stable code of a failure, e.g. payment_not_confirmed
	// PaidUntil is how long the job's output may be shown before the chain
	// confirms its payment; PaymentConfirmed says the chain has locked the
	// escrow until the TTL. OutputHeld says there is output the gate holds.
	PaidUntil        *time.Time   `json:"paid_until,omitempty"`
	PaymentConfirmed bool         `json:"payment_confirmed"`
	OutputHeld       bool         `json:"output_held,omitempty"`
	TokensIn         int          `json:"tokens_in"`
	TokensOut        int          `json:"tokens_out"`
	FinishReason     string       `json:"finish_reason,omitempty"`
	Created          time.Time    `json:"created"`
	Started          *time.Time   `json:"started,omitempty"`
	Completed        *time.Time   `json:"completed,omitempty"`
	Expires          time.Time    `json:"expires"`
	Settlement       *Settlement  `json:"settlement,omitempty"`
	Result           *string      `json:"result,omitempty"`
	Receipt          *ReceiptView `json:"receipt,omitempty"`
	Split            bool         `json:"split,omitempty"`
	StageSettlement  []byte       `json:"stage_settlement,omitempty"` // a split job's jobs/settle_stages body (split.go)
	// Needs is the hardware a text job required of its miner.
	Needs *sched.Resources `json:"needs,omitempty"`
	// Sampling is a text job's sampling request, which `aitbc receipt
	// verify --recompute` checks the miner's attestation against.
	Sampling *SamplingView `json:"sampling,omitempty"`
}

// Settlement is where a job's money went.
type Settlement struct {
	CreateTx string      `json:"create_tx,omitempty"`
	AssignTx string      `json:"assign_tx,omitempty"`
	SettleTx string      `json:"settle_tx,omitempty"`
	Paid     coin.Amount `json:"paid"`
	Fee      coin.Amount `json:"protocol_fee"` // split with the block's fees (burn, treasury, proposer)
	Refund   coin.Amount `json:"refund"`
}

// ReceiptView is a receipt in JSON, with its canonical bytes so that anyone
// can verify it offline (aitbc receipt verify).
type ReceiptView struct {
	Hash       string      `json:"hash"`
	JobID      string      `json:"job_id"`
	ChainID    string      `json:"chain_id"`
	Miner      string      `json:"miner"`
	Customer   string      `json:"customer"`
	Model      string      `json:"model"`
	PromptHash string      `json:"prompt_hash"`
	ResultHash string      `json:"result_hash"`
	TokensIn   uint64      `json:"tokens_in"`
	TokensOut  uint64      `json:"tokens_out"`
	Start      time.Time   `json:"start"`
	End        time.Time   `json:"end"`
	Price      coin.Amount `json:"price"`
	Signature  string      `json:"signature"`
	CBOR       []byte      `json:"cbor"` // base64 in JSON
}

// NewReceiptView describes canonical receipt bytes.
func NewReceiptView(b []byte) (*ReceiptView, error) {
	r, err := jobs.DecodeReceipt(b)
	if err != nil {
		return nil, err
	}
	m, _ := address.FromBytes(r.Miner)
	c, _ := address.FromBytes(r.Customer)
	return &ReceiptView{
		Hash: r.HashHex(), JobID: hex.EncodeToString(r.JobID), ChainID: r.ChainID, Miner: m.String(), Customer: c.String(),
		Model: r.Model, PromptHash: hex.EncodeToString(r.PromptHash), ResultHash: hex.EncodeToString(r.ResultHash),
		TokensIn: r.TokensIn, TokensOut: r.TokensOut, Start: time.UnixMilli(r.StartMs).UTC(), End: time.UnixMilli(r.EndMs).UTC(),
		Price: r.Price, Signature: hex.EncodeToString(r.Sig), CBOR: b,
	}, nil
}

func view(j *store.Job, withResult bool) JobView {
	v := JobView{
		JobID: j.ID, Status: j.Status, Model: j.Model, Kind: j.Kind, Payment: j.Payment, MaxPrice: j.MaxPrice,
		MaxTokens: j.MaxTokens, Miner: addrOrZero(j.Miner), Attempt: j.Attempt, TokensIn: j.TokensIn, TokensOut: j.TokensOut,
		FinishReason: j.FinishReason, Created: j.Created, Expires: j.Expires,
		ErrorCode: j.ErrorCode, PaymentConfirmed: j.PaymentConfirmed, OutputHeld: j.OutputHeld, Split: j.Split,
		Needs: (*sched.Resources)(j.Needs), Sampling: samplingOf(j),
	}
	if !j.PaidUntil.IsZero() {
		t := j.PaidUntil
		v.PaidUntil = &t
	}
	if j.Status == store.StatusQueued {
		v.Waiting = j.Error
	} else {
		v.Error = j.Error
	}
	if !j.Started.IsZero() {
		t := j.Started
		v.Started = &t
	}
	if !j.Completed.IsZero() {
		t := j.Completed
		v.Completed = &t
	}
	if j.CreateTx != "" || j.AssignTx != "" || j.SettleTx != "" {
		v.Settlement = &Settlement{CreateTx: j.CreateTx, AssignTx: j.AssignTx, SettleTx: j.SettleTx, Paid: j.Paid, Fee: j.ProtocolFee, Refund: j.Refund}
	}
	if withResult { // j comes gated: a held result is empty here
		if (j.Status == store.StatusCompleted || j.Status == store.StatusSettled) && !j.OutputHeld {
			r := j.Result
			v.Result = &r
		}
		if len(j.Receipt) > 0 && j.Split {
			v.StageSettlement = j.Receipt
		} else if len(j.Receipt) > 0 {
			v.Receipt, _ = NewReceiptView(j.Receipt)
		}
	}
	return v
}

// Routes lists the API's patterns ("GET /v1/health", ...).
func (s *Service) Routes() []string {
	s.Handler()
	return append([]string(nil), s.routes...)
}

// Handler returns the coordinator's HTTP API.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	var routes []string
	handle := func(pattern string, h http.HandlerFunc) {
		routes = append(routes, pattern)
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w, status: 200}
			h(sw, r)
			s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(sw.status)).Inc()
			s.metrics.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		})
	}
	handle("GET /v1/health", s.hHealth)
	// The seeds' nginx sends /health and /api/v1/health here; behind no
	// proxy they answer the same.
	handle("GET /health", s.hHealth)
	handle("GET /api/v1/health", s.hHealth)
	handle("POST /v1/tenants", s.hRegister)
	handle("GET /v1/tenants/keys", s.hKeys)
	handle("DELETE /v1/tenants/keys/{id}", s.hRevokeKey)
	handle("POST /v1/jobs", s.hSubmit)
	handle("POST /v1/jobs/create", s.hSubmit)
	handle("GET /v1/jobs", s.hList)
	handle("GET /v1/jobs/{id}", s.hJob(false))
	handle("GET /v1/jobs/{id}/status", s.hJob(false))
	handle("GET /v1/jobs/{id}/results", s.hJob(true))
	handle("GET /v1/receipts", s.hReceipts)
	handle("GET /v1/miners", s.hMiners)
	handle("POST /v1/resources", s.hAllocate)
	handle("GET /v1/resources", s.hAllocations)
	handle("DELETE /v1/resources/{agent}", s.hDeallocate)
	handle("GET /v1/resources/utilization", s.hUtilization)
	handle("POST /v1/rentals/{id}/allocation", s.hAllocateLease)
	handle("GET /v1/admin/jobs", s.hAdminJobs)
	// The marketplace (services.go) and job files (files.go).
	s.registerServiceRoutes(handle)
	s.registerFileRoutes(handle)
	// audits.go: a data or training job's input, for a spot check's exact re-execution.
	handle("GET /v1/audits/jobs/{id}/input", s.hAuditInput)
	handle("GET /v1/audits/jobs/{id}", s.hAuditJob)       // audits.go: a spot check's verifier fetches what it re-runs
	mux.HandleFunc("GET /v1/jobs/{id}/stream", s.hStream) // WebSocket: not timed
	mux.HandleFunc("GET /v1/miners/connect", s.ServeMiner)
	routes = append(routes, "GET /v1/jobs/{id}/stream", "GET /v1/miners/connect")
	s.registerCompat(mux, handle)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", httpx.NotFound(routes))
	s.routes = routes
	return mux
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(c int) { w.status = c; w.ResponseWriter.WriteHeader(c) }

// Flush lets streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// fail writes err as the API's error body, with the status and code of
// the error table.
func (s *Service) fail(w http.ResponseWriter, err error) {
	status, code := HTTPStatus(err)
	msg := err.Error()
	var e *Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	if status == http.StatusInternalServerError {
		s.log.Error("api", "err", err)
	}
	httpx.WriteError(w, status, code, msg)
}

// tenant authenticates the request's X-API-Key (or a Bearer token, as
// OpenAI clients send it).
func (s *Service) tenant(w http.ResponseWriter, r *http.Request) *store.Tenant {
	key := r.Header.Get("X-API-Key")
	if key == "" {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			key = strings.TrimPrefix(a, "Bearer ")
		}
	}
	t, err := s.Authenticate(r.Context(), key)
	if err != nil {
		s.fail(w, err)
		return nil
	}
	s.metrics.tenantRequest(t.ID)
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.allowWrite(r.Context(), w, t.ID) {
		return nil
	}
	return t
}

// hKeys is GET /v1/tenants/keys: the caller's API keys by id, with
// creation and last use.
func (s *Service) hKeys(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	keys, err := s.TenantKeys(r.Context(), t)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"tenant_id": t.ID, "keys": keys})
}

// hRevokeKey is DELETE /v1/tenants/keys/{id}: revoke one of the caller's
// API keys (the one in use too).
func (s *Service) hRevokeKey(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	if err := s.RevokeKey(r.Context(), t, r.PathValue("id")); err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"tenant_id": t.ID, "key_id": r.PathValue("id"), "revoked": true})
}

// failDecode answers a request body that could not be decoded: 413 when
// it is over the limit, 400 invalid_request otherwise.
func (s *Service) failDecode(w http.ResponseWriter, err error) {
	if errors.Is(err, httpx.ErrBodyTooLarge) {
		s.fail(w, errf(ErrBodyTooLarge, "%s", err.Error()))
		return
	}
	s.fail(w, errf(ErrInvalidRequest, "%s", err.Error()))
}

// Health is GET /v1/health.
type Health struct {
	Status      string `json:"status"`
	Coordinator string `json:"coordinator"`
	ChainID     string `json:"chain_id"`
	Miners      int    `json:"miners"`
	Queued      int    `json:"queued"`
	Active      int    `json:"active"`
	Uptime      string `json:"uptime"`
}

func (s *Service) hHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	h := Health{Status: "ok", Coordinator: s.cfg.Address.String(), ChainID: s.chainID, Miners: len(s.miners),
		Queued: s.queue.len(), Active: len(s.live), Uptime: s.cfg.Now().Sub(s.started).Round(time.Second).String()}
	s.mu.Unlock()
	httpx.WriteJSON(w, http.StatusOK, h)
}

func (s *Service) hRegister(w http.ResponseWriter, r *http.Request) {
	if !allow(w, s.guard.registers, httpx.ClientAddr(r), "too many registrations from "+httpx.ClientAddr(r)) {
		return
	}
	var req RegisterRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		s.failDecode(w, err)
		return
	}
	t, key, err := s.Register(r.Context(), req)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, map[string]any{"tenant_id": t.ID, "name": t.Name, "address": t.Address, "api_key": key})
}

// submitBody is JobRequest plus the seed documents' job shape
// (customer_id, budget.max_cost), which maps onto it.
type submitBody struct {
	JobRequest
	CustomerID string `json:"customer_id,omitempty"` // informational: the API key decides the tenant
	Budget     *struct {
		MaxCost  coin.Amount `json:"max_cost"`
		Currency string      `json:"currency,omitempty"`
	} `json:"budget,omitempty"`
	Requirements map[string]any `json:"requirements,omitempty"`
}

func (s *Service) hSubmit(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	var b submitBody
	if err := httpx.DecodeJSON(r, &b); err != nil {
		s.failDecode(w, err)
		return
	}
	if b.Budget != nil && b.MaxPrice == 0 {
		if b.Budget.Currency != "" && b.Budget.Currency != coin.Denom {
			s.fail(w, errf(ErrInvalidRequest, "budget currency must be AITBC"))
			return
		}
		b.MaxPrice = b.Budget.MaxCost
	}
	if b.Prompt == "" && len(b.Messages) == 0 && b.Requirements != nil {
		if p, ok := b.Requirements["prompt"].(string); ok {
			b.Prompt = p
		} else {
			s.fail(w, errf(ErrUnsupportedJob, "only inference jobs (a prompt or messages) are supported; training and rental come with the marketplace"))
			return
		}
	}
	if err := s.checkService(r.Context(), t, &b.JobRequest); err != nil { // services.go
		s.marketFail(w, err)
		return
	}
	j, err := s.Submit(r.Context(), t, b.JobRequest)
	if err != nil {
		s.fail(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, view(j, false))
}

func (s *Service) hList(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	limit, ok := s.limitParam(w, r)
	if !ok {
		return
	}
	list, err := s.Jobs(r.Context(), t, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]JobView, 0, len(list))
	for _, j := range list {
		out = append(out, view(j, false))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

func (s *Service) limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	limit := 50
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, errf(ErrInvalidLimit, "limit must be an integer from 1 to 1000"))
			return 0, false
		}
		limit = n
	}
	return limit, true
}

// hJob answers GET /v1/jobs/{id}[/status], and with withResult
// /v1/jobs/{id}/results.
func (s *Service) hJob(withResult bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t := s.tenant(w, r)
		if t == nil {
			return
		}
		j, err := s.Job(r.Context(), t, r.PathValue("id"))
		if err != nil {
			s.fail(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, view(j, withResult))
	}
}

func (s *Service) hReceipts(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	limit, ok := s.limitParam(w, r)
	if !ok {
		return
	}
	var list []*store.Job
	if id := r.URL.Query().Get("job_id"); id != "" {
		j, err := s.Job(r.Context(), t, id)
		if err != nil {
			s.fail(w, err)
			return
		}
		list = []*store.Job{j}
	} else {
		var err error
		if list, err = s.Jobs(r.Context(), t, limit); err != nil {
			s.fail(w, err)
			return
		}
	}
	out := []*ReceiptView{}
	for _, j := range list {
		if len(j.Receipt) == 0 {
			continue
		}
		if rv, err := NewReceiptView(j.Receipt); err == nil {
			out = append(out, rv)
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"receipts": out})
}

// MinerView is a connected miner as GET /v1/miners shows it.
type MinerView struct {
	Address      string      `json:"address"`
	Models       []string    `json:"models"`
	Slots        int         `json:"slots"`
	Running      int         `json:"running"`
	Backend      string      `json:"backend"`
	Hardware     string      `json:"hardware"`
	GPU          string      `json:"gpu,omitempty"`           // as registered on chain: what the scheduler matches requirements against
	GPUMemoryMB  uint64      `json:"gpu_memory_mb,omitempty"` // as registered on chain
	PricePer1k   coin.Amount `json:"price_per_1k_tokens"`
	TokensPerSec float64     `json:"tokens_per_sec"`
	FirstTokenMs *float64    `json:"first_token_ms,omitempty"` // moving average from dispatch to the first streamed token; absent until one is seen
	Connected    time.Time   `json:"connected"`
}

// ConnectedMiners lists the miners with an open session.
func (s *Service) ConnectedMiners() []MinerView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []MinerView{}
	for _, mc := range s.miners {
		v := MinerView{Address: mc.addr.String(), Models: mc.models, Slots: mc.slots, Running: len(mc.running),
			Backend: mc.backend, Hardware: mc.hardware, PricePer1k: s.registry[mc.addr].PricePer1k, TokensPerSec: mc.tokensPerSec, Connected: mc.connected,
			GPU: s.registry[mc.addr].GPU, GPUMemoryMB: s.registry[mc.addr].GPUMemoryMB}
		if mc.firstTokenMs > 0 {
			ms := mc.firstTokenMs
			v.FirstTokenMs = &ms
		}
		out = append(out, v)
	}
	return out
}

func (s *Service) hMiners(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"miners": s.ConnectedMiners()})
}

// hStream is ws://…/v1/jobs/{id}/stream: the job's status, the text
// released so far as one token event (its seq is the last token's), then
// every event until done, none dropped.
func (s *Service) hStream(w http.ResponseWriter, r *http.Request) {
	t := s.tenant(w, r)
	if t == nil {
		return
	}
	sub, err := s.Follow(r.Context(), t, r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	defer sub.Cancel()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := c.CloseRead(context.Background())
	write := func(e Event) bool {
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		return wsjson.Write(wctx, c, e) == nil
	}
	j := sub.Job
	if !write(Event{Type: EventStatus, Status: j.Status, Miner: addrOrZero(j.Miner), Attempt: sub.Attempt}) {
		return
	}
	if sub.Text != "" && !write(Event{Type: EventToken, Text: sub.Text, Seq: sub.Seq, Attempt: sub.Attempt}) {
		return
	}
	for {
		select {
		case e, ok := <-sub.Events:
			if !ok {
				c.Close(websocket.StatusNormalClosure, "done")
				return
			}
			if !write(e) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

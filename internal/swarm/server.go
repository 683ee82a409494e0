package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Error codes of the span server's API (the body's error.code).
const (
	CodeInvalid        = "invalid_request"
	CodeUnknownModel   = "unknown_model"
	CodeSpanNotServed  = "span_not_served"
	CodeShape          = "shape_mismatch"
	CodeSpanMismatch   = "session_span_mismatch"
	CodePosition       = "position_out_of_order"
	CodeTooManySession = "too_many_sessions"
	CodeCacheFull      = "cache_full"
	CodeNoSession      = "unknown_session"
)

// ServedSpan is one span a Server serves: layers [First, Last) of Model
// (First 0 and Last = the model's layer count serve the whole model).
type ServedSpan struct {
	Name        string
	Model       *engine.Model
	First, Last int
}

// ServerConfig bounds a Server's sessions.
type ServerConfig struct {
	// MaxSessions is the most sessions held at once (default 64).
	MaxSessions int
	// MaxCacheBytes bounds the KV caches of all sessions together
	// (default 1 GiB); a session that would exceed it is refused.
	MaxCacheBytes int64
	// IdleTimeout drops a session unused for this long (default 5 min):
	// a driver that died does not hold memory forever.
	IdleTimeout time.Duration
	// Threads per matrix product in each session (0: all cores).
	Threads int
	// Signer signs stage receipts (the agent's key); nil: none are given.
	Signer Signer
	// Observe, when set, is told of every forward request that succeeded:
	// the rows it ran and how long it took. A miner's oracle reporter
	// counts its span work with it (a task per request, its rows as
	// processed tokens; docs/AGENTS.md).
	Observe func(rows int, took time.Duration)
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.MaxSessions <= 0 {
		c.MaxSessions = 64
	}
	if c.MaxCacheBytes <= 0 {
		c.MaxCacheBytes = 1 << 30
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	return c
}

// Server is a span server: it runs layers of the models it serves for
// inference sessions, keeping each session's KV cache between requests.
type Server struct {
	cfg   ServerConfig
	spans []ServedSpan
	log   *slog.Logger
	now   func() time.Time

	mu         sync.Mutex // guards the fields below; never held during compute
	sessions   map[string]*spanSession
	cacheBytes int64
	processed  uint64
	busy       time.Duration
}

type spanSession struct {
	mu          sync.Mutex // serialises the session's requests
	s           *engine.Session
	model       string
	first, last int
	bytes       int64
	next        int // the next position the session expects (or less: a rerun)
	used        time.Time
	closed      bool
	stage       *stageState // nil: the session names no job
}

// NewServer returns a server for spans. Each span's range must lie in its
// model.
func NewServer(spans []ServedSpan, cfg ServerConfig, log *slog.Logger) (*Server, error) {
	if len(spans) == 0 {
		return nil, errors.New("swarm: a span server needs at least one span")
	}
	for _, sp := range spans {
		n := sp.Model.Config().Layers
		if sp.First < 0 || sp.Last > n || sp.First >= sp.Last {
			return nil, fmt.Errorf("swarm: %w: layers %d-%d of %s's %d", engine.ErrLayerRange, sp.First, sp.Last-1, sp.Name, n)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg.withDefaults(), spans: spans, log: log, now: time.Now, sessions: map[string]*spanSession{}}, nil
}

// Handler returns the server's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	// Literal patterns: docs/api's test reads them from this file.
	mux.HandleFunc("GET /v1/spans", s.handleInfo)
	mux.HandleFunc("POST /v1/spans/forward", s.handleForward)
	mux.HandleFunc("DELETE /v1/spans/sessions/{id}", s.handleClose)
	mux.HandleFunc("/", httpx.NotFound([]string{"GET " + PathInfo, "POST " + PathForward, "DELETE " + PathSession}))
	return mux
}

// Info reports the served spans and the load.
func (s *Server) Info() Info {
	var in Info
	for _, sp := range s.spans {
		c := sp.Model.Config()
		tok := sp.Model.Tokenizer()
		in.Spans = append(in.Spans, SpanInfo{Model: sp.Name, First: sp.First, Last: sp.Last, Layers: c.Layers, Dim: c.Dim, Vocab: c.VocabSize, BOS: tok.BOS(), EOS: tok.EOS()})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in.Sessions, in.CacheBytes, in.TokensProcessed = len(s.sessions), s.cacheBytes, s.processed
	if s.busy > 0 {
		in.LayerTokensPerSecond = float64(s.processed) / s.busy.Seconds()
	}
	return in
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, s.Info())
}

func (s *Server) handleClose(w http.ResponseWriter, r *http.Request) {
	if !s.drop(r.PathValue("id")) {
		httpx.WriteError(w, http.StatusNotFound, CodeNoSession, "no session "+r.PathValue("id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// apiError is an error with its HTTP status and code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func fail(status int, code, format string, args ...any) error {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) handleForward(w http.ResponseWriter, r *http.Request) {
	var req ForwardRequest
	if err := httpx.DecodeJSONLimit(r, &req, maxForwardBody); err != nil {
		httpx.WriteDecodeError(w, err)
		return
	}
	start := s.now()
	resp, err := s.Forward(r.Context(), req)
	if err == nil && s.cfg.Observe != nil {
		s.cfg.Observe(req.Rows, s.now().Sub(start))
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			httpx.WriteError(w, ae.status, ae.code, ae.msg)
			return
		}
		s.log.Error("span forward", "err", err)
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, resp)
}

// span finds the served span holding layers [first, last) of model.
func (s *Server) span(model string, first, last int) (ServedSpan, error) {
	known := false
	for _, sp := range s.spans {
		if sp.Name != model {
			continue
		}
		known = true
		if sp.First <= first && last <= sp.Last {
			return sp, nil
		}
	}
	if !known {
		return ServedSpan{}, fail(http.StatusNotFound, CodeUnknownModel, "model %q is not served here", model)
	}
	return ServedSpan{}, fail(http.StatusNotFound, CodeSpanNotServed, "layers %d-%d of %s are not served here", first, last-1, model)
}

// Forward runs one request (see ForwardRequest).
func (s *Server) Forward(ctx context.Context, req ForwardRequest) (ForwardResponse, error) {
	if req.Session == "" || len(req.Session) > MaxSessionID {
		return ForwardResponse{}, fail(http.StatusBadRequest, CodeInvalid, "session id must be 1 to %d characters", MaxSessionID)
	}
	if req.First < 0 || req.First >= req.Last {
		return ForwardResponse{}, fail(http.StatusBadRequest, CodeInvalid, "layers [%d, %d) are empty", req.First, req.Last)
	}
	if req.Rows < 1 || req.Rows > MaxRows {
		return ForwardResponse{}, fail(http.StatusBadRequest, CodeShape, "rows must be 1 to %d, got %d", MaxRows, req.Rows)
	}
	if _, err := checkJob(req); err != nil {
		return ForwardResponse{}, err
	}
	sp, err := s.span(req.Model, req.First, req.Last)
	if err != nil {
		return ForwardResponse{}, err
	}
	c := sp.Model.Config()
	if req.Pos < 0 || req.Pos+req.Rows > c.SeqLen {
		return ForwardResponse{}, fail(http.StatusBadRequest, CodePosition, "positions %d..%d outside the context of %d", req.Pos, req.Pos+req.Rows-1, c.SeqLen)
	}
	// The input: token ids for the first layer, hidden states otherwise.
	hidden := make([]float32, req.Rows*c.Dim)
	if req.First == 0 {
		if req.Hidden != "" || len(req.Tokens) != req.Rows {
			return ForwardResponse{}, fail(http.StatusBadRequest, CodeShape, "layer 0 takes %d token ids and no hidden states, got %d tokens", req.Rows, len(req.Tokens))
		}
		// Checked before anything runs: a bad id must not leave the rows
		// before it in the cache.
		for _, t := range req.Tokens {
			if t < 0 || t >= c.VocabSize {
				return ForwardResponse{}, fail(http.StatusBadRequest, CodeInvalid, "token id %d outside the vocabulary of %d", t, c.VocabSize)
			}
		}
	} else {
		if len(req.Tokens) != 0 || req.Dim != c.Dim {
			return ForwardResponse{}, fail(http.StatusBadRequest, CodeShape, "layer %d takes hidden states of dim %d and no tokens, got dim %d and %d tokens", req.First, c.Dim, req.Dim, len(req.Tokens))
		}
		if hidden, err = DecodeFloats(req.Hidden, req.Rows*c.Dim); err != nil {
			return ForwardResponse{}, fail(http.StatusBadRequest, CodeShape, "%v", err)
		}
	}
	ss, err := s.session(req, sp)
	if err != nil {
		return ForwardResponse{}, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return ForwardResponse{}, fail(http.StatusConflict, CodeNoSession, "session %s expired", req.Session)
	}
	if req.Pos > ss.next {
		return ForwardResponse{}, fail(http.StatusConflict, CodePosition, "position %d but the session holds %d positions", req.Pos, ss.next)
	}
	if err := ss.bindJob(req); err != nil {
		return ForwardResponse{}, err
	}
	if ss.stage != nil {
		ss.stage.input(req, hidden, c.Dim)
	}
	start := time.Now()
	for i := range req.Rows {
		if err := ctx.Err(); err != nil {
			return ForwardResponse{}, err
		}
		row := hidden[i*c.Dim : (i+1)*c.Dim]
		if req.First == 0 {
			if err := ss.s.Embed(req.Tokens[i], row); err != nil {
				return ForwardResponse{}, fail(http.StatusBadRequest, CodeInvalid, "%v", err)
			}
		}
		if err := ss.s.Layers(req.First, req.Last, row, req.Pos+i); err != nil {
			return ForwardResponse{}, fmt.Errorf("layers: %w", err)
		}
		ss.next = req.Pos + i + 1
	}
	var resp ForwardResponse
	resp.Rows = req.Rows
	if req.Last == c.Layers {
		logits, err := ss.s.Head(hidden[(req.Rows-1)*c.Dim:])
		if err != nil {
			return ForwardResponse{}, fmt.Errorf("head: %w", err)
		}
		resp.Vocab, resp.Logits = len(logits), EncodeFloats(logits)
	} else {
		resp.Dim, resp.Hidden = c.Dim, EncodeFloats(hidden)
	}
	if ss.stage != nil {
		if req.Last == c.Layers {
			ss.stage.output(req.Pos+req.Rows-1, resp.Logits, nil, 0)
		} else {
			ss.stage.output(req.Pos, "", hidden, c.Dim)
		}
		ss.stage.tokens += uint64(req.Rows)
		if resp.Receipt, err = ss.stage.receipt(req, s.cfg.Signer); err != nil {
			return ForwardResponse{}, err
		}
	}
	took := time.Since(start)
	s.mu.Lock()
	s.processed += uint64(req.Rows * (req.Last - req.First))
	s.busy += took
	ss.used = s.now()
	s.mu.Unlock()
	return resp, nil
}

// session returns the request's session, making it (within the limits)
// on its first request. Sessions are keyed by id: one id holds one range.
func (s *Server) session(req ForwardRequest, sp ServedSpan) (*spanSession, error) {
	s.expire()
	s.mu.Lock()
	ss, ok := s.sessions[req.Session]
	s.mu.Unlock()
	if ok {
		if ss.model != req.Model || ss.first != req.First || ss.last != req.Last {
			return nil, fail(http.StatusConflict, CodeSpanMismatch, "session %s holds layers %d-%d of %s", req.Session, ss.first, ss.last-1, ss.model)
		}
		return ss, nil
	}
	if req.Pos != 0 {
		return nil, fail(http.StatusConflict, CodePosition, "a new session starts at position 0, got %d", req.Pos)
	}
	c := sp.Model.Config()
	bytes := int64(2*(req.Last-req.First)) * int64(c.SeqLen) * int64(c.KVDim()) * 4
	// Reserve the room before allocating, so that concurrent first
	// requests cannot overshoot the limits; allocation is outside the lock.
	s.mu.Lock()
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.mu.Unlock()
		return nil, fail(http.StatusServiceUnavailable, CodeTooManySession, "%d sessions are open, the limit", s.cfg.MaxSessions)
	}
	if s.cacheBytes+bytes > s.cfg.MaxCacheBytes {
		s.mu.Unlock()
		return nil, fail(http.StatusServiceUnavailable, CodeCacheFull, "a session of %d cache bytes does not fit (%d of %d used)", bytes, s.cacheBytes, s.cfg.MaxCacheBytes)
	}
	if _, dup := s.sessions[req.Session]; dup {
		s.mu.Unlock()
		return nil, fail(http.StatusConflict, CodeSpanMismatch, "session %s was opened concurrently", req.Session)
	}
	ss = &spanSession{model: req.Model, first: req.First, last: req.Last, bytes: bytes, used: s.now()}
	ss.mu.Lock() // nobody uses it before the engine session exists
	s.sessions[req.Session] = ss
	s.cacheBytes += bytes
	s.mu.Unlock()
	es, err := sp.Model.NewSession(engine.SessionOptions{Threads: s.cfg.Threads, FirstLayer: req.First, LastLayer: req.Last})
	if err != nil {
		ss.closed = true
		ss.mu.Unlock()
		s.drop(req.Session)
		return nil, fmt.Errorf("new session: %w", err)
	}
	ss.s = es
	ss.mu.Unlock()
	return ss, nil
}

// drop closes and forgets session id.
func (s *Server) drop(id string) bool {
	s.mu.Lock()
	ss, ok := s.sessions[id]
	if ok {
		delete(s.sessions, id)
		s.cacheBytes -= ss.bytes
	}
	s.mu.Unlock()
	if ok {
		ss.mu.Lock()
		ss.closed = true
		if ss.s != nil {
			ss.s.Close()
		}
		ss.mu.Unlock()
	}
	return ok
}

// expire drops the sessions idle for longer than IdleTimeout.
func (s *Server) expire() {
	now := s.now()
	var idle []string
	s.mu.Lock()
	for id, ss := range s.sessions {
		if now.Sub(ss.used) > s.cfg.IdleTimeout {
			idle = append(idle, id)
		}
	}
	s.mu.Unlock()
	for _, id := range idle {
		s.drop(id)
	}
}

// Spans returns the served spans.
func (s *Server) Spans() []ServedSpan { return append([]ServedSpan(nil), s.spans...) }

package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/sched"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/version"
)

// registerCompat adds the OpenAI-compatible (/v1/chat/completions,
// /v1/completions, /v1/models) and Ollama-compatible (/api/generate,
// /api/chat, /api/tags) endpoints. Jobs made through them are ordinary
// jobs of the tenant whose API key is given (X-API-Key, or
// "Authorization: Bearer <key>" as OpenAI clients send it), paid from the
// tenant's deposit, with receipts and settlement as any other.
//
// Each family answers errors in its own clients' shape: OpenAI's
// {"error":{"message","type","param","code"}} and Ollama's
// {"error":"..."}, whichever layer refused the request (authentication,
// rate limits, validation), so that their client libraries show the
// message instead of "[object Object]".
func (s *Service) registerCompat(_ *http.ServeMux, handle func(string, http.HandlerFunc)) {
	handle("GET /v1/models", openAIErrors(s.hModels))
	handle("GET /v1/models/{id}", openAIErrors(s.hModel))
	handle("POST /v1/chat/completions", openAIErrors(s.hOpenAI(true)))
	handle("POST /v1/completions", openAIErrors(s.hOpenAI(false)))
	handle("POST /v1/images/generations", openAIErrors(s.hImages)) // images.go
	handle("GET /api/tags", ollamaErrors(s.hOllamaTags))
	handle("POST /api/show", ollamaErrors(s.hOllamaShow))
	handle("GET /api/ps", ollamaErrors(s.hOllamaPS))
	handle("GET /api/version", ollamaErrors(s.hOllamaVersion))
	handle("POST /api/generate", ollamaErrors(s.hOllama(false)))
	handle("POST /api/chat", ollamaErrors(s.hOllama(true)))
}

// openAIType is the OpenAI error type of an HTTP status.
func openAIType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusPaymentRequired:
		return "insufficient_quota"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// openAIErrors answers h's errors in OpenAI's shape: the same code and
// message, with the type OpenAI clients branch on, and param.
func openAIErrors(h http.HandlerFunc) http.HandlerFunc {
	return reshapeErrors(h, func(status int, code, msg string) any {
		return map[string]any{"error": map[string]any{"message": msg, "type": openAIType(status), "param": nil, "code": code}}
	})
}

// ollamaErrors answers h's errors in Ollama's shape, {"error": "..."}.
func ollamaErrors(h http.HandlerFunc) http.HandlerFunc {
	return reshapeErrors(h, func(_ int, _, msg string) any { return map[string]string{"error": msg} })
}

// maxErrorBody bounds what reshapeErrors holds back: error bodies are
// small; anything larger passes through as it was written.
const maxErrorBody = 64 << 10

// reshapeErrors runs h and, when it answers 4xx or 5xx with the
// coordinator's {"error":{"code","message"}}, rewrites the body as shape
// returns it. Successful answers and streams pass through untouched.
func reshapeErrors(h http.HandlerFunc, shape func(status int, code, msg string) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ew := &errorShaper{ResponseWriter: w}
		h(ew, r)
		ew.finish(shape)
	}
}

type errorShaper struct {
	http.ResponseWriter
	status   int // the held error status; 0 while passing through
	buf      []byte
	overflow bool
}

func (e *errorShaper) WriteHeader(code int) {
	if code >= 400 && e.status == 0 {
		e.status = code // held until finish: the body may be rewritten
		return
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorShaper) Write(b []byte) (int, error) {
	if e.status == 0 {
		return e.ResponseWriter.Write(b)
	}
	if len(e.buf)+len(b) > maxErrorBody {
		e.overflow = true
	}
	if !e.overflow {
		e.buf = append(e.buf, b...)
	}
	return len(b), nil
}

// Flush passes through for streams; a held error is not flushed early.
func (e *errorShaper) Flush() {
	if f, ok := e.ResponseWriter.(http.Flusher); ok && e.status == 0 {
		f.Flush()
	}
}

func (e *errorShaper) finish(shape func(status int, code, msg string) any) {
	if e.status == 0 {
		return
	}
	var body httpx.ErrorBody
	if !e.overflow && json.Unmarshal(e.buf, &body) == nil && body.Error.Code != "" {
		e.Header().Del("Content-Length")
		httpx.WriteJSON(e.ResponseWriter, e.status, shape(e.status, body.Error.Code, body.Error.Message))
		return
	}
	e.ResponseWriter.WriteHeader(e.status)
	_, _ = e.ResponseWriter.Write(e.buf)
}

// hModel is GET /v1/models/{id}: one served model in OpenAI's shape, or
// 404 model_not_served.
func (s *Service) hModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, q := range s.models() {
		if q.Model == id {
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"id": q.Model, "object": "model", "created": s.started.Unix(), "owned_by": "aitbc",
				"aitbc_miners": q.Miners, "aitbc_min_price_per_1k": q.MinPrice.String()})
			return
		}
	}
	s.fail(w, errf(ErrModelNotServed, "the model '%s' is not served by any connected miner", id))
}

// runJob submits r for t and follows it, calling onText with each new
// piece of text until the result is complete, and returns the finished
// job. A client of these APIs sees one text that only grows, so when the
// job restarts on another miner, runJob stays silent while the new text
// repeats what was sent and continues after it; if the new text departs
// from what was sent, the stream cannot be mended and runJob returns
// ErrStreamDiverged.
func (s *Service) runJob(ctx context.Context, t *store.Tenant, r JobRequest, onText func(jobID, text string) error) (*store.Job, error) {
	j, err := s.Submit(ctx, t, r)
	if err != nil {
		return nil, err
	}
	sub, err := s.Follow(ctx, t, j.ID)
	if err != nil {
		return nil, err
	}
	defer sub.Cancel()
	st := textStream{attempt: sub.Attempt, seq: sub.Seq, cur: sub.Text}
	emit := func() error {
		piece, err := st.next()
		if err != nil || piece == "" || onText == nil {
			return err
		}
		return onText(j.ID, piece)
	}
	if err := emit(); err != nil {
		return nil, err
	}
	// finished looks at the job as it is now; it reports whether the
	// stream is over, and how it ended.
	finished := func() (bool, *store.Job, error) {
		fin, err := s.Job(ctx, t, j.ID)
		if err != nil {
			return true, nil, err
		}
		switch {
		case fin.Status == store.StatusCompleted && fin.OutputHeld:
			// Completed, but its payment is not confirmed yet: the result
			// comes when it is (or the job fails).
		case fin.Status == store.StatusCompleted || fin.Status == store.StatusSettled:
			st.cur = fin.Result
			return true, fin, emit()
		case fin.Status == store.StatusFailed && fin.ErrorCode != "":
			return true, fin, errf(codeSentinel(fin.ErrorCode, ErrJobFailed), "job %s failed: %s", fin.ID, fin.Error)
		case fin.Status == store.StatusFailed:
			return true, fin, errf(ErrJobFailed, "job %s failed: %s", fin.ID, fin.Error)
		case fin.Status == store.StatusExpired:
			return true, fin, errf(ErrJobExpired, "job %s expired: %s", fin.ID, fin.Error)
		}
		return false, fin, nil
	}
	// The job may have finished before the subscription began: its last
	// status event is then already behind it. Anything later arrives as an
	// event.
	if done, fin, err := finished(); done {
		return fin, err
	}
	for {
		var e Event
		var ok bool
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok = <-sub.Events:
		}
		if ok {
			switch {
			case e.Type == EventToken:
				if err := st.token(j.ID, e); err != nil {
					return nil, err
				}
				if err := emit(); err != nil {
					return nil, err
				}
				continue
			case e.Type == EventStatus && e.Status == StatusRequeued:
				st.restart(e.Attempt)
				continue
			case e.Type == EventStatus && e.Status != store.StatusCompleted:
				continue
			}
		}
		done, fin, err := finished()
		if done {
			return fin, err
		}
		if !ok {
			return fin, errf(ErrJobLost, "job %s stream ended while %s", fin.ID, fin.Status)
		}
	}
}

// codeSentinel returns the sentinel of an error code, or def.
func codeSentinel(code string, def error) error {
	for _, c := range errorCodes {
		if c.code == code {
			return c.err
		}
	}
	return def
}

// textStream turns a job's events into one growing text: what was sent
// to the client, and the current attempt's text.
type textStream struct {
	attempt, seq int
	cur, sent    string
}

// token adds the next token of the current attempt; a token out of order
// (which the hub never produces) is an error rather than a silent gap.
func (st *textStream) token(jobID string, e Event) error {
	if e.Attempt != st.attempt || e.Seq != st.seq+1 {
		return errf(ErrJobLost, "job %s: token %d of attempt %d after token %d of attempt %d", jobID, e.Seq, e.Attempt, st.seq, st.attempt)
	}
	st.seq, st.cur = e.Seq, st.cur+e.Text
	return nil
}

// restart begins a new attempt's text.
func (st *textStream) restart(attempt int) { st.attempt, st.seq, st.cur = attempt, 0, "" }

// next returns the text to send now: the part of the current text past
// what was sent. A current text that departs from what was sent is an
// error.
func (st *textStream) next() (string, error) {
	switch {
	case strings.HasPrefix(st.cur, st.sent):
		piece := st.cur[len(st.sent):]
		st.sent = st.cur
		return piece, nil
	case strings.HasPrefix(st.sent, st.cur):
		return "", nil // a restarted attempt still repeating what was sent
	}
	return "", errf(ErrStreamDiverged, "the job restarted on another miner and its text departs from the %d bytes already sent; the stream cannot continue", len(st.sent))
}

func (s *Service) models() []sched.Quote {
	s.mu.Lock()
	qs := sched.Models(s.snapshotLocked())
	s.mu.Unlock()
	// Data-processing and training (package jobkind) are no language
	// models: OpenAI and Ollama clients are not offered them.
	return slices.DeleteFunc(qs, func(q sched.Quote) bool { return jobkind.IsKindModel(q.Model) || jobkind.IsImageModel(q.Model) })
}

func (s *Service) hModels(w http.ResponseWriter, _ *http.Request) {
	type model struct {
		ID       string `json:"id"`
		Object   string `json:"object"`
		Created  int64  `json:"created"`
		OwnedBy  string `json:"owned_by"`
		Miners   int    `json:"aitbc_miners"`
		MinPrice string `json:"aitbc_min_price_per_1k"`
	}
	out := []model{}
	for _, q := range s.models() {
		out = append(out, model{ID: q.Model, Object: "model", Created: s.started.Unix(), OwnedBy: "aitbc", Miners: q.Miners, MinPrice: q.MinPrice.String()})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"object": "list", "data": out})
}

// openAIRequest covers the fields of the chat and completions requests
// that map onto a job; others are accepted and ignored.
type openAIRequest struct {
	Model               string          `json:"model"`
	Messages            []openAIMessage `json:"messages"` // visionparts.go: content may hold image parts
	Prompt              json.RawMessage `json:"prompt"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	Temperature         *float32        `json:"temperature"`
	TopP                float32         `json:"top_p"`
	Seed                uint64          `json:"seed"`
	Stop                json.RawMessage `json:"stop"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N int `json:"n"`
}

func stringOrList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("must be a string or a list of strings")
	}
	return many, nil
}

func finishReason(j *store.Job) string {
	if j.FinishReason == "length" {
		return "length"
	}
	return "stop"
}

func (s *Service) hOpenAI(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t := s.tenant(w, r)
		if t == nil {
			return
		}
		var req openAIRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, httpx.MaxBody)).Decode(&req); err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				err = fmt.Errorf("%w: request body is over %d bytes", httpx.ErrBodyTooLarge, mbe.Limit)
			}
			s.failDecode(w, err)
			return
		}
		if req.N > 1 {
			s.fail(w, errf(ErrInvalidRequest, "n > 1 is not supported: submit one request per completion"))
			return
		}
		jr := JobRequest{Model: req.Model, MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, Seed: req.Seed}
		if req.MaxCompletionTokens > 0 {
			jr.MaxTokens = req.MaxCompletionTokens
		}
		var err error
		if jr.Stop, err = stringOrList(req.Stop); err != nil {
			s.fail(w, errf(ErrInvalidRequest, "stop %v", err))
			return
		}
		if chat {
			if jr.Messages, err = openAIMessages(req.Messages); err != nil {
				s.fail(w, err)
				return
			}
		} else {
			ps, err := stringOrList(req.Prompt)
			if err != nil || len(ps) > 1 {
				s.fail(w, errf(ErrInvalidRequest, "prompt must be one string"))
				return
			}
			if len(ps) == 1 {
				jr.Prompt = ps[0]
			}
		}
		created := time.Now().Unix()
		object, chunkObject := "text_completion", "text_completion"
		if chat {
			object, chunkObject = "chat.completion", "chat.completion.chunk"
		}
		if !req.Stream {
			j, err := s.runJob(r.Context(), t, jr, nil)
			if err != nil {
				s.fail(w, err)
				return
			}
			choice := map[string]any{"index": 0, "finish_reason": finishReason(j)}
			if chat {
				choice["message"] = map[string]string{"role": "assistant", "content": j.Result}
			} else {
				choice["text"] = j.Result
			}
			httpx.WriteJSON(w, http.StatusOK, map[string]any{
				"id": idPrefix(chat) + j.ID, "object": object, "created": created, "model": j.Model,
				"choices": []any{choice}, "usage": usage(j),
			})
			return
		}
		// Streaming: SSE chunks; the headers go out with the first chunk,
		// so a refused submission still gets a proper JSON error.
		var id string
		started := false
		flusher, _ := w.(http.Flusher)
		send := func(v any) error {
			if !started {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Header().Set("Cache-Control", "no-cache")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			b, _ := json.Marshal(v)
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return err
			}
			if flusher != nil {
				flusher.Flush()
			}
			return nil
		}
		chunk := func(delta map[string]any, text string, finish any) map[string]any {
			c := map[string]any{"index": 0, "finish_reason": finish}
			if chat {
				c["delta"] = delta
			} else {
				c["text"] = text
			}
			return map[string]any{"id": id, "object": chunkObject, "created": created, "model": jr.Model, "choices": []any{c}}
		}
		first := true
		j, err := s.runJob(r.Context(), t, jr, func(jobID, piece string) error {
			id = idPrefix(chat) + jobID
			if first && chat {
				first = false
				if err := send(chunk(map[string]any{"role": "assistant", "content": ""}, "", nil)); err != nil {
					return err
				}
			}
			return send(chunk(map[string]any{"content": piece}, piece, nil))
		})
		if err != nil {
			if !started {
				s.fail(w, err)
				return
			}
			_, code := HTTPStatus(err)
			if code == "internal" {
				code = "job_failed"
			}
			status, _ := HTTPStatus(err)
			_ = send(map[string]any{"error": map[string]any{"code": code, "message": err.Error(), "type": openAIType(status), "param": nil}})
			fmt.Fprint(w, "data: [DONE]\n\n")
			return
		}
		id = idPrefix(chat) + j.ID
		_ = send(chunk(map[string]any{}, "", finishReason(j)))
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			_ = send(map[string]any{"id": id, "object": chunkObject, "created": created, "model": j.Model, "choices": []any{}, "usage": usage(j)})
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func idPrefix(chat bool) string {
	if chat {
		return "chatcmpl-"
	}
	return "cmpl-"
}

func usage(j *store.Job) map[string]int {
	return map[string]int{"prompt_tokens": j.TokensIn, "completion_tokens": j.TokensOut, "total_tokens": j.TokensIn + j.TokensOut}
}

// ollamaError writes Ollama's error shape, {"error": "..."}, with the
// status of the error table.
func ollamaError(w http.ResponseWriter, err error) {
	status, _ := HTTPStatus(err)
	httpx.WriteJSON(w, status, map[string]string{"error": err.Error()})
}

func (s *Service) hOllamaTags(w http.ResponseWriter, _ *http.Request) {
	type details struct {
		Format            string `json:"format"`
		Family            string `json:"family"`
		ParameterSize     string `json:"parameter_size"`
		QuantizationLevel string `json:"quantization_level"`
	}
	type model struct {
		Name       string  `json:"name"`
		Model      string  `json:"model"`
		ModifiedAt string  `json:"modified_at"`
		Size       int64   `json:"size"`
		Digest     string  `json:"digest"`
		Details    details `json:"details"`
	}
	out := []model{}
	for _, q := range s.models() {
		out = append(out, model{Name: q.Model, Model: q.Model, ModifiedAt: s.started.UTC().Format(time.RFC3339), Details: details{Family: "llama"}})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"models": out})
}

// ollamaModel is a model in Ollama's /api/tags and /api/ps answers.
type ollamaModel struct {
	Name       string        `json:"name"`
	Model      string        `json:"model"`
	ModifiedAt string        `json:"modified_at,omitempty"`
	Size       int64         `json:"size"`
	Digest     string        `json:"digest"`
	Details    ollamaDetails `json:"details"`
	ExpiresAt  string        `json:"expires_at,omitempty"` // ps only
	SizeVRAM   int64         `json:"size_vram"`
}

type ollamaDetails struct {
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// hOllamaShow is POST /api/show {"model": "..."} (or "name", as older
// clients send it): what is known of a served model; 404 otherwise.
func (s *Service) hOllamaShow(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	if err := httpx.DecodeJSON(r, &req); err != nil {
		s.failDecode(w, err)
		return
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if name == "" {
		s.fail(w, errf(ErrInvalidRequest, "model is required"))
		return
	}
	for _, q := range s.models() {
		if q.Model == name {
			httpx.WriteJSON(w, http.StatusOK, map[string]any{
				"license": "", "modelfile": "", "parameters": "", "template": "",
				"details":     ollamaDetails{Family: "llama", Families: []string{"llama"}},
				"model_info":  map[string]any{"aitbc.miners": q.Miners, "aitbc.min_price_per_1k": q.MinPrice.String(), "aitbc.max_price_per_1k": q.MaxPrice.String(), "aitbc.free_miners": q.Free},
				"modified_at": s.started.UTC().Format(time.RFC3339),
			})
			return
		}
	}
	s.fail(w, errf(ErrModelNotServed, "model '%s' not found", name))
}

// hOllamaPS is GET /api/ps: the models loaded now, which for a
// marketplace are those a connected miner serves.
func (s *Service) hOllamaPS(w http.ResponseWriter, _ *http.Request) {
	out := []ollamaModel{}
	for _, q := range s.models() {
		out = append(out, ollamaModel{Name: q.Model, Model: q.Model, Details: ollamaDetails{Family: "llama", Families: []string{"llama"}}})
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"models": out})
}

// hOllamaVersion is GET /api/version: this coordinator's version.
func (s *Service) hOllamaVersion(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"version": version.Get().Version})
}

type ollamaRequest struct {
	Model    string                   `json:"model"`
	Prompt   string                   `json:"prompt"`
	Messages []minerproto.ChatMessage `json:"messages"`
	Stream   *bool                    `json:"stream"`
	Options  struct {
		NumPredict  int             `json:"num_predict"`
		Temperature *float32        `json:"temperature"`
		TopP        float32         `json:"top_p"`
		Seed        uint64          `json:"seed"`
		Stop        json.RawMessage `json:"stop"`
	} `json:"options"`
}

func (s *Service) hOllama(chat bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t := s.tenant(w, r)
		if t == nil {
			return
		}
		var req ollamaRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, httpx.MaxBody)).Decode(&req); err != nil {
			httpx.WriteJSON(w, 400, map[string]string{"error": "request body: " + err.Error()})
			return
		}
		jr := JobRequest{Model: req.Model, MaxTokens: req.Options.NumPredict, Temperature: req.Options.Temperature, TopP: req.Options.TopP, Seed: req.Options.Seed}
		var err error
		if jr.Stop, err = stringOrList(req.Options.Stop); err != nil {
			httpx.WriteJSON(w, 400, map[string]string{"error": "options.stop " + err.Error()})
			return
		}
		if chat {
			jr.Messages = req.Messages
		} else {
			jr.Prompt = req.Prompt
		}
		start := time.Now()
		line := func(piece string, done bool, j *store.Job) map[string]any {
			m := map[string]any{"model": req.Model, "created_at": time.Now().UTC().Format(time.RFC3339Nano), "done": done}
			if chat {
				m["message"] = map[string]string{"role": "assistant", "content": piece}
			} else {
				m["response"] = piece
			}
			if done && j != nil {
				m["done_reason"] = finishReason(j)
				m["total_duration"] = time.Since(start).Nanoseconds()
				m["prompt_eval_count"] = j.TokensIn
				m["eval_count"] = j.TokensOut
				m["aitbc_job_id"] = j.ID
			}
			return m
		}
		stream := req.Stream == nil || *req.Stream
		if !stream {
			j, err := s.runJob(r.Context(), t, jr, nil)
			if err != nil {
				ollamaError(w, err)
				return
			}
			httpx.WriteJSON(w, http.StatusOK, line(j.Result, true, j))
			return
		}
		started := false
		flusher, _ := w.(http.Flusher)
		send := func(v any) error {
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			b, _ := json.Marshal(v)
			if _, err := w.Write(append(b, '\n')); err != nil {
				return err
			}
			if flusher != nil {
				flusher.Flush()
			}
			return nil
		}
		j, err := s.runJob(r.Context(), t, jr, func(_, piece string) error { return send(line(piece, false, nil)) })
		if err != nil {
			if !started {
				ollamaError(w, err)
				return
			}
			_ = send(map[string]string{"error": err.Error()})
			return
		}
		_ = send(line("", true, j))
	}
}

package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxErrorBody is how much of an error response is read.
const maxErrorBody = 64 << 10

// maxLine is the longest stream line (NDJSON object or SSE line) accepted.
// Ollama's final line carries the whole context as token ids, so it can be
// long; anything past this is a broken stream.
const maxLine = 16 << 20

// httpDo sends a request with a JSON body (nil for GET) and returns the
// response when its status is 2xx. Transport failures wrap
// ErrBackendUnavailable (or ctx's error when ctx ended); other statuses are
// turned into an error by classify, given the status and the error body.
func httpDo(ctx context.Context, client *http.Client, method, url string, body any, header http.Header, classify func(status int, e apiError) error) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding the request: %v", ErrInvalidRequest, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBackendUnavailable, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrBackendUnavailable, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := parseAPIError(raw)
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(raw))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	return nil, classify(resp.StatusCode, e)
}

// apiError is an error body in any of the shapes the servers use:
//
//	{"error": "message"}                                          Ollama
//	{"error": {"message": "...", "type": "...", "code": "..."}}   OpenAI, vLLM, llama.cpp
//	{"object": "error", "message": "...", "type": "...", "code": 404}  older vLLM
//
// Code is a string (OpenAI's "model_not_found") or a number written as
// one (vLLM's and llama.cpp's HTTP status).
type apiError struct {
	Message, Type, Code string
}

func (e apiError) String() string {
	s := e.Message
	if e.Type != "" || e.Code != "" {
		s += " (" + strings.Trim(e.Type+" "+e.Code, " ") + ")"
	}
	return s
}

// parseAPIError reads an error body; the zero apiError means it had none.
func parseAPIError(raw []byte) apiError {
	var body struct {
		Error   json.RawMessage `json:"error"`
		Object  string          `json:"object"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return apiError{}
	}
	if len(body.Error) > 0 && string(body.Error) != "null" {
		var s string
		if json.Unmarshal(body.Error, &s) == nil {
			if s == "" {
				s = "unspecified error"
			}
			return apiError{Message: s}
		}
		var o struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
		}
		if json.Unmarshal(body.Error, &o) == nil {
			if o.Message == "" {
				o.Message = "unspecified error"
			}
			return apiError{Message: o.Message, Type: o.Type, Code: rawCode(o.Code)}
		}
		return apiError{Message: string(body.Error)}
	}
	if body.Object == "error" {
		if body.Message == "" {
			body.Message = "unspecified error"
		}
		return apiError{Message: body.Message, Type: body.Type, Code: rawCode(body.Code)}
	}
	return apiError{}
}

// rawCode turns a JSON string or number into its text.
func rawCode(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// statusClass maps the statuses every backend shares. It returns nil for
// the ones the caller must decide (404 and other 4xx).
func statusClass(status int) error {
	switch {
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge, status == http.StatusUnprocessableEntity:
		return ErrInvalidRequest
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusRequestTimeout,
		status == http.StatusTooManyRequests, status >= 500:
		return ErrBackendUnavailable
	}
	return nil
}

// statusError wraps sentinel with a backend's words.
func statusError(sentinel error, backend, path string, status int, e apiError) error {
	return fmt.Errorf("%w: %s %s: HTTP %s: %s", sentinel, backend, path, strconv.Itoa(status), e)
}

// streamError is the error for a stream that stopped: ctx's error when ctx
// ended (the read failed because the request was cancelled), otherwise err
// as a backend failure.
func streamError(ctx context.Context, backend string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %s: reading the stream: %v", ErrBackendFailed, backend, err)
}

// errCallback wraps an error returned by the token callback.
func errCallback(backend string, err error) error {
	return fmt.Errorf("backend: %s: token callback: %w", backend, err)
}

// isCtxErr reports whether err is a context's error.
func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

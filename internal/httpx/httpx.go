// Package httpx holds the small HTTP conventions every AITBC service and
// client shares: JSON responses, the error body
// {"error":{"code":"...","message":"..."}}, strict JSON request decoding,
// and a client-side error type that carries the code back.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBody is the largest request body a handler reads by default.
const MaxBody = 1 << 20

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteJSON writes v with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes an error body with the given status.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: message}})
}

// DecodeJSON reads a JSON request body into v, refusing unknown fields,
// trailing data and bodies over MaxBody. The error is ready for a 400.
func DecodeJSON(r *http.Request, v any) error { return DecodeJSONLimit(r, v, MaxBody) }

// DecodeJSONLimit is DecodeJSON with a body limit of its own. A body over
// the limit (this one, or the server's: see Guard) is an error wrapping
// ErrBodyTooLarge, which the services answer with 413.
func DecodeJSONLimit(r *http.Request, v any, limit int64) error {
	body := &countingReader{r: io.LimitReader(r.Body, limit+1)}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	}
	var mbe *http.MaxBytesError
	switch {
	case body.n > limit:
		return fmt.Errorf("%w: request body is over %d bytes", ErrBodyTooLarge, limit)
	case errors.As(err, &mbe):
		return fmt.Errorf("%w: request body is over %d bytes", ErrBodyTooLarge, mbe.Limit)
	case errors.Is(err, io.EOF):
		return errors.New("request body is empty")
	case err != nil:
		return fmt.Errorf("request body: %v", err)
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// APIError is an error response received by a client.
type APIError struct {
	Status  int    // HTTP status
	Code    string // the body's error.code
	Message string // the body's error.message
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d %s", e.Status, e.Code)
	}
	return e.Message
}

// IsCode reports whether err is an APIError with the given code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// Do sends a JSON request (body may be nil) and decodes a 2xx JSON response
// into out (which may be nil). Non-2xx responses become *APIError.
func Do(ctx context.Context, c *http.Client, method, url string, header http.Header, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &APIError{Status: resp.StatusCode, Code: "http_" + fmt.Sprint(resp.StatusCode), Message: strings.TrimSpace(string(data))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response from %s: %w", url, err)
	}
	return nil
}

// NotFound returns the catch-all handler of an API whose routes are the
// given "METHOD /path" patterns: a known path with another method gets 405
// method_not_allowed, anything else 404 not_found, both as JSON.
func NotFound(routes []string) http.HandlerFunc {
	probe := http.NewServeMux()
	seen := map[string]bool{}
	for _, r := range routes {
		_, path, ok := strings.Cut(r, " ")
		if !ok {
			path = r
		}
		if !seen[path] {
			seen[path] = true
			probe.HandleFunc(path, func(http.ResponseWriter, *http.Request) {})
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := probe.Handler(r); pattern != "" {
			WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		WriteError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	}
}

// WriteDecodeError answers an error of DecodeJSON: 413 body_too_large for
// a body over the limit, 400 invalid_request otherwise.
func WriteDecodeError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrBodyTooLarge) {
		WriteError(w, http.StatusRequestEntityTooLarge, CodeBodyTooLarge, err.Error())
		return
	}
	WriteError(w, http.StatusBadRequest, "invalid_request", err.Error())
}

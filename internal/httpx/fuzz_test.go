package httpx_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/aitbc/aitbc/internal/httpx"
)

// FuzzDecodeJSON: the request decoder every service uses never panics,
// never reads past its limit, and calls a body too large exactly when it
// is over the limit and nothing else was wrong before that point.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":"` + string(make([]byte, 80)) + `"}`, `{}`, ``, `{"a":1}{"b":2}`, `[1,2,3]`, `{"a":{"b":[true,null]}}`, "\xff\xfe", `{"unknown":1}`} {
		f.Add([]byte(s), uint8(64))
	}
	f.Fuzz(func(t *testing.T, body []byte, lim uint8) {
		limit := int64(lim) + 1
		rd := &countReader{r: bytes.NewReader(body)}
		req, _ := http.NewRequest(http.MethodPost, "/", rd)
		var v struct {
			A any `json:"a"`
			B any `json:"b"`
		}
		err := httpx.DecodeJSONLimit(req, &v, limit)
		if rd.n > limit+1 {
			t.Fatalf("read %d bytes with a limit of %d", rd.n, limit)
		}
		if errors.Is(err, httpx.ErrBodyTooLarge) && int64(len(body)) <= limit {
			t.Fatalf("a %d-byte body called too large with a limit of %d", len(body), limit)
		}
		if err == nil && int64(len(body)) > limit {
			t.Fatalf("a %d-byte body accepted with a limit of %d", len(body), limit)
		}
	})
}

type countReader struct {
	r *bytes.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

package coordinator

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/blob"
	"github.com/aitbc/aitbc/internal/httpx"
)

func withFiles(t *testing.T, max, quota int64) func(*Config) {
	return func(c *Config) {
		st, err := blob.NewFS(t.TempDir(), 24*time.Hour, c.Now)
		if err != nil {
			t.Fatal(err)
		}
		c.Files = Files{Store: st, MaxFileBytes: max, TenantQuota: quota}
	}
}

// A file larger than the server's body limit goes up in resumable pieces,
// comes back byte for byte, and a second upload sends nothing again.
func TestFileUploadInPiecesAndDownloadByHash(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 4<<20, 8<<20))
	// The real server's guard: bodies over 256 KiB are refused, so the
	// client must send pieces.
	srv := httptest.NewServer(httpx.Guard(h.s.Handler(), httpx.Limits{MaxBody: 256 << 10}))
	defer srv.Close()
	data := make([]byte, 1<<20+12345)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "training_data.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewClient(srv.URL, h.apiKey)
	info, err := c.UploadFile(t.Context(), path, 200<<10)
	if err != nil {
		t.Fatal(err)
	}
	if info.Hash != blob.HashBytes(data) || info.Size != int64(len(data)) {
		t.Fatalf("info = %+v", info)
	}
	var buf bytes.Buffer
	if _, err := c.DownloadFile(t.Context(), info.Hash, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatal("downloaded file differs")
	}
	// Idempotent by hash: the same file again is one status call and one
	// empty PUT, and the tenant's usage does not grow.
	if _, err := c.UploadFile(t.Context(), path, 200<<10); err != nil {
		t.Fatal(err)
	}
	if u, _ := h.s.cfg.Files.Store.Usage(t.Context(), h.tenant.ID); u != int64(len(data)) {
		t.Fatalf("usage = %d after re-upload, want %d", u, len(data))
	}
	// Another tenant cannot read it by guessing the hash.
	other, key2, err := h.s.AddTenant(t.Context(), "other", h.chain.coord)
	if err != nil || other == nil {
		t.Fatal(err)
	}
	if _, err := NewClient(srv.URL, key2).DownloadFile(t.Context(), info.Hash, &buf); !errors.Is(err, ErrFileNotFound) {
		t.Fatalf("other tenant download: %v", err)
	}
}

func TestFileUploadRefusals(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 1000, 1500))
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	put := func(hash string, body []byte, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/files/"+hash, bytes.NewReader(body))
		req.Header.Set("X-API-Key", h.apiKey)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb httpx.ErrorBody
		_ = decodeLimited(resp.Body, &eb)
		return resp.StatusCode, eb.Error.Code
	}
	big := []byte(strings.Repeat("a", 1001))
	ok := []byte(strings.Repeat("b", 900))
	cases := []struct {
		name   string
		hash   string
		body   []byte
		hdr    map[string]string
		status int
		code   string
	}{
		{"not a hash", "nothex", ok, nil, 400, "invalid_file"},
		{"wrong hash", blob.HashBytes([]byte("x")), ok, nil, 400, "invalid_file"},
		{"over the file limit", blob.HashBytes(big), big, nil, 413, "file_too_large"},
		{"bad offset header", blob.HashBytes(ok), ok, map[string]string{HeaderUploadOffset: "-1"}, 400, "invalid_file"},
		{"piece at the wrong offset", blob.HashBytes(ok), ok[:10], map[string]string{HeaderUploadOffset: "5", HeaderUploadLength: "900"}, 409, "upload_offset_mismatch"},
		{"no key", blob.HashBytes(ok), ok, map[string]string{"X-API-Key": "nope"}, 401, "unauthorized"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if st, code := put(c.hash, c.body, c.hdr); st != c.status || code != c.code {
				t.Fatalf("got %d %s, want %d %s", st, code, c.status, c.code)
			}
		})
	}
	if st, _ := put(blob.HashBytes(ok), ok, nil); st != http.StatusCreated {
		t.Fatalf("first file: %d", st)
	}
	ok2 := []byte(strings.Repeat("c", 900))
	if st, code := put(blob.HashBytes(ok2), ok2, nil); st != http.StatusTooManyRequests || code != "quota_exceeded" {
		t.Fatalf("over quota: %d %s", st, code)
	}
}

func TestFilesDisabledSaysSo(t *testing.T) {
	h := newHarness(t, releaseDelay)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	_, err := NewClient(srv.URL, h.apiKey).DownloadFile(t.Context(), blob.HashBytes([]byte("x")), &bytes.Buffer{})
	if !errors.Is(err, ErrFilesDisabled) {
		t.Fatalf("err = %v", err)
	}
}

// A file past its retention is gone after the coordinator's prune pass.
func TestFilesArePrunedAfterTheirRetention(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 1<<20, 1<<20))
	data := []byte("a,b\n1,2\n")
	st := h.s.cfg.Files.Store
	if _, err := st.Put(t.Context(), h.tenant.ID, blob.HashBytes(data), bytes.NewReader(data), 100, 100); err != nil {
		t.Fatal(err)
	}
	h.s.prune(t.Context())
	if _, err := st.Stat(t.Context(), h.tenant.ID, blob.HashBytes(data)); err != nil {
		t.Fatalf("pruned before its retention: %v", err)
	}
	h.clock.Advance(25 * time.Hour)
	h.s.prune(t.Context())
	if _, err := st.Stat(t.Context(), h.tenant.ID, blob.HashBytes(data)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("after its retention: %v", err)
	}
}

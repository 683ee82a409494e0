package blob_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/blob"
)

func newFS(t *testing.T, now *time.Time) *blob.FS {
	t.Helper()
	s, err := blob.NewFS(t.TempDir(), 24*time.Hour, func() time.Time { return *now })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutOpenRoundTripAndIdempotentReupload(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newFS(t, &now)
	data := []byte("a,b\n1,2\n")
	h := blob.HashBytes(data)
	info, err := s.Put(t.Context(), "t1", h, bytes.NewReader(data), 100, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.Hash != h || !info.Expires.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("info = %+v", info)
	}
	// A re-upload by hash reads nothing and charges nothing again.
	now = now.Add(time.Hour)
	info2, err := s.Put(t.Context(), "t1", h, failingReader{}, 100, 1000)
	if err != nil {
		t.Fatalf("re-upload: %v", err)
	}
	if !info2.Uploaded.Equal(now) {
		t.Fatalf("re-upload did not renew retention: %+v", info2)
	}
	if u, _ := s.Usage(t.Context(), "t1"); u != int64(len(data)) {
		t.Fatalf("usage = %d, want %d", u, len(data))
	}
	rc, _, err := s.Open(t.Context(), "t1", h)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("content = %q", got)
	}
	// Another owner cannot read it without a grant.
	if _, _, err := s.Open(t.Context(), "t2", h); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("other owner open: %v", err)
	}
	if err := s.Grant(t.Context(), "t1", "miner", h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(t.Context(), "miner", h); err != nil {
		t.Fatalf("granted stat: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestPutRefusesBadInputWithoutStoring(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newFS(t, &now)
	data := []byte(strings.Repeat("x", 50))
	h := blob.HashBytes(data)
	cases := []struct {
		name   string
		hash   string
		body   []byte
		max    int64
		quota  int64
		expect error
	}{
		{"bad hash", "ABC", data, 100, 1000, blob.ErrInvalidHash},
		{"mismatch", blob.HashBytes([]byte("other")), data, 100, 1000, blob.ErrHashMismatch},
		{"too large", h, data, 49, 1000, blob.ErrTooLarge},
		{"over quota", h, data, 100, 49, blob.ErrQuota},
		{"empty", blob.HashBytes(nil), nil, 100, 1000, blob.ErrEmpty},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.Put(t.Context(), "t1", c.hash, bytes.NewReader(c.body), c.max, c.quota); !errors.Is(err, c.expect) {
				t.Fatalf("err = %v, want %v", err, c.expect)
			}
			if u, _ := s.Usage(t.Context(), "t1"); u != 0 {
				t.Fatalf("usage after refusal = %d", u)
			}
		})
	}
}

func TestQuotaCountsHeldContentOnceAndPruneFreesIt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newFS(t, &now)
	a, b := []byte(strings.Repeat("a", 60)), []byte(strings.Repeat("b", 60))
	if _, err := s.Put(t.Context(), "t1", blob.HashBytes(a), bytes.NewReader(a), 100, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "t1", blob.HashBytes(b), bytes.NewReader(b), 100, 100); !errors.Is(err, blob.ErrQuota) {
		t.Fatalf("second file: %v, want quota", err)
	}
	now = now.Add(25 * time.Hour)
	n, err := s.Prune(t.Context(), now)
	if err != nil || n != 1 {
		t.Fatalf("prune = %d, %v; want 1 blob removed", n, err)
	}
	if u, _ := s.Usage(t.Context(), "t1"); u != 0 {
		t.Fatalf("usage after prune = %d", u)
	}
	if _, err := s.Put(t.Context(), "t1", blob.HashBytes(b), bytes.NewReader(b), 100, 100); err != nil {
		t.Fatalf("after prune: %v", err)
	}
}

func TestResumableUploadAcrossChunksAndRestart(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	s, _ := blob.NewFS(dir, time.Hour, func() time.Time { return now })
	data := []byte(strings.Repeat("0123456789", 10))
	h := blob.HashBytes(data)
	p, err := s.Append(t.Context(), "t1", h, 100, 0, bytes.NewReader(data[:40]), 1000, 1000)
	if err != nil || p.Received != 40 || p.Done {
		t.Fatalf("first chunk: %+v, %v", p, err)
	}
	// A client that lost track sends from the wrong place: told where to resume.
	if _, err := s.Append(t.Context(), "t1", h, 100, 10, bytes.NewReader(data[10:50]), 1000, 1000); !errors.Is(err, blob.ErrOffset) {
		t.Fatalf("wrong offset: %v", err)
	}
	// The store is reopened (a coordinator restart): the partial upload survives.
	s, _ = blob.NewFS(dir, time.Hour, func() time.Time { return now })
	p, err = s.Partial(t.Context(), "t1", h)
	if err != nil || p.Received != 40 {
		t.Fatalf("partial after restart: %+v, %v", p, err)
	}
	p, err = s.Append(t.Context(), "t1", h, 100, 40, bytes.NewReader(data[40:]), 1000, 1000)
	if err != nil || !p.Done || p.Info.Size != 100 {
		t.Fatalf("last chunk: %+v, %v", p, err)
	}
	rc, _, err := s.Open(t.Context(), "t1", h)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

func TestResumableUploadRefusesOverQuotaBeforeKeepingAByte(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newFS(t, &now)
	h := blob.HashBytes([]byte("x"))
	if _, err := s.Append(t.Context(), "t1", h, 500, 0, strings.NewReader("x"), 1000, 100); !errors.Is(err, blob.ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if _, err := s.Append(t.Context(), "t1", h, 5000, 0, strings.NewReader("x"), 1000, 10000); !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("over size: %v", err)
	}
	if _, err := s.Partial(t.Context(), "t1", h); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("partial kept after refusal: %v", err)
	}
}

// Uploads in progress count against the quota (so unfinished uploads
// cannot fill the disk), and one abandoned past the retention is pruned.
func TestPartialUploadsCountAgainstTheQuotaUntilPruned(t *testing.T) {
	now := time.Now()
	s, _ := blob.NewFS(t.TempDir(), time.Hour, func() time.Time { return now })
	a := []byte(strings.Repeat("a", 100))
	if _, err := s.Append(t.Context(), "t1", blob.HashBytes(a), 100, 0, bytes.NewReader(a[:60]), 1000, 150); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage(t.Context(), "t1"); u != 60 {
		t.Fatalf("usage with a partial upload = %d, want 60", u)
	}
	b := []byte(strings.Repeat("b", 100))
	if _, err := s.Append(t.Context(), "t1", blob.HashBytes(b), 100, 0, bytes.NewReader(b), 1000, 150); !errors.Is(err, blob.ErrQuota) {
		t.Fatalf("second upload beside a partial one: %v", err)
	}
	// Finishing the first does not count its own partial bytes twice.
	if p, err := s.Append(t.Context(), "t1", blob.HashBytes(a), 100, 60, bytes.NewReader(a[60:]), 1000, 150); err != nil || !p.Done {
		t.Fatalf("finish: %+v %v", p, err)
	}
	c := []byte(strings.Repeat("c", 40))
	if _, err := s.Append(t.Context(), "t1", blob.HashBytes(c), 40, 0, bytes.NewReader(c[:10]), 1000, 150); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(t.Context(), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Partial(t.Context(), "t1", blob.HashBytes(c)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("abandoned upload survived the prune: %v", err)
	}
}

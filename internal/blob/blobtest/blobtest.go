// Package blobtest is the contract every blob.Store keeps, as tests that
// run on each implementation: the directory store (blob.FS) and the
// PostgreSQL one (store.PGFiles). Test files import it; nothing else.
package blobtest

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/blob"
)

// Backend makes fresh, empty backing state (a directory, a database) for
// one test and returns a function that opens a store on it. Each call of
// the function opens another store on the same state: a restarted
// coordinator, or a second coordinator sharing it.
type Backend func(t *testing.T) (open func(retention time.Duration, now func() time.Time) blob.Store)

// Run runs the contract on a backend.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		f    func(*testing.T, Backend)
	}{
		{"PutOpenRoundTripAndIdempotentReupload", putOpenRoundTrip},
		{"PutRefusesBadInputWithoutStoring", putRefusesBadInput},
		{"PutOfContentAnotherHoldsReadsAndChecksIt", putOfHeldContentIsChecked},
		{"QuotaCountsHeldContentOnceAndPruneFreesIt", quotaAndPrune},
		{"ResumableUploadAcrossChunksAndReopen", resumableAcrossReopen},
		{"ResumableUploadRefusesOverQuotaBeforeKeepingAByte", resumableRefusesEarly},
		{"PartialUploadsCountAgainstTheQuotaUntilPruned", partialsCountUntilPruned},
		{"ResumableUploadRefusesBadPieces", resumableRefusesBadPieces},
		{"LargeFileStreamsBackWhole", largeFileStreams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, b) })
	}
}

func clock(now *time.Time) func() time.Time { return func() time.Time { return *now } }

func readAll(t *testing.T, s blob.Store, owner, h string) []byte {
	t.Helper()
	rc, _, err := s.Open(t.Context(), owner, h)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func putOpenRoundTrip(t *testing.T, b Backend) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := b(t)(24*time.Hour, clock(&now))
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
	if got := readAll(t, s, "t1", h); !bytes.Equal(got, data) {
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
	if err := s.Grant(t.Context(), "t2", "miner", h); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("grant by a non-holder: %v", err)
	}
}

func putRefusesBadInput(t *testing.T, b Backend) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := b(t)(24*time.Hour, clock(&now))
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
			if _, err := s.Stat(t.Context(), "t1", h); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("stored after refusal: %v", err)
			}
		})
	}
}

// Knowing a file's hash does not make one its holder: a Put of content
// another owner stored still reads and checks the bytes.
func putOfHeldContentIsChecked(t *testing.T, b Backend) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := b(t)(24*time.Hour, clock(&now))
	data := []byte("secret,data\n1,2\n")
	h := blob.HashBytes(data)
	if _, err := s.Put(t.Context(), "t1", h, bytes.NewReader(data), 100, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "t2", h, strings.NewReader("guess"), 100, 1000); !errors.Is(err, blob.ErrHashMismatch) {
		t.Fatalf("put by hash alone: %v", err)
	}
	if _, _, err := s.Open(t.Context(), "t2", h); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("t2 reads t1's file: %v", err)
	}
	if _, err := s.Put(t.Context(), "t2", h, bytes.NewReader(data), 100, 1000); err != nil {
		t.Fatalf("put with the content: %v", err)
	}
	if got := readAll(t, s, "t2", h); !bytes.Equal(got, data) {
		t.Fatalf("content = %q", got)
	}
}

func quotaAndPrune(t *testing.T, b Backend) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := b(t)(24*time.Hour, clock(&now))
	a, c := []byte(strings.Repeat("a", 60)), []byte(strings.Repeat("b", 60))
	if _, err := s.Put(t.Context(), "t1", blob.HashBytes(a), bytes.NewReader(a), 100, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "t1", blob.HashBytes(c), bytes.NewReader(c), 100, 100); !errors.Is(err, blob.ErrQuota) {
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
	if _, err := s.Put(t.Context(), "t1", blob.HashBytes(c), bytes.NewReader(c), 100, 100); err != nil {
		t.Fatalf("after prune: %v", err)
	}
}

// An upload survives its store's reopening (a coordinator restart, or
// with a shared database another coordinator) and resumes where it was.
func resumableAcrossReopen(t *testing.T, b Backend) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := b(t)
	s := open(time.Hour, clock(&now))
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
	s = open(time.Hour, clock(&now))
	p, err = s.Partial(t.Context(), "t1", h)
	if err != nil || p.Received != 40 {
		t.Fatalf("partial after reopen: %+v, %v", p, err)
	}
	p, err = s.Append(t.Context(), "t1", h, 100, 40, bytes.NewReader(data[40:]), 1000, 1000)
	if err != nil || !p.Done || p.Info.Size != 100 {
		t.Fatalf("last chunk: %+v, %v", p, err)
	}
	if got := readAll(t, s, "t1", h); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	// Sending it again is a no-op that says it is whole.
	p, err = s.Append(t.Context(), "t1", h, 100, 0, failingReader{}, 1000, 1000)
	if err != nil || !p.Done || p.Received != 100 {
		t.Fatalf("re-send: %+v, %v", p, err)
	}
}

func resumableRefusesEarly(t *testing.T, b Backend) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := b(t)(24*time.Hour, clock(&now))
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

// A piece longer than the declared size, or a whole file whose content is
// not its hash, drops the upload: it starts over, and holds no quota.
func resumableRefusesBadPieces(t *testing.T, b Backend) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := b(t)(24*time.Hour, clock(&now))
	data := []byte(strings.Repeat("z", 30))
	h := blob.HashBytes(data)
	if _, err := s.Append(t.Context(), "t1", h, 30, 0, bytes.NewReader(append(data, 'z')), 1000, 1000); !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("longer than declared: %v", err)
	}
	wrong := []byte(strings.Repeat("y", 30))
	if _, err := s.Append(t.Context(), "t1", h, 30, 0, bytes.NewReader(wrong[:10]), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), "t1", h, 30, 10, bytes.NewReader(wrong[10:]), 1000, 1000); !errors.Is(err, blob.ErrHashMismatch) {
		t.Fatalf("wrong content: %v", err)
	}
	if u, _ := s.Usage(t.Context(), "t1"); u != 0 {
		t.Fatalf("usage after refusals = %d", u)
	}
	if _, err := s.Partial(t.Context(), "t1", h); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("bad upload kept: %v", err)
	}
	if p, err := s.Append(t.Context(), "t1", h, 30, 0, bytes.NewReader(data), 1000, 1000); err != nil || !p.Done {
		t.Fatalf("starting over: %+v %v", p, err)
	}
}

// Uploads in progress count against the quota (so unfinished uploads
// cannot fill the disk), and one abandoned past the retention is pruned.
func partialsCountUntilPruned(t *testing.T, b Backend) {
	now := time.Now() // the directory store dates a partial upload by its file's modification time
	s := b(t)(time.Hour, clock(&now))
	a := []byte(strings.Repeat("a", 100))
	if _, err := s.Append(t.Context(), "t1", blob.HashBytes(a), 100, 0, bytes.NewReader(a[:60]), 1000, 150); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.Usage(t.Context(), "t1"); u != 60 {
		t.Fatalf("usage with a partial upload = %d, want 60", u)
	}
	c := []byte(strings.Repeat("b", 100))
	if _, err := s.Append(t.Context(), "t1", blob.HashBytes(c), 100, 0, bytes.NewReader(c), 1000, 150); !errors.Is(err, blob.ErrQuota) {
		t.Fatalf("second upload beside a partial one: %v", err)
	}
	// Finishing the first does not count its own partial bytes twice.
	if p, err := s.Append(t.Context(), "t1", blob.HashBytes(a), 100, 60, bytes.NewReader(a[60:]), 1000, 150); err != nil || !p.Done {
		t.Fatalf("finish: %+v %v", p, err)
	}
	d := []byte(strings.Repeat("c", 40))
	if _, err := s.Append(t.Context(), "t1", blob.HashBytes(d), 40, 0, bytes.NewReader(d[:10]), 1000, 150); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(t.Context(), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Partial(t.Context(), "t1", blob.HashBytes(d)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("abandoned upload survived the prune: %v", err)
	}
}

// A file of several megabytes, sent in pieces that do not line up with
// any storage chunk, comes back whole through a small read buffer.
func largeFileStreams(t *testing.T, b Backend) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := b(t)(time.Hour, clock(&now))
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	h := blob.HashBytes(data)
	const piece = 768<<10 + 3
	var p blob.Progress
	for off := 0; off < len(data); off += piece {
		var err error
		p, err = s.Append(t.Context(), "t1", h, int64(len(data)), int64(off), bytes.NewReader(data[off:min(off+piece, len(data))]), 8<<20, 8<<20)
		if err != nil {
			t.Fatalf("piece at %d: %v", off, err)
		}
	}
	if !p.Done || p.Info.Size != int64(len(data)) {
		t.Fatalf("progress %+v", p)
	}
	rc, info, err := s.Open(t.Context(), "t1", h)
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("open: %+v %v", info, err)
	}
	defer rc.Close()
	var got bytes.Buffer
	if _, err := io.CopyBuffer(struct{ io.Writer }{&got}, struct{ io.Reader }{rc}, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("content differs")
	}
}

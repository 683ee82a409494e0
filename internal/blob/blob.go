// Package blob keeps job files (datasets, input data, trained models,
// reports) content-addressed by SHA-256, with per-owner accounting so that a
// coordinator can enforce a per-tenant quota. The coordinator imports it;
// nothing in the chain does (files are off chain, committed to by hash in
// receipts).
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Errors of the blob store; test them with errors.Is.
var (
	ErrInvalidHash  = errors.New("blob: invalid hash (want 64 lowercase hex digits of SHA-256)")
	ErrHashMismatch = errors.New("blob: content does not match its hash")
	ErrTooLarge     = errors.New("blob: file too large")
	ErrQuota        = errors.New("blob: owner quota exceeded")
	ErrNotFound     = errors.New("blob: not found")
	ErrEmpty        = errors.New("blob: empty file")
	ErrOffset       = errors.New("blob: upload offset does not match what was received")
)

// Progress is where a resumable upload stands.
type Progress struct {
	Received int64 `json:"received"`
	Total    int64 `json:"total"`
	Done     bool  `json:"done"`
	Info     Info  `json:"file"`
}

// DefaultRetention is how long a holding is kept after its last upload or
// use: a week, time for a job to run and its results to be fetched.
const DefaultRetention = 7 * 24 * time.Hour

// Info describes a stored blob as one owner sees it.
type Info struct {
	Hash     string    `json:"sha256"`
	Size     int64     `json:"size"`
	Uploaded time.Time `json:"uploaded"`
	Expires  time.Time `json:"expires"`
}

// Store is a content-addressed file store with owners. A blob is kept while
// some owner holds it; each owner's holdings count against its quota once,
// however many times it uploads the same content.
type Store interface {
	// Put reads r to EOF, checks that its SHA-256 is hash and that it fits
	// maxSize and the owner's quota (quota - Usage(owner)), then stores it
	// for owner. Putting content the owner already holds is a no-op that
	// renews its retention (an idempotent re-upload), and reads nothing.
	Put(ctx context.Context, owner, hash string, r io.Reader, maxSize, quota int64) (Info, error)
	// Append is a resumable upload: it writes r at offset of owner's
	// partial upload of hash, total bytes in all, and when the last byte is
	// in, checks the hash and stores the blob as Put does. An offset other
	// than what was received so far is ErrOffset (the client asks Progress
	// and resumes there).
	Append(ctx context.Context, owner, hash string, total, offset int64, r io.Reader, maxSize, quota int64) (Progress, error)
	// Partial is how far owner's upload of hash has come.
	Partial(ctx context.Context, owner, hash string) (Progress, error)
	// Open returns the content of a blob owner holds.
	Open(ctx context.Context, owner, hash string) (io.ReadCloser, Info, error)
	// Stat says whether owner holds hash.
	Stat(ctx context.Context, owner, hash string) (Info, error)
	// Grant lets another owner (a miner, the job's tenant) hold a blob that
	// is already stored; it counts against nobody's quota but the first.
	Grant(ctx context.Context, from, to, hash string) error
	// Usage is the bytes owner holds.
	Usage(ctx context.Context, owner string) (int64, error)
	// Prune drops holdings older than their retention and blobs nobody holds.
	Prune(ctx context.Context, now time.Time) (int, error)
}

// ValidHash reports whether h is a lowercase hex SHA-256.
func ValidHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// HashBytes is the blob hash of b.
func HashBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// FS is a Store on a directory: blobs in objects/<aa>/<hash>, holdings in
// owners/<owner>/<hash> (an empty file whose modification time is the
// upload). The directory layout is the index, so a restart loses nothing.
type FS struct {
	dir       string
	retention time.Duration
	now       func() time.Time

	// mu serialises quota checks with the holdings they count; the copy of
	// the body happens outside it (into a temporary file).
	mu sync.Mutex
}

// NewFS opens (creating) a store in dir; holdings expire after retention.
func NewFS(dir string, retention time.Duration, now func() time.Time) (*FS, error) {
	if now == nil {
		now = time.Now
	}
	for _, d := range []string{"objects", "owners", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
	}
	return &FS{dir: dir, retention: retention, now: now}, nil
}

var _ Store = (*FS)(nil)

func (s *FS) objectPath(hash string) string { return filepath.Join(s.dir, "objects", hash[:2], hash) }

func (s *FS) holdPath(owner, hash string) string {
	return filepath.Join(s.dir, "owners", ownerDir(owner), hash)
}

// ownerDir makes an owner id safe as one path element.
func ownerDir(owner string) string {
	if owner == "" || strings.ContainsAny(owner, `/\.`) || len(owner) > 100 {
		return "h-" + HashBytes([]byte(owner))[:32]
	}
	return owner
}

func check(hash string) error {
	if !ValidHash(hash) {
		return fmt.Errorf("%w: %q", ErrInvalidHash, trunc(hash))
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Put implements Store.
func (s *FS) Put(ctx context.Context, owner, hash string, r io.Reader, maxSize, quota int64) (Info, error) {
	if err := check(hash); err != nil {
		return Info{}, err
	}
	if info, err := s.Stat(ctx, owner, hash); err == nil {
		return s.touch(owner, hash, info.Size) // idempotent: already held
	}
	// Content another owner stored is read and checked all the same:
	// knowing a file's hash does not make one its holder.
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "up-*")
	if err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	n, err := io.Copy(tmp, io.LimitReader(ctxReader{ctx, r}, maxSize+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: upload: %w", err)
	}
	if n > maxSize {
		return Info{}, fmt.Errorf("%w: over %d bytes", ErrTooLarge, maxSize)
	}
	return s.finish(owner, hash, tmp.Name(), n, quota)
}

// finish checks a complete upload in file tmp and stores it for owner.
func (s *FS) finish(owner, hash, tmp string, n, quota int64) (Info, error) {
	if n == 0 {
		return Info{}, ErrEmpty
	}
	f, err := os.Open(tmp)
	if err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		os.Remove(tmp) // a bad upload starts over
		return Info{}, fmt.Errorf("%w: got sha256 %s for %d bytes", ErrHashMismatch, got, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.quotaLocked(owner, n, quota, tmp); err != nil {
		os.Remove(tmp)
		return Info{}, err
	}
	obj := s.objectPath(hash)
	if err := os.MkdirAll(filepath.Dir(obj), 0o750); err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	if err := os.Rename(tmp, obj); err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	return s.holdLocked(owner, hash, n)
}

// quotaLocked checks that owner may hold n more bytes; the partial upload
// in file self (being finished) is not counted twice.
func (s *FS) quotaLocked(owner string, n, quota int64, self string) error {
	used, err := s.usage(owner)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(self); self != "" && err == nil && strings.HasSuffix(self, ".part") {
		used -= fi.Size()
	}
	if used+n > quota {
		return fmt.Errorf("%w: %d bytes held, %d more would pass the quota of %d", ErrQuota, used, n, quota)
	}
	return nil
}

func (s *FS) holdLocked(owner, hash string, size int64) (Info, error) {
	p := s.holdPath(owner, hash)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	f, err := os.Create(p)
	if err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	f.Close()
	return s.touch(owner, hash, size)
}

func (s *FS) touch(owner, hash string, size int64) (Info, error) {
	now := s.now().UTC().Truncate(time.Second)
	if err := os.Chtimes(s.holdPath(owner, hash), now, now); err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	return Info{Hash: hash, Size: size, Uploaded: now, Expires: now.Add(s.retention)}, nil
}

func (s *FS) partPath(owner, hash string) string {
	return filepath.Join(s.dir, "tmp", ownerDir(owner)+"-"+hash+".part")
}

// Partial implements Store.
func (s *FS) Partial(ctx context.Context, owner, hash string) (Progress, error) {
	if info, err := s.Stat(ctx, owner, hash); err == nil {
		return Progress{Received: info.Size, Total: info.Size, Done: true, Info: info}, nil
	} else if !errors.Is(err, ErrNotFound) {
		return Progress{}, err
	}
	fi, err := os.Stat(s.partPath(owner, hash))
	if err != nil {
		return Progress{}, fmt.Errorf("%w: no upload of %s", ErrNotFound, hash)
	}
	return Progress{Received: fi.Size()}, nil
}

// Append implements Store.
func (s *FS) Append(ctx context.Context, owner, hash string, total, offset int64, r io.Reader, maxSize, quota int64) (Progress, error) {
	if err := check(hash); err != nil {
		return Progress{}, err
	}
	if info, err := s.Stat(ctx, owner, hash); err == nil { // already whole: nothing to send
		info, err = s.touch(owner, hash, info.Size)
		return Progress{Received: info.Size, Total: info.Size, Done: true, Info: info}, err
	}
	switch {
	case total > maxSize:
		return Progress{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, total, maxSize)
	case total <= 0:
		return Progress{}, ErrEmpty
	}
	if offset == 0 { // refuse early what could never fit, before any byte is kept
		s.mu.Lock()
		err := s.quotaLocked(owner, total, quota, "")
		s.mu.Unlock()
		if err != nil {
			return Progress{}, err
		}
	}
	part := s.partPath(owner, hash)
	var have int64
	if fi, err := os.Stat(part); err == nil {
		have = fi.Size()
	}
	if offset != have {
		return Progress{Received: have, Total: total}, fmt.Errorf("%w: at %d, received %d", ErrOffset, offset, have)
	}
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return Progress{}, fmt.Errorf("blob: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, total-offset+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	got := offset + n
	if err != nil {
		return Progress{Received: got, Total: total}, fmt.Errorf("blob: upload: %w", err)
	}
	if got > total {
		os.Remove(part)
		return Progress{}, fmt.Errorf("%w: more than the declared %d bytes", ErrTooLarge, total)
	}
	if got < total {
		return Progress{Received: got, Total: total}, nil
	}
	info, err := s.finish(owner, hash, part, got, quota)
	if err != nil {
		return Progress{}, err
	}
	return Progress{Received: got, Total: total, Done: true, Info: info}, nil
}

// Stat implements Store.
func (s *FS) Stat(_ context.Context, owner, hash string) (Info, error) {
	if err := check(hash); err != nil {
		return Info{}, err
	}
	h, err := os.Stat(s.holdPath(owner, hash))
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, hash)
	}
	o, err := os.Stat(s.objectPath(hash))
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, hash)
	}
	up := h.ModTime().UTC()
	return Info{Hash: hash, Size: o.Size(), Uploaded: up, Expires: up.Add(s.retention)}, nil
}

// Open implements Store.
func (s *FS) Open(ctx context.Context, owner, hash string) (io.ReadCloser, Info, error) {
	info, err := s.Stat(ctx, owner, hash)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := os.Open(s.objectPath(hash))
	if err != nil {
		return nil, Info{}, fmt.Errorf("%w: %s", ErrNotFound, hash)
	}
	return f, info, nil
}

// Grant implements Store.
func (s *FS) Grant(ctx context.Context, from, to, hash string) error {
	info, err := s.Stat(ctx, from, hash)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.holdLocked(to, hash, info.Size)
	return err
}

// Usage implements Store.
func (s *FS) Usage(_ context.Context, owner string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usage(owner)
}

func (s *FS) usage(owner string) (int64, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "owners", ownerDir(owner)))
	if errors.Is(err, os.ErrNotExist) {
		return s.partialBytes(owner), nil
	}
	if err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	var n int64
	for _, e := range ents {
		if fi, err := os.Stat(s.objectPath(e.Name())); err == nil && ValidHash(e.Name()) {
			n += fi.Size()
		}
	}
	return n + s.partialBytes(owner), nil
}

// partialBytes is what owner's uploads in progress hold: they count
// against its quota, so unfinished uploads cannot fill the disk.
func (s *FS) partialBytes(owner string) int64 {
	parts, _ := filepath.Glob(filepath.Join(s.dir, "tmp", ownerDir(owner)+"-*.part"))
	var n int64
	for _, p := range parts {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Prune implements Store: holdings older than the retention go, then blobs
// no owner holds any more. It returns how many blobs were removed.
func (s *FS) Prune(_ context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := map[string]bool{}
	owners, err := os.ReadDir(filepath.Join(s.dir, "owners"))
	if err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	for _, o := range owners {
		dir := filepath.Join(s.dir, "owners", o.Name())
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if now.Sub(fi.ModTime()) > s.retention {
				os.Remove(filepath.Join(dir, e.Name()))
				continue
			}
			held[e.Name()] = true
		}
	}
	// Uploads abandoned for longer than the retention go too.
	parts, _ := filepath.Glob(filepath.Join(s.dir, "tmp", "*.part"))
	for _, p := range parts {
		if fi, err := os.Stat(p); err == nil && now.Sub(fi.ModTime()) > s.retention {
			os.Remove(p)
		}
	}
	var gone []string
	shards, _ := os.ReadDir(filepath.Join(s.dir, "objects"))
	for _, sh := range shards {
		ents, _ := os.ReadDir(filepath.Join(s.dir, "objects", sh.Name()))
		for _, e := range ents {
			if !held[e.Name()] {
				gone = append(gone, e.Name())
			}
		}
	}
	sort.Strings(gone)
	for _, h := range gone {
		if err := os.Remove(s.objectPath(h)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("blob: %w", err)
		}
	}
	return len(gone), nil
}

// ctxReader stops a long upload when its request ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

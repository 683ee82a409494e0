package store

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aitbc/aitbc/internal/blob"
)

// FileChunk is the most bytes of a job file one database row holds. A
// read or an upload holds one chunk in memory at a time, never the file.
const FileChunk = 256 << 10

// Advisory lock keys of the job files (the two-key form: apart from the
// migrations' one-key lock). fileOwnerLock with hashtext(owner)
// serialises one owner's quota checks with the holdings they count;
// filePruneLock is shared by everything that adds a holding and taken
// alone by Prune, so that a prune never drops a file a holding is being
// added to.
const (
	fileOwnerLock = 0x66696c65 // "file"
	filePruneLock = 0x70727565 // "prue"
)

// PGFiles is a blob.Store in the PostgreSQL database of a Postgres store:
// coordinators sharing the database share the job files too, with no
// shared directory, and an upload started on one coordinator is finished
// on any other (the upload's bytes and the SHA-256 state of what came so
// far are rows). Files are chunked bytea rows (FileChunk each) keyed by a
// data id: a finished upload becomes a file by naming its data id, so no
// byte is copied.
type PGFiles struct {
	pool      *pgxpool.Pool
	retention time.Duration
	now       func() time.Time
}

var _ blob.Store = (*PGFiles)(nil)

// Files returns the job-file store in this database; holdings expire after
// retention (blob.DefaultRetention when 0); now nil is time.Now.
func (s *Postgres) Files(retention time.Duration, now func() time.Time) *PGFiles {
	if retention <= 0 {
		retention = blob.DefaultRetention
	}
	if now == nil {
		now = time.Now
	}
	return &PGFiles{pool: s.pool, retention: retention, now: now}
}

func checkHash(h string) error {
	if !blob.ValidHash(h) {
		if len(h) > 80 {
			h = h[:80] + "…"
		}
		return fmt.Errorf("%w: %q", blob.ErrInvalidHash, h)
	}
	return nil
}

func (f *PGFiles) nowMs() int64 { return f.now().UTC().Truncate(time.Second).UnixMilli() }

func (f *PGFiles) info(hash string, size, uploadedMs int64) blob.Info {
	up := time.UnixMilli(uploadedMs).UTC()
	return blob.Info{Hash: hash, Size: size, Uploaded: up, Expires: up.Add(f.retention)}
}

// lockOwner takes owner's quota lock and the shared side of the prune
// lock for the rest of tx.
func lockOwner(ctx context.Context, tx pgx.Tx, owner string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1, 0), pg_advisory_xact_lock($2, hashtext($3))`,
		filePruneLock, fileOwnerLock, owner); err != nil {
		return fmt.Errorf("blob: lock: %w", err)
	}
	return nil
}

// usage is what owner holds, uploads in progress included, less the upload
// of hash (which is being finished and counts as its whole size then).
func usage(ctx context.Context, q pgx.Tx, owner, except string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT
		COALESCE((SELECT SUM(f.size) FROM file_holds h JOIN files f ON f.hash = h.hash WHERE h.owner = $1), 0) +
		COALESCE((SELECT SUM(received) FROM file_uploads WHERE owner = $1 AND hash <> $2), 0)`, owner, except).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("blob: usage: %w", err)
	}
	return n, nil
}

func quotaErr(used, n, quota int64) error {
	return fmt.Errorf("%w: %d bytes held, %d more would pass the quota of %d", blob.ErrQuota, used, n, quota)
}

// Stat implements blob.Store.
func (f *PGFiles) Stat(ctx context.Context, owner, hash string) (blob.Info, error) {
	if err := checkHash(hash); err != nil {
		return blob.Info{}, err
	}
	var size, up int64
	err := f.pool.QueryRow(ctx, `SELECT f.size, h.uploaded FROM file_holds h JOIN files f ON f.hash = h.hash
		WHERE h.owner = $1 AND h.hash = $2`, owner, hash).Scan(&size, &up)
	if errors.Is(err, pgx.ErrNoRows) {
		return blob.Info{}, fmt.Errorf("%w: %s", blob.ErrNotFound, hash)
	}
	if err != nil {
		return blob.Info{}, fmt.Errorf("blob: %w", err)
	}
	return f.info(hash, size, up), nil
}

// touch renews owner's holding of hash (an idempotent re-upload).
func (f *PGFiles) touch(ctx context.Context, owner, hash string, size int64) (blob.Info, error) {
	now := f.nowMs()
	if _, err := f.pool.Exec(ctx, `UPDATE file_holds SET uploaded = $3 WHERE owner = $1 AND hash = $2`, owner, hash, now); err != nil {
		return blob.Info{}, fmt.Errorf("blob: %w", err)
	}
	return f.info(hash, size, now), nil
}

// hold stores the file whose bytes are dataID (unless the same content is
// stored already: then those bytes go) and lets owner hold it, in tx.
func (f *PGFiles) hold(ctx context.Context, tx pgx.Tx, owner, hash string, size, dataID int64) (blob.Info, error) {
	tag, err := tx.Exec(ctx, `INSERT INTO files(hash, size, data_id) VALUES($1,$2,$3) ON CONFLICT (hash) DO NOTHING`, hash, size, dataID)
	if err != nil {
		return blob.Info{}, fmt.Errorf("blob: %w", err)
	}
	if tag.RowsAffected() == 0 { // another owner stored the same content first: keep one copy
		if _, err := tx.Exec(ctx, `DELETE FROM file_chunks WHERE data_id = $1`, dataID); err != nil {
			return blob.Info{}, fmt.Errorf("blob: %w", err)
		}
	}
	now := f.nowMs()
	if _, err := tx.Exec(ctx, `INSERT INTO file_holds(owner, hash, uploaded) VALUES($1,$2,$3)
		ON CONFLICT (owner, hash) DO UPDATE SET uploaded = excluded.uploaded`, owner, hash, now); err != nil {
		return blob.Info{}, fmt.Errorf("blob: %w", err)
	}
	return f.info(hash, size, now), nil
}

// Put implements blob.Store. The bytes go into the database chunk by chunk
// as they are read (a staging row names them, so that a Prune drops what a
// coordinator that died mid-Put left), then are checked and stored. Unlike
// a holding of content another owner stored, content is always read and
// checked: knowing a file's hash does not make one its holder.
func (f *PGFiles) Put(ctx context.Context, owner, hash string, r io.Reader, maxSize, quota int64) (blob.Info, error) {
	if err := checkHash(hash); err != nil {
		return blob.Info{}, err
	}
	if info, err := f.Stat(ctx, owner, hash); err == nil {
		return f.touch(ctx, owner, hash, info.Size)
	} else if !errors.Is(err, blob.ErrNotFound) {
		return blob.Info{}, err
	}
	var dataID int64
	if err := f.pool.QueryRow(ctx, `INSERT INTO file_staging(data_id, started) VALUES(nextval('file_data_ids'), $1) RETURNING data_id`,
		f.nowMs()).Scan(&dataID); err != nil {
		return blob.Info{}, fmt.Errorf("blob: %w", err)
	}
	stored := false
	defer func() {
		// The staging row goes in every case; the bytes too unless they
		// became a file. Not with ctx: a cut request still cleans up.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if !stored {
			_, _ = f.pool.Exec(cctx, `DELETE FROM file_chunks WHERE data_id = $1`, dataID)
		}
		_, _ = f.pool.Exec(cctx, `DELETE FROM file_staging WHERE data_id = $1`, dataID)
	}()
	h := sha256.New()
	buf := make([]byte, FileChunk)
	lr := io.LimitReader(r, maxSize+1)
	var n int64
	for seq := 0; ; seq++ {
		if err := ctx.Err(); err != nil {
			return blob.Info{}, fmt.Errorf("blob: upload: %w", err)
		}
		k, err := io.ReadFull(lr, buf)
		if k > 0 {
			n += int64(k)
			if n > maxSize {
				return blob.Info{}, fmt.Errorf("%w: over %d bytes", blob.ErrTooLarge, maxSize)
			}
			h.Write(buf[:k])
			if _, err := f.pool.Exec(ctx, `INSERT INTO file_chunks(data_id, seq, bytes) VALUES($1,$2,$3)`, dataID, seq, buf[:k]); err != nil {
				return blob.Info{}, fmt.Errorf("blob: %w", err)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return blob.Info{}, fmt.Errorf("blob: upload: %w", err)
		}
	}
	if n == 0 {
		return blob.Info{}, blob.ErrEmpty
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return blob.Info{}, fmt.Errorf("%w: got sha256 %s for %d bytes", blob.ErrHashMismatch, got, n)
	}
	var info blob.Info
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		used, err := usage(ctx, tx, owner, "")
		if err != nil {
			return err
		}
		if used+n > quota {
			return quotaErr(used, n, quota)
		}
		info, err = f.hold(ctx, tx, owner, hash, n, dataID)
		return err
	})
	if err != nil {
		return blob.Info{}, err
	}
	stored = true
	return info, nil
}

// upload is a row of file_uploads.
type upload struct {
	total, received int64
	chunks          int
	dataID          int64
	shaState        []byte
}

func (f *PGFiles) progress(u upload) blob.Progress {
	return blob.Progress{Received: u.received, Total: u.total}
}

// Partial implements blob.Store.
func (f *PGFiles) Partial(ctx context.Context, owner, hash string) (blob.Progress, error) {
	if info, err := f.Stat(ctx, owner, hash); err == nil {
		return blob.Progress{Received: info.Size, Total: info.Size, Done: true, Info: info}, nil
	} else if !errors.Is(err, blob.ErrNotFound) {
		return blob.Progress{}, err
	}
	var received, total int64
	err := f.pool.QueryRow(ctx, `SELECT received, total FROM file_uploads WHERE owner = $1 AND hash = $2`, owner, hash).Scan(&received, &total)
	if errors.Is(err, pgx.ErrNoRows) {
		return blob.Progress{}, fmt.Errorf("%w: no upload of %s", blob.ErrNotFound, hash)
	}
	if err != nil {
		return blob.Progress{}, fmt.Errorf("blob: %w", err)
	}
	return blob.Progress{Received: received, Total: total}, nil
}

// Append implements blob.Store. Each chunk of the body commits on its own
// (with the hash state of what came so far), so an upload cut anywhere
// resumes after its last whole chunk, on this coordinator or another. No
// transaction stays open while the client's bytes are read.
func (f *PGFiles) Append(ctx context.Context, owner, hash string, total, offset int64, r io.Reader, maxSize, quota int64) (blob.Progress, error) {
	if err := checkHash(hash); err != nil {
		return blob.Progress{}, err
	}
	if info, err := f.Stat(ctx, owner, hash); err == nil { // already whole: nothing to send
		info, err = f.touch(ctx, owner, hash, info.Size)
		return blob.Progress{Received: info.Size, Total: info.Size, Done: true, Info: info}, err
	} else if !errors.Is(err, blob.ErrNotFound) {
		return blob.Progress{}, err
	}
	switch {
	case total > maxSize:
		return blob.Progress{}, fmt.Errorf("%w: %d bytes, limit %d", blob.ErrTooLarge, total, maxSize)
	case total <= 0:
		return blob.Progress{}, blob.ErrEmpty
	}
	if offset == 0 {
		if p, err := f.begin(ctx, owner, hash, total, quota); err != nil {
			return p, err
		}
	}
	buf := make([]byte, FileChunk)
	lr := io.LimitReader(ctxReader{ctx, r}, total-offset+1)
	pos := offset
	for {
		k, rerr := io.ReadFull(lr, buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return blob.Progress{Received: pos, Total: total}, fmt.Errorf("blob: upload: %w", rerr)
		}
		if k == 0 {
			break
		}
		if pos+int64(k) > total {
			f.abort(ctx, owner, hash)
			return blob.Progress{}, fmt.Errorf("%w: more than the declared %d bytes", blob.ErrTooLarge, total)
		}
		if pos+int64(k) == total {
			// The last byte: one more would break the declared size.
			var one [1]byte
			if m, _ := lr.Read(one[:]); m > 0 {
				f.abort(ctx, owner, hash)
				return blob.Progress{}, fmt.Errorf("%w: more than the declared %d bytes", blob.ErrTooLarge, total)
			}
		}
		p, err := f.appendChunk(ctx, owner, hash, total, pos, buf[:k], quota)
		if err != nil || p.Done {
			return p, err
		}
		pos = p.Received
		if rerr != nil {
			break
		}
	}
	if pos == offset { // nothing sent: say where the upload stands
		p, err := f.Partial(ctx, owner, hash)
		if err != nil {
			return blob.Progress{Total: total}, fmt.Errorf("%w: at %d, received 0", blob.ErrOffset, offset)
		}
		if p.Received != offset {
			return p, fmt.Errorf("%w: at %d, received %d", blob.ErrOffset, offset, p.Received)
		}
		return p, nil
	}
	return blob.Progress{Received: pos, Total: total}, nil
}

// begin makes owner's upload of hash, refusing early what could never fit
// its quota, before any byte is kept. An upload already begun is kept (its
// offset decides).
func (f *PGFiles) begin(ctx context.Context, owner, hash string, total, quota int64) (blob.Progress, error) {
	var p blob.Progress
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, owner); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM file_uploads WHERE owner = $1 AND hash = $2)`, owner, hash).Scan(&exists); err != nil {
			return fmt.Errorf("blob: %w", err)
		}
		if exists {
			return nil
		}
		used, err := usage(ctx, tx, owner, hash)
		if err != nil {
			return err
		}
		if used+total > quota {
			return quotaErr(used, total, quota)
		}
		state, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return fmt.Errorf("blob: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO file_uploads(owner, hash, total, data_id, sha_state, updated)
			VALUES($1,$2,$3, nextval('file_data_ids'), $4, $5)`, owner, hash, total, state, f.nowMs())
		if err != nil {
			return fmt.Errorf("blob: %w", err)
		}
		return nil
	})
	return p, err
}

// abort drops owner's upload of hash and its bytes (a bad upload starts
// over).
func (f *PGFiles) abort(ctx context.Context, owner, hash string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, _ = f.pool.Exec(cctx, `WITH u AS (DELETE FROM file_uploads WHERE owner = $1 AND hash = $2 RETURNING data_id)
		DELETE FROM file_chunks WHERE data_id IN (SELECT data_id FROM u)`, owner, hash)
}

// errAfterCommit is an answer whose transaction must still commit (it
// dropped a bad upload).
type errAfterCommit struct{ err error }

func (e errAfterCommit) Error() string { return e.err.Error() }

// appendChunk adds data at pos of owner's upload of hash in one
// transaction, and when it is the last, checks the hash and the quota and
// stores the file.
func (f *PGFiles) appendChunk(ctx context.Context, owner, hash string, total, pos int64, data []byte, quota int64) (blob.Progress, error) {
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		return blob.Progress{}, fmt.Errorf("blob: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after a commit it does nothing
	p, err := f.appendTx(ctx, tx, owner, hash, total, pos, data, quota)
	var eac errAfterCommit
	if errors.As(err, &eac) {
		if cerr := tx.Commit(ctx); cerr != nil {
			return blob.Progress{}, fmt.Errorf("blob: %w", cerr)
		}
		return p, eac.err
	}
	if err != nil {
		return p, err
	}
	if err := tx.Commit(ctx); err != nil {
		return blob.Progress{}, fmt.Errorf("blob: %w", err)
	}
	return p, nil
}

func (f *PGFiles) appendTx(ctx context.Context, tx pgx.Tx, owner, hash string, total, pos int64, data []byte, quota int64) (blob.Progress, error) {
	if err := lockOwner(ctx, tx, owner); err != nil {
		return blob.Progress{}, err
	}
	var u upload
	err := tx.QueryRow(ctx, `SELECT total, received, chunks, data_id, sha_state FROM file_uploads WHERE owner = $1 AND hash = $2 FOR UPDATE`,
		owner, hash).Scan(&u.total, &u.received, &u.chunks, &u.dataID, &u.shaState)
	if errors.Is(err, pgx.ErrNoRows) {
		return blob.Progress{Total: total}, fmt.Errorf("%w: at %d, received 0", blob.ErrOffset, pos)
	}
	if err != nil {
		return blob.Progress{}, fmt.Errorf("blob: %w", err)
	}
	if u.total != total {
		return f.progress(u), fmt.Errorf("%w: an upload of %d bytes is in progress, not %d", blob.ErrOffset, u.total, total)
	}
	if u.received != pos {
		return f.progress(u), fmt.Errorf("%w: at %d, received %d", blob.ErrOffset, pos, u.received)
	}
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(u.shaState); err != nil {
		return blob.Progress{}, fmt.Errorf("blob: upload state: %w", err)
	}
	h.Write(data)
	if _, err := tx.Exec(ctx, `INSERT INTO file_chunks(data_id, seq, bytes) VALUES($1,$2,$3)`, u.dataID, u.chunks, data); err != nil {
		return blob.Progress{}, fmt.Errorf("blob: %w", err)
	}
	u.received += int64(len(data))
	u.chunks++
	if u.received < total {
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return blob.Progress{}, fmt.Errorf("blob: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE file_uploads SET received = $3, chunks = $4, sha_state = $5, updated = $6 WHERE owner = $1 AND hash = $2`,
			owner, hash, u.received, u.chunks, state, f.nowMs()); err != nil {
			return blob.Progress{}, fmt.Errorf("blob: %w", err)
		}
		return f.progress(u), nil
	}
	return f.finish(ctx, tx, owner, hash, u, h, quota)
}

// finish stores a whole upload as a file, or drops it when its content is
// not its hash or it no longer fits the quota.
func (f *PGFiles) finish(ctx context.Context, tx pgx.Tx, owner, hash string, u upload, h hash.Hash, quota int64) (blob.Progress, error) {
	drop := func(err error) (blob.Progress, error) {
		if _, derr := tx.Exec(ctx, `DELETE FROM file_chunks WHERE data_id = $1`, u.dataID); derr != nil {
			return blob.Progress{}, fmt.Errorf("blob: %w", derr)
		}
		if _, derr := tx.Exec(ctx, `DELETE FROM file_uploads WHERE owner = $1 AND hash = $2`, owner, hash); derr != nil {
			return blob.Progress{}, fmt.Errorf("blob: %w", derr)
		}
		return blob.Progress{}, errAfterCommit{err}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return drop(fmt.Errorf("%w: got sha256 %s for %d bytes", blob.ErrHashMismatch, got, u.received))
	}
	used, err := usage(ctx, tx, owner, hash)
	if err != nil {
		return blob.Progress{}, err
	}
	if used+u.received > quota {
		return drop(quotaErr(used, u.received, quota))
	}
	if _, err := tx.Exec(ctx, `DELETE FROM file_uploads WHERE owner = $1 AND hash = $2`, owner, hash); err != nil {
		return blob.Progress{}, fmt.Errorf("blob: %w", err)
	}
	info, err := f.hold(ctx, tx, owner, hash, u.received, u.dataID)
	if err != nil {
		return blob.Progress{}, err
	}
	return blob.Progress{Received: u.received, Total: u.total, Done: true, Info: info}, nil
}

// Open implements blob.Store: the content streams a chunk at a time.
func (f *PGFiles) Open(ctx context.Context, owner, hash string) (io.ReadCloser, blob.Info, error) {
	info, err := f.Stat(ctx, owner, hash)
	if err != nil {
		return nil, blob.Info{}, err
	}
	var dataID int64
	if err := f.pool.QueryRow(ctx, `SELECT data_id FROM files WHERE hash = $1`, hash).Scan(&dataID); err != nil {
		return nil, blob.Info{}, fmt.Errorf("%w: %s", blob.ErrNotFound, hash)
	}
	return &chunkReader{ctx: ctx, pool: f.pool, dataID: dataID, size: info.Size}, info, nil
}

// chunkReader reads a file's chunks in order, one query each.
type chunkReader struct {
	ctx    context.Context
	pool   *pgxpool.Pool
	dataID int64
	size   int64
	read   int64
	seq    int
	buf    []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.buf) == 0 {
		if c.read >= c.size {
			return 0, io.EOF
		}
		err := c.pool.QueryRow(c.ctx, `SELECT bytes FROM file_chunks WHERE data_id = $1 AND seq = $2`, c.dataID, c.seq).Scan(&c.buf)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && len(c.buf) == 0) {
			return 0, fmt.Errorf("blob: file cut short at byte %d of %d (pruned while read?): %w", c.read, c.size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, fmt.Errorf("blob: read: %w", err)
		}
		c.seq++
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	c.read += int64(n)
	return n, nil
}

func (c *chunkReader) Close() error { c.buf = nil; return nil }

// Grant implements blob.Store.
func (f *PGFiles) Grant(ctx context.Context, from, to, hash string) error {
	if _, err := f.Stat(ctx, from, hash); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		if err := lockOwner(ctx, tx, to); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO file_holds(owner, hash, uploaded) VALUES($1,$2,$3)
			ON CONFLICT (owner, hash) DO UPDATE SET uploaded = excluded.uploaded`, to, hash, f.nowMs())
		if err != nil {
			return fmt.Errorf("blob: grant: %w", err)
		}
		return nil
	})
}

// Usage implements blob.Store.
func (f *PGFiles) Usage(ctx context.Context, owner string) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		var err error
		n, err = usage(ctx, tx, owner, "")
		return err
	})
	return n, err
}

// Prune implements blob.Store: holdings, uploads and staged Puts older
// than the retention go, then files no owner holds, with their bytes. It
// returns how many files were removed.
func (f *PGFiles) Prune(ctx context.Context, now time.Time) (int, error) {
	cut := now.Add(-f.retention).UnixMilli()
	var gone int
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, filePruneLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM file_holds WHERE uploaded < $1`, cut); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `WITH u AS (DELETE FROM file_uploads WHERE updated < $1 RETURNING data_id)
			DELETE FROM file_chunks WHERE data_id IN (SELECT data_id FROM u)`, cut); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `WITH s AS (DELETE FROM file_staging WHERE started < $1 RETURNING data_id)
			DELETE FROM file_chunks WHERE data_id IN (SELECT data_id FROM s)`, cut); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM files f WHERE NOT EXISTS (SELECT 1 FROM file_holds h WHERE h.hash = f.hash) RETURNING data_id`)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM file_chunks WHERE data_id = ANY($1)`, ids); err != nil {
			return err
		}
		gone = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("blob: prune: %w", err)
	}
	return gone, nil
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

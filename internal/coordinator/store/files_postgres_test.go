package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aitbc/aitbc/internal/blob"
	"github.com/aitbc/aitbc/internal/blob/blobtest"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

// TestPGFilesContract runs the blob.Store contract (the directory store's
// tests) on job files in PostgreSQL. Each open is another coordinator on
// the same database, so the reopen test is an upload started on one
// coordinator and finished on another.
func TestPGFilesContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) func(time.Duration, func() time.Time) blob.Store {
		dsn := pgtest.DSN(t)
		n := 0
		return func(retention time.Duration, now func() time.Time) blob.Store {
			n++
			s, err := store.OpenPostgres(context.Background(), dsn, store.PostgresOptions{Owner: "c" + string(rune('0'+n))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s.Files(retention, now)
		}
	})
}

// Refused and abandoned uploads leave no bytes in the database: a Put
// whose content is not its hash, an upload dropped for a bad last piece,
// and one abandoned past the retention are all gone after a prune, with
// their chunk rows.
func TestPGFilesLeaveNoBytesBehind(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	st, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{Owner: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := st.Files(time.Hour, func() time.Time { return now })
	big := bytes.Repeat([]byte("q"), 2*store.FileChunk+10)
	if _, err := f.Put(ctx, "t1", blob.HashBytes([]byte("other")), bytes.NewReader(big), 1<<30, 1<<30); !errors.Is(err, blob.ErrHashMismatch) {
		t.Fatalf("put: %v", err)
	}
	h := blob.HashBytes(big)
	if _, err := f.Append(ctx, "t1", h, int64(len(big)), 0, bytes.NewReader(big[:store.FileChunk+5]), 1<<30, 1<<30); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append(ctx, "t1", h, int64(len(big)), store.FileChunk+5, bytes.NewReader(bytes.Repeat([]byte("x"), len(big)-store.FileChunk-5)), 1<<30, 1<<30); !errors.Is(err, blob.ErrHashMismatch) {
		t.Fatalf("bad last piece: %v", err)
	}
	if _, err := f.Append(ctx, "t2", h, int64(len(big)), 0, bytes.NewReader(big[:100]), 1<<30, 1<<30); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	chunks := func() int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM file_chunks`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := chunks(); n != 1 { // t2's abandoned first piece
		t.Fatalf("%d chunk rows before the prune, want 1", n)
	}
	if _, err := f.Prune(ctx, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != 0 {
		t.Fatalf("%d chunk rows after the prune", n)
	}
}

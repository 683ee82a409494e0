package store_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

func TestTenantsAndJobsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	var a1, a2 address.Address
	a1[0], a2[0] = 1, 2
	k1 := sha256.Sum256([]byte("key-1"))
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := s.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "customer-1", Address: a1, Created: now}, k1[:]); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(ctx, store.Tenant{ID: "t9", Name: "dup", Address: a1, Created: now}, []byte("x")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate address: %v", err)
	}
	for i := 0; i < 5; i++ {
		j := &store.Job{ID: fmt.Sprintf("%032x", i), TenantID: "t1", Customer: a1, Model: "m", Status: store.StatusQueued, Created: now.Add(time.Duration(i) * time.Second)}
		if i == 4 {
			j.Status = store.StatusSettled
		}
		if err := s.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s, err = store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tn, err := s.TenantByKey(ctx, k1[:])
	if err != nil || tn.ID != "t1" || tn.Address != a1 {
		t.Fatalf("tenant by key: %+v %v", tn, err)
	}
	other := sha256.Sum256([]byte("key-2"))
	if _, err := s.TenantByKey(ctx, other[:]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := s.TenantByAddress(ctx, a2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown address: %v", err)
	}
	active, err := s.ActiveJobs(ctx)
	if err != nil || len(active) != 4 || active[0].ID != fmt.Sprintf("%032x", 0) {
		t.Fatalf("active jobs: %d %v", len(active), err)
	}
	list, _ := s.JobsByTenant(ctx, "t1", 2)
	if len(list) != 2 || list[0].ID != fmt.Sprintf("%032x", 4) {
		t.Fatalf("newest first: %+v", list)
	}
	if _, err := s.Job(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	counts, _ := s.CountByStatus(ctx)
	if counts[store.StatusQueued] != 4 || counts[store.StatusSettled] != 1 {
		t.Fatalf("counts %v", counts)
	}
}

// Finding 7: the database (API key hashes, prompts, results) and its WAL
// are readable by their owner only, also when an older run left the file
// world-readable.
func TestDatabaseIsPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "coordinator.db")
	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTenant(context.Background(), store.Tenant{ID: "t1", Name: "a", Created: time.Now()}, []byte("k")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", filepath.Base(f), fi.Mode().Perm())
		}
	}
	st.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened database has mode %v", fi.Mode().Perm())
	}
}

// A database from before key creation and last use were kept opens, and
// its keys are listed (created unknown) and can be touched and revoked.
func TestOldKeyTableIsMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL UNIQUE, created INTEGER NOT NULL)`,
		`CREATE TABLE tenant_keys (key_hash BLOB PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id))`,
		`INSERT INTO tenants VALUES ('t1', 'a', 'x', 1)`,
		`INSERT INTO tenant_keys VALUES (x'0102030405060708ff', 't1')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.TouchKey(ctx, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0xff}, time.Unix(1000, 0)); err != nil {
		t.Fatal(err)
	}
	keys, err := st.TenantKeys(ctx, "t1")
	if err != nil || len(keys) != 1 || keys[0].ID != "0102030405060708" || keys[0].LastUsed == nil || !keys[0].Created.IsZero() {
		t.Fatalf("keys %+v %v", keys, err)
	}
	if err := st.RevokeKey(ctx, "t1", "0102030405060708"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeKey(ctx, "t1", "0102030405060708"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
}

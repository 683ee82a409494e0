package store_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// oldSchemas are the coordinator's schemas before versioning: the first
// releases', and the previous one (API keys with creation and last use),
// as they wrote them.
var oldSchemas = map[string][]string{
	"first": {
		`CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL UNIQUE, created INTEGER NOT NULL)`,
		`CREATE TABLE tenant_keys (key_hash BLOB PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id))`,
		`CREATE TABLE jobs (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, status TEXT NOT NULL, created INTEGER NOT NULL, data BLOB NOT NULL)`,
		`CREATE INDEX jobs_tenant ON jobs(tenant_id, created)`,
		`CREATE INDEX jobs_status ON jobs(status)`,
	},
	"previous": {
		`CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT NOT NULL UNIQUE, created INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS tenant_keys (key_hash BLOB PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), created INTEGER NOT NULL DEFAULT 0, last_used INTEGER NOT NULL DEFAULT 0)`,
		`CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, status TEXT NOT NULL, created INTEGER NOT NULL, data BLOB NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs(tenant_id, created)`,
		`CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status)`,
	},
}

func execSQL(t *testing.T, path string, qs ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func querySQL(t *testing.T, path, q string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// A store written by the unversioned schema is migrated at open to the
// current version without losing a tenant, a key or a job, and then works
// as a new one (key times, registration memory).
func TestStoreFromPreviousSchemaIsMigratedWithoutDataLoss(t *testing.T) {
	for name, ddl := range oldSchemas {
		t.Run(name, func(t *testing.T) { testMigrationFrom(t, ddl) })
	}
}

func testMigrationFrom(t *testing.T, oldSchema []string) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "coordinator.db")
	var addr address.Address
	addr[0] = 7
	key := sha256.Sum256([]byte("old key"))
	job := fmt.Sprintf(`{"id":"%032x","tenant_id":"t1","model":"m","status":"queued","prompt":"hello","max_tokens":16}`, 1)
	execSQL(t, path, append(oldSchema,
		`INSERT INTO tenants VALUES ('t1', 'alice', '`+addr.String()+`', 1700000000000)`,
		fmt.Sprintf(`INSERT INTO tenant_keys(key_hash, tenant_id) VALUES (x'%x', 't1')`, key[:]),
		fmt.Sprintf(`INSERT INTO jobs VALUES ('%032x', 't1', 'queued', 1700000000000, '%s')`, 1, job),
	)...)

	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	tn, err := st.TenantByKey(ctx, key[:])
	if err != nil || tn.ID != "t1" || tn.Name != "alice" || tn.Address != addr || tn.Created.UnixMilli() != 1700000000000 {
		t.Fatalf("tenant after migration: %+v %v", tn, err)
	}
	j, err := st.Job(ctx, fmt.Sprintf("%032x", 1))
	if err != nil || j.Prompt != "hello" || j.MaxTokens != 16 || j.Status != store.StatusQueued {
		t.Fatalf("job after migration: %+v %v", j, err)
	}
	if active, err := st.ActiveJobs(ctx); err != nil || len(active) != 1 {
		t.Fatalf("active jobs after migration: %d %v", len(active), err)
	}
	if err := st.TouchKey(ctx, key[:], time.Unix(1800000000, 0)); err != nil {
		t.Fatal(err)
	}
	keys, err := st.TenantKeys(ctx, "t1")
	if err != nil || len(keys) != 1 || keys[0].LastUsed == nil || keys[0].LastUsed.Unix() != 1800000000 {
		t.Fatalf("keys after migration: %+v %v", keys, err)
	}
	now := time.Unix(1800000000, 0)
	if err := st.UseRegistration(ctx, []byte("sig"), now.Add(time.Minute), now, 0); err != nil {
		t.Fatalf("registration memory after migration: %v", err)
	}
	st.Close()
	if v := querySQL(t, path, `SELECT version FROM schema_version`); v != store.SchemaVersion {
		t.Fatalf("schema version %d, want %d", v, store.SchemaVersion)
	}

	// Opening again applies nothing twice and keeps everything.
	st, err = store.OpenSQLite(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer st.Close()
	if _, err := st.TenantByKey(ctx, key[:]); err != nil {
		t.Fatal(err)
	}
	if n := querySQL(t, path, `SELECT COUNT(*) FROM schema_version`); n != 1 {
		t.Fatalf("%d schema_version rows", n)
	}
}

// A store written by a newer coordinator is refused with a clear error and
// left as it was.
func TestStoreNewerThanBinaryIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.db")
	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTenant(context.Background(), store.Tenant{ID: "t1", Name: "a", Created: time.Now()}, []byte("k")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	newer := store.SchemaVersion + 1
	execSQL(t, path, fmt.Sprintf(`UPDATE schema_version SET version = %d`, newer), `CREATE TABLE from_the_future (x INTEGER)`)

	_, err = store.OpenSQLite(path)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("open of a newer store: %v, want ErrSchemaTooNew", err)
	}
	want := fmt.Sprintf("schema version %d, this binary knows up to %d", newer, store.SchemaVersion)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not say %q and the path", err, want)
	}
	if v := querySQL(t, path, `SELECT version FROM schema_version`); v != newer {
		t.Errorf("refused store's version became %d", v)
	}
	if n := querySQL(t, path, `SELECT COUNT(*) FROM tenants`); n != 1 {
		t.Errorf("refused store has %d tenants", n)
	}
}

// A used registration signature is remembered across reopening the store
// until its validity ends, then forgotten; the number live is capped.
func TestUsedRegistrationSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "coordinator.db")
	st, err := store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1800000000, 0)
	until := now.Add(10 * time.Minute)
	if err := st.UseRegistration(ctx, []byte("sig-1"), until, now, 2); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = store.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.UseRegistration(ctx, []byte("sig-1"), until, now.Add(time.Minute), 2); !errors.Is(err, store.ErrExists) {
		t.Fatalf("replay after reopen: %v, want ErrExists", err)
	}
	if err := st.UseRegistration(ctx, []byte("sig-2"), until, now, 2); err != nil {
		t.Fatal(err)
	}
	if err := st.UseRegistration(ctx, []byte("sig-3"), until, now, 2); !errors.Is(err, store.ErrFull) {
		t.Fatalf("third live signature with a cap of 2: %v, want ErrFull", err)
	}
	// Past its validity the signature is forgotten (the coordinator's
	// timestamp check refuses it by then anyway), and room is made.
	if err := st.UseRegistration(ctx, []byte("sig-1"), until.Add(time.Hour), until, 2); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// Two processes opening a new store at once (the coordinator starting and
// `aitbc coordinator tenant add`) both end up with a migrated store: each
// migration runs once.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.db")
	execSQL(t, path, oldSchemas["first"]...)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			st, err := store.OpenSQLite(path)
			if err == nil {
				err = st.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
	if v := querySQL(t, path, `SELECT version FROM schema_version`); v != store.SchemaVersion {
		t.Fatalf("schema version %d, want %d", v, store.SchemaVersion)
	}
	if n := querySQL(t, path, `SELECT COUNT(*) FROM pragma_table_info('tenant_keys')`); n != 4 {
		t.Fatalf("tenant_keys has %d columns, want 4", n)
	}
}

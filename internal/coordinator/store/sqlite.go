package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver

	"github.com/aitbc/aitbc/internal/address"
)

// SQLite is a Store in one SQLite file.
type SQLite struct {
	db *sql.DB
	// wmu lets one write at a time reach SQLite, which takes one writer
	// anyway: concurrent writers on several connections met SQLITE_BUSY and
	// slept in its busy handler, which doubled a submission's latency under
	// load. Readers are not held (WAL serves them beside the writer).
	wmu sync.Mutex
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (or creates) the database at path; ":memory:" gives a
// private in-memory database for tests. It applies the schema migrations
// the database lacks (migrate.go) and refuses, with ErrSchemaTooNew, one
// written by a newer binary.
func OpenSQLite(path string) (*SQLite, error) {
	dsn := "file::memory:?cache=private"
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		// The database holds API key hashes, prompts and results: only its
		// owner may read it. SQLite gives its -wal and -shm files the
		// database file's mode.
		if err := createPrivate(path); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		// busy_timeout first: the pragmas run in order, and switching a
		// database to WAL takes an exclusive lock that a process opening
		// it at the same moment would otherwise fail on at once
		// (SQLITE_BUSY) instead of waiting.
		dsn = "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// An in-memory database exists per connection: keep one. A file in
	// WAL mode serves readers in parallel while SQLite serialises writers
	// (busy_timeout makes a writer wait instead of failing).
	if path == ":memory:" {
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(4)
	}
	// Opening is a start-up step with nothing to cancel it; migrations
	// are small DDL steps.
	if err := migrateRetrying(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// migrateRetrying runs migrate, again while another process holds the
// database (SQLITE_BUSY), for up to 10 s. busy_timeout covers ordinary
// writes, but not every lock an opening connection takes: switching a new
// file to WAL, and a transaction whose snapshot another process's commit
// made stale, fail at once. Two processes opening one store together (the
// coordinator starting and `aitbc coordinator tenant add`) then both
// succeed; each migration still runs once (applyMigration looks again
// under the write lock).
func migrateRetrying(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(10 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := migrate(ctx, db)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (or one of its
// extended codes: the low byte is the primary code).
func isBusy(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		return coded.Code()&0xff == 5
	}
	return false
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// CreateTenant inserts a tenant and its first key.
func (s *SQLite) CreateTenant(ctx context.Context, t Tenant, keyHash []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO tenants(id, name, address, created) VALUES(?,?,?,?)`,
		t.ID, t.Name, t.Address.String(), t.Created.UnixMilli())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("%w: tenant %s or address %s", ErrExists, t.ID, t.Address)
		}
		return fmt.Errorf("store: tenant: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_keys(key_hash, tenant_id, created) VALUES(?,?,?)`, keyHash, t.ID, t.Created.UnixMilli()); err != nil {
		return fmt.Errorf("store: tenant key: %w", err)
	}
	return tx.Commit()
}

// AddTenantKey adds another API key to a tenant.
func (s *SQLite) AddTenantKey(ctx context.Context, tenantID string, keyHash []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.db.ExecContext(ctx, `INSERT INTO tenant_keys(key_hash, tenant_id, created) VALUES(?,?,?)`, keyHash, tenantID, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store: tenant key: %w", err)
	}
	return nil
}

// KeyIDOf is the public id of an API key: the first 8 bytes of its hash,
// in hex. It names the key for listing and revoking without revealing it.
func KeyIDOf(keyHash []byte) string { return fmt.Sprintf("%x", keyHash[:min(8, len(keyHash))]) }

// TenantKeys lists a tenant's API keys (by id), oldest first.
func (s *SQLite) TenantKeys(ctx context.Context, tenantID string) ([]KeyInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key_hash, created, last_used FROM tenant_keys WHERE tenant_id = ? ORDER BY created, key_hash`, tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []KeyInfo{}
	for rows.Next() {
		var h []byte
		var created, used int64
		if err := rows.Scan(&h, &created, &used); err != nil {
			return nil, err
		}
		k := KeyInfo{ID: KeyIDOf(h)}
		if created > 0 {
			k.Created = time.UnixMilli(created).UTC()
		}
		if used > 0 {
			t := time.UnixMilli(used).UTC()
			k.LastUsed = &t
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeKey deletes a tenant's API key by id (KeyIDOf). ErrNotFound if
// the tenant has no such key.
func (s *SQLite) RevokeKey(ctx context.Context, tenantID, keyID string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	res, err := s.db.ExecContext(ctx, `DELETE FROM tenant_keys WHERE tenant_id = ? AND lower(hex(substr(key_hash, 1, 8))) = lower(?)`, tenantID, keyID)
	if err != nil {
		return fmt.Errorf("store: revoke key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: key %s of tenant %s", ErrNotFound, keyID, tenantID)
	}
	return nil
}

// TouchKey records that an API key was used at t.
func (s *SQLite) TouchKey(ctx context.Context, keyHash []byte, t time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.db.ExecContext(ctx, `UPDATE tenant_keys SET last_used = ? WHERE key_hash = ?`, t.UnixMilli(), keyHash)
	return err
}

// UseRegistration implements Store. The used signatures live in the
// database, not in memory, so a captured registration cannot be replayed
// after a coordinator restart within its validity window.
func (s *SQLite) UseRegistration(ctx context.Context, sigHash []byte, until, now time.Time, max int) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: registration: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM registrations WHERE until <= ?`, now.UnixMilli()); err != nil {
		return fmt.Errorf("store: registration: %w", err)
	}
	var used int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registrations WHERE sig_hash = ?`, sigHash).Scan(&used); err != nil {
		return fmt.Errorf("store: registration: %w", err)
	}
	if used > 0 {
		return fmt.Errorf("%w: registration signature", ErrExists)
	}
	if max > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registrations`).Scan(&n); err != nil {
			return fmt.Errorf("store: registration: %w", err)
		}
		if n >= max {
			return fmt.Errorf("%w: %d registration signatures within their validity", ErrFull, n)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO registrations(sig_hash, until) VALUES(?,?)`, sigHash, until.UnixMilli()); err != nil {
		return fmt.Errorf("store: registration: %w", err)
	}
	return tx.Commit()
}

func scanTenant(row interface{ Scan(...any) error }) (*Tenant, error) {
	var t Tenant
	var addr string
	var created int64
	if err := row.Scan(&t.ID, &t.Name, &addr, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("store: tenant: %w", err)
	}
	a, err := address.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("store: tenant %s: %w", t.ID, err)
	}
	t.Address, t.Created = a, time.UnixMilli(created).UTC()
	return &t, nil
}

// TenantByKey finds the tenant owning an API key hash.
func (s *SQLite) TenantByKey(ctx context.Context, keyHash []byte) (*Tenant, error) {
	return scanTenant(s.db.QueryRowContext(ctx, `SELECT t.id, t.name, t.address, t.created FROM tenants t
		JOIN tenant_keys k ON k.tenant_id = t.id WHERE k.key_hash = ?`, keyHash))
}

// TenantByAddress finds the tenant bound to an address.
func (s *SQLite) TenantByAddress(ctx context.Context, a address.Address) (*Tenant, error) {
	return scanTenant(s.db.QueryRowContext(ctx, `SELECT id, name, address, created FROM tenants WHERE address = ?`, a.String()))
}

// Tenants lists all tenants.
func (s *SQLite) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, address, created FROM tenants ORDER BY created`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// PutJob inserts or replaces a job.
func (s *SQLite) PutJob(ctx context.Context, j *Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err = s.db.ExecContext(ctx, `INSERT INTO jobs(id, tenant_id, status, created, data) VALUES(?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET status = excluded.status, data = excluded.data`,
		j.ID, j.TenantID, j.Status, j.Created.UnixMilli(), data)
	if err != nil {
		return fmt.Errorf("store: job %s: %w", j.ID, err)
	}
	return nil
}

func decodeJob(data []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("store: corrupt job: %w", err)
	}
	return &j, nil
}

// Job returns one job.
func (s *SQLite) Job(ctx context.Context, id string) (*Job, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT data FROM jobs WHERE id = ?`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: job %s: %w", id, err)
	}
	return decodeJob(data)
}

func (s *SQLite) jobs(ctx context.Context, q string, args ...any) ([]*Job, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: jobs: %w", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		j, err := decodeJob(data)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// JobsByTenant lists a tenant's newest jobs.
func (s *SQLite) JobsByTenant(ctx context.Context, tenantID string, limit int) ([]*Job, error) {
	return s.jobs(ctx, `SELECT data FROM jobs WHERE tenant_id = ? ORDER BY created DESC, id LIMIT ?`, tenantID, limit)
}

// ActiveJobs lists every job the coordinator still has to drive, oldest first.
func (s *SQLite) ActiveJobs(ctx context.Context) ([]*Job, error) {
	return s.jobs(ctx, `SELECT data FROM jobs WHERE status IN (?,?,?,?) ORDER BY created, id`,
		StatusQueued, StatusDispatched, StatusRunning, StatusCompleted)
}

// CountByStatus counts jobs per status.
func (s *SQLite) CountByStatus(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM jobs GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// createPrivate creates path with mode 0600 if it does not exist, and
// takes group and other access away from an existing one.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return f.Chmod(fi.Mode().Perm() &^ 0o077)
	}
	return nil
}

// PruneJobs deletes jobs that ended (settled, failed or expired) and were
// created before before, and returns how many it deleted. Active jobs are
// never deleted, however old.
func (s *SQLite) PruneJobs(ctx context.Context, before time.Time) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	res, err := s.db.ExecContext(ctx, `DELETE FROM jobs WHERE created < ? AND status IN (?,?,?)`,
		before.UnixMilli(), StatusSettled, StatusFailed, StatusExpired)
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

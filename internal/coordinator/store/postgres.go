package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
)

// Postgres is a Store on a PostgreSQL database that several coordinators
// may share. Each coordinator holds leases on the active jobs it drives
// (leases.go): a job is driven by one coordinator at a time, and the jobs
// of one that died are taken over by another once their leases expire.
type Postgres struct {
	pool  *pgxpool.Pool
	owner string        // this coordinator's name in leases ("" for a tool that only reads tenants)
	lease time.Duration // how long a lease lasts without renewal
	log   *slog.Logger
}

var _ Store = (*Postgres)(nil)

// PostgresOptions configures OpenPostgres.
type PostgresOptions struct {
	// Owner names this coordinator in job leases; it must differ between
	// coordinators sharing a database. Empty: the store only serves
	// tenants and reads (the tenant commands), and ActiveJobs is refused.
	Owner string
	// Lease is how long a coordinator's lease on a job lasts without
	// renewal: after that another coordinator takes the job over (15 s).
	Lease time.Duration
	// MaxConns caps the pool (8).
	MaxConns int32
	Logger   *slog.Logger
}

// DefaultLease is how long a job lease lasts without renewal.
const DefaultLease = 15 * time.Second

// IsPostgresURL reports whether a --store value names a PostgreSQL
// database rather than an SQLite file.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// OpenPostgres connects to the database at url (postgres://user:pass@host:port/db),
// applies the schema migrations it lacks and refuses, with ErrSchemaTooNew,
// one written by a newer binary.
func OpenPostgres(ctx context.Context, url string, o PostgresOptions) (*Postgres, error) {
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 8
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message can quote the URL, password included: do not wrap it.
		return nil, errors.New("store: bad PostgreSQL URL (want postgres://user:password@host:port/database)")
	}
	cfg.MaxConns = o.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres %s: %w", redact(cfg), err)
	}
	if err := migratePostgres(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres %s: %w", redact(cfg), err)
	}
	return &Postgres{pool: pool, owner: o.Owner, lease: o.Lease, log: o.Logger}, nil
}

// redact names a database without its password.
func redact(c *pgxpool.Config) string {
	return fmt.Sprintf("%s@%s:%d/%s", c.ConnConfig.User, c.ConnConfig.Host, c.ConnConfig.Port, c.ConnConfig.Database)
}

// Close closes the pool. Leases are not released: a coordinator that stops
// cleanly has nothing left to drive only if its jobs ended; otherwise the
// next coordinator takes them over when the leases expire.
func (s *Postgres) Close() error { s.pool.Close(); return nil }

// Owner is this coordinator's name in leases.
func (s *Postgres) Owner() string { return s.owner }

func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// CreateTenant inserts a tenant and its first key.
func (s *Postgres) CreateTenant(ctx context.Context, t Tenant, keyHash []byte) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO tenants(id, name, address, created) VALUES($1,$2,$3,$4)`,
			t.ID, t.Name, t.Address.String(), t.Created.UnixMilli())
		if uniqueViolation(err) {
			return fmt.Errorf("%w: tenant %s or address %s", ErrExists, t.ID, t.Address)
		}
		if err != nil {
			return fmt.Errorf("store: tenant: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tenant_keys(key_hash, tenant_id, created) VALUES($1,$2,$3)`, keyHash, t.ID, t.Created.UnixMilli()); err != nil {
			return fmt.Errorf("store: tenant key: %w", err)
		}
		return nil
	})
}

// AddTenantKey adds another API key to a tenant.
func (s *Postgres) AddTenantKey(ctx context.Context, tenantID string, keyHash []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tenant_keys(key_hash, tenant_id, created) VALUES($1,$2,$3)`, keyHash, tenantID, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store: tenant key: %w", err)
	}
	return nil
}

// TenantKeys lists a tenant's API keys (by id), oldest first.
func (s *Postgres) TenantKeys(ctx context.Context, tenantID string) ([]KeyInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT key_hash, created, last_used FROM tenant_keys WHERE tenant_id = $1 ORDER BY created, key_hash`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("store: tenant keys: %w", err)
	}
	defer rows.Close()
	out := []KeyInfo{}
	for rows.Next() {
		var h []byte
		var created, used int64
		if err := rows.Scan(&h, &created, &used); err != nil {
			return nil, fmt.Errorf("store: tenant keys: %w", err)
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
func (s *Postgres) RevokeKey(ctx context.Context, tenantID, keyID string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tenant_keys WHERE tenant_id = $1 AND encode(substr(key_hash, 1, 8), 'hex') = lower($2)`, tenantID, keyID)
	if err != nil {
		return fmt.Errorf("store: revoke key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: key %s of tenant %s", ErrNotFound, keyID, tenantID)
	}
	return nil
}

// TouchKey records that an API key was used at t.
func (s *Postgres) TouchKey(ctx context.Context, keyHash []byte, t time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE tenant_keys SET last_used = $1 WHERE key_hash = $2`, t.UnixMilli(), keyHash)
	return err
}

// UseRegistration implements Store. Coordinators sharing the database
// share the used signatures: a registration replayed to another
// coordinator is refused too. The insert's primary key decides between
// two coordinators that see the same signature at once.
func (s *Postgres) UseRegistration(ctx context.Context, sigHash []byte, until, now time.Time, max int) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM registrations WHERE until <= $1`, now.UnixMilli()); err != nil {
			return fmt.Errorf("store: registration: %w", err)
		}
		var used bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM registrations WHERE sig_hash = $1)`, sigHash).Scan(&used); err != nil {
			return fmt.Errorf("store: registration: %w", err)
		}
		if used {
			return fmt.Errorf("%w: registration signature", ErrExists)
		}
		if max > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM registrations`).Scan(&n); err != nil {
				return fmt.Errorf("store: registration: %w", err)
			}
			if n >= max {
				return fmt.Errorf("%w: %d registration signatures within their validity", ErrFull, n)
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO registrations(sig_hash, until) VALUES($1,$2) ON CONFLICT (sig_hash) DO NOTHING`, sigHash, until.UnixMilli())
		if err != nil {
			return fmt.Errorf("store: registration: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: registration signature", ErrExists)
		}
		return nil
	})
}

func pgTenant(row pgx.Row) (*Tenant, error) {
	var t Tenant
	var addr string
	var created int64
	if err := row.Scan(&t.ID, &t.Name, &addr, &created); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
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
func (s *Postgres) TenantByKey(ctx context.Context, keyHash []byte) (*Tenant, error) {
	return pgTenant(s.pool.QueryRow(ctx, `SELECT t.id, t.name, t.address, t.created FROM tenants t
		JOIN tenant_keys k ON k.tenant_id = t.id WHERE k.key_hash = $1`, keyHash))
}

// TenantByAddress finds the tenant bound to an address.
func (s *Postgres) TenantByAddress(ctx context.Context, a address.Address) (*Tenant, error) {
	return pgTenant(s.pool.QueryRow(ctx, `SELECT id, name, address, created FROM tenants WHERE address = $1`, a.String()))
}

// Tenants lists all tenants.
func (s *Postgres) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, address, created FROM tenants ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("store: tenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := pgTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// PutJob inserts or replaces a job. A new job is leased to this
// coordinator. A job another coordinator has taken over (its lease is not
// ours) is not overwritten: ErrLeaseLost, so that a coordinator that was
// cut off for longer than a lease cannot undo what its successor wrote.
func (s *Postgres) PutJob(ctx context.Context, j *Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	// One round trip: the upsert, and a notification (delivered at commit)
	// that followers of the job on other coordinators read (Listen).
	tag, err := s.pool.Exec(ctx, `WITH up AS (
		INSERT INTO jobs(id, tenant_id, status, created, data, lease_owner, lease_until, reserve, model, prompt_bytes)
		VALUES($1,$2,$3,$4,$5,$6, `+nowMs+` + $7, $8, $9, $10)
		ON CONFLICT(id) DO UPDATE SET status = excluded.status, data = excluded.data, reserve = excluded.reserve, model = excluded.model,
			prompt_bytes = excluded.prompt_bytes
		WHERE jobs.lease_owner = excluded.lease_owner OR jobs.lease_owner = ''
		RETURNING id)
		SELECT pg_notify('`+jobChannel+`', $1 || ' ' || $3) FROM up`,
		j.ID, j.TenantID, j.Status, j.Created.UnixMilli(), data, s.owner, s.lease.Milliseconds(), int64(reserveOf(j)), j.Model, promptBytes(j))
	if err != nil {
		return fmt.Errorf("store: job %s: %w", j.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: job %s", ErrLeaseLost, j.ID)
	}
	return nil
}

// reserveOf is what job j holds of its tenant's deposit with the
// coordinators: its max price while it is active, paid from the deposit and
// not yet created on chain (then the chain holds its escrow, and a deposit
// read shows it).
func reserveOf(j *Job) coin.Amount {
	if j.Payment == "deposit" && !j.OnChain && j.Active() {
		return j.MaxPrice
	}
	return 0
}

func (s *Postgres) jobs(ctx context.Context, q string, args ...any) ([]*Job, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: jobs: %w", err)
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("store: jobs: %w", err)
		}
		j, err := decodeJob(data)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Job returns one job.
func (s *Postgres) Job(ctx context.Context, id string) (*Job, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM jobs WHERE id = $1`, id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: job %s: %w", id, err)
	}
	return decodeJob(data)
}

// JobsByTenant lists a tenant's newest jobs.
func (s *Postgres) JobsByTenant(ctx context.Context, tenantID string, limit int) ([]*Job, error) {
	return s.jobs(ctx, `SELECT data FROM jobs WHERE tenant_id = $1 ORDER BY created DESC, id LIMIT $2`, tenantID, limit)
}

// ActiveJobs lists the active jobs this coordinator is to drive, oldest
// first: those it holds the lease of (it is restarting) and those whose
// lease expired (their coordinator died), which it leases now. Jobs other
// live coordinators drive are left to them.
func (s *Postgres) ActiveJobs(ctx context.Context) ([]*Job, error) {
	if s.owner == "" {
		return nil, errors.New("store: ActiveJobs needs a lease owner (PostgresOptions.Owner)")
	}
	return s.claim(ctx, 0, true)
}

// CountByStatus counts jobs per status, over every coordinator's jobs.
func (s *Postgres) CountByStatus(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, COUNT(*) FROM jobs GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("store: count: %w", err)
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

// PruneJobs deletes jobs that ended (settled, failed or expired) and were
// created before before, and returns how many it deleted.
func (s *Postgres) PruneJobs(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM jobs WHERE created < $1 AND status IN ($2,$3,$4)`,
		before.UnixMilli(), StatusSettled, StatusFailed, StatusExpired)
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	// Relayed tokens of jobs that ended (their driver died before it
	// dropped them): followers end with the stored result.
	if _, err := s.pool.Exec(ctx, `DELETE FROM job_tokens t WHERE NOT EXISTS
		(SELECT 1 FROM jobs j WHERE j.id = t.job_id AND j.status IN ($1,$2,$3,$4))`,
		StatusQueued, StatusDispatched, StatusRunning, StatusCompleted); err != nil {
		return 0, fmt.Errorf("store: prune relayed tokens: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM allocations WHERE expires < $1`, before.UnixMilli()); err != nil {
		return 0, fmt.Errorf("store: prune allocations: %w", err)
	}
	// Rate buckets untouched for a day are full again: as good as none.
	if _, err := s.pool.Exec(ctx, `DELETE FROM rate_buckets WHERE at < `+nowMs+` - 86400000`); err != nil {
		return 0, fmt.Errorf("store: prune rate buckets: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Open opens the store a --store value names: a postgres:// URL is a
// PostgreSQL database (o applies), anything else an SQLite file.
func Open(ctx context.Context, spec string, o PostgresOptions) (Store, error) {
	if IsPostgresURL(spec) {
		return OpenPostgres(ctx, spec, o)
	}
	return OpenSQLite(spec)
}

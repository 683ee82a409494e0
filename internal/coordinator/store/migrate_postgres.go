package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgMigrations is the PostgreSQL schema, step by step, as migrations is
// SQLite's: never edit or reorder one that has shipped, append. The
// version numbers are PostgreSQL's own (the two schemas differ in types
// and in the leases, which SQLite has no use for).
var pgMigrations = []struct {
	version int
	what    string
	ddl     string
}{
	{1, "tenants, API keys, jobs with leases, registrations", `
CREATE TABLE tenants (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	address TEXT NOT NULL UNIQUE,
	created BIGINT NOT NULL
);
CREATE TABLE tenant_keys (
	key_hash BYTEA PRIMARY KEY,
	tenant_id TEXT NOT NULL REFERENCES tenants(id),
	created BIGINT NOT NULL DEFAULT 0,
	last_used BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tenant_keys_tenant ON tenant_keys(tenant_id);
CREATE TABLE jobs (
	id TEXT PRIMARY KEY,
	tenant_id TEXT NOT NULL,
	status TEXT NOT NULL,
	created BIGINT NOT NULL,
	data BYTEA NOT NULL,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	settle_owner TEXT NOT NULL DEFAULT '',
	settle_at BIGINT NOT NULL DEFAULT 0,
	reserve BIGINT NOT NULL DEFAULT 0, -- what an active deposit job not yet on chain holds of its tenant's deposit, in base units
	model TEXT NOT NULL DEFAULT '',
	offered BOOLEAN NOT NULL DEFAULT false -- a queued job its coordinator has no free miner for: another may take it
);
CREATE INDEX jobs_tenant ON jobs(tenant_id, created);
CREATE INDEX jobs_reserve ON jobs(tenant_id) WHERE reserve > 0;
CREATE INDEX jobs_offered ON jobs(model, created) WHERE offered;
CREATE INDEX jobs_status ON jobs(status);
CREATE INDEX jobs_active_lease ON jobs(lease_until) WHERE status IN ('queued', 'dispatched', 'running', 'completed');
CREATE TABLE registrations (
	sig_hash BYTEA PRIMARY KEY,
	until BIGINT NOT NULL
);
CREATE INDEX registrations_until ON registrations(until);
`},
	{2, "job files in the database (files_postgres.go)", `
CREATE SEQUENCE file_data_ids;
CREATE TABLE file_chunks (
	data_id BIGINT NOT NULL, -- a file's or an upload's bytes: files, file_uploads and file_staging name them
	seq INTEGER NOT NULL,
	bytes BYTEA NOT NULL,
	PRIMARY KEY (data_id, seq)
);
CREATE TABLE files (
	hash TEXT PRIMARY KEY,
	size BIGINT NOT NULL,
	data_id BIGINT NOT NULL
);
CREATE TABLE file_holds (
	owner TEXT NOT NULL,
	hash TEXT NOT NULL REFERENCES files(hash) ON DELETE CASCADE,
	uploaded BIGINT NOT NULL,
	PRIMARY KEY (owner, hash)
);
CREATE INDEX file_holds_hash ON file_holds(hash);
CREATE INDEX file_holds_uploaded ON file_holds(uploaded);
CREATE TABLE file_uploads (
	owner TEXT NOT NULL,
	hash TEXT NOT NULL,
	total BIGINT NOT NULL,
	received BIGINT NOT NULL DEFAULT 0,
	chunks INTEGER NOT NULL DEFAULT 0,
	data_id BIGINT NOT NULL,
	sha_state BYTEA NOT NULL, -- the SHA-256 of the bytes received so far, so any coordinator can resume it
	updated BIGINT NOT NULL,
	PRIMARY KEY (owner, hash)
);
CREATE TABLE file_staging (
	data_id BIGINT PRIMARY KEY, -- a whole-file Put being written
	started BIGINT NOT NULL
);
`},
	{3, "job tokens relayed to followers on other coordinators (tokens_postgres.go), shared tenant limits (limits_postgres.go)", `
CREATE TABLE job_tokens (
	job_id TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	text TEXT NOT NULL,
	PRIMARY KEY (job_id, attempt, seq)
);
ALTER TABLE jobs ADD COLUMN prompt_bytes BIGINT NOT NULL DEFAULT 0; -- a tenant's active prompt bytes are limited across coordinators
CREATE INDEX jobs_tenant_active ON jobs(tenant_id) WHERE status IN ('queued', 'dispatched', 'running', 'completed');
CREATE TABLE rate_buckets (
	key TEXT PRIMARY KEY, -- a token bucket every coordinator takes from
	tokens DOUBLE PRECISION NOT NULL,
	at BIGINT NOT NULL -- the database's clock, Unix ms, when tokens was computed
);
CREATE TABLE allocations (
	tenant_id TEXT NOT NULL,
	agent_id TEXT NOT NULL,
	owner TEXT NOT NULL, -- the coordinator whose miner holds the slots
	slots INTEGER NOT NULL,
	expires BIGINT NOT NULL, -- Unix ms
	PRIMARY KEY (tenant_id, agent_id)
);
`},
}

// PostgresSchemaVersion is the PostgreSQL schema this binary writes.
var PostgresSchemaVersion = pgMigrations[len(pgMigrations)-1].version

// pgMigrateLock is the advisory lock key under which migrations run, so
// that coordinators starting together migrate once.
const pgMigrateLock = 0x61697462 // "aitb"

// migratePostgres brings the database to PostgresSchemaVersion and refuses
// one newer than this binary. Each step and its version number commit
// together; a transaction-scoped advisory lock serialises coordinators
// that start at the same moment (the loser finds the step applied).
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		// Two first starts race on CREATE TABLE IF NOT EXISTS; the loser
		// retries once the winner's table exists.
		if _, err2 := pool.Exec(ctx, `SELECT 1 FROM schema_version LIMIT 1`); err2 != nil {
			return err
		}
	}
	for _, m := range pgMigrations {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrateLock); err != nil {
				return err
			}
			var cur int
			if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
				return err
			}
			if cur > PostgresSchemaVersion {
				return fmt.Errorf("%w: the database has schema version %d, this binary knows up to %d: run a newer aitbc, or restore a backup made by this version", ErrSchemaTooNew, cur, PostgresSchemaVersion)
			}
			if cur >= m.version {
				return nil
			}
			if _, err := tx.Exec(ctx, m.ddl); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version(version) VALUES($1)`, m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("schema version %d (%s): %w", m.version, m.what, err)
		}
	}
	return nil
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrSchemaTooNew is returned by OpenSQLite for a database written by a
// newer coordinator: its tables may mean things this binary does not know,
// so it is not opened rather than misread or "migrated" backwards.
var ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")

// migration is one step of the schema, applied in order, once, inside a
// transaction together with the new version number.
type migration struct {
	version int
	what    string
	apply   func(ctx context.Context, tx *sql.Tx) error
}

// migrations is every schema change, oldest first. Never edit or reorder
// one that has shipped: append a new one. Version 1 is the schema before
// versioning (written with IF NOT EXISTS, so it is a no-op on such a
// database); version 2 is what the unversioned migrate() did.
var migrations = []migration{
	{1, "tenants, API keys and jobs", execAll(`
CREATE TABLE IF NOT EXISTS tenants (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	address TEXT NOT NULL UNIQUE,
	created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tenant_keys (
	key_hash BLOB PRIMARY KEY,
	tenant_id TEXT NOT NULL REFERENCES tenants(id)
);
CREATE TABLE IF NOT EXISTS jobs (
	id TEXT PRIMARY KEY,
	tenant_id TEXT NOT NULL,
	status TEXT NOT NULL,
	created INTEGER NOT NULL,
	data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs(tenant_id, created);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
`)},
	{2, "API keys' creation and last use", addKeyTimes},
	{3, "used tenant registration signatures", execAll(`
CREATE TABLE registrations (
	sig_hash BLOB PRIMARY KEY,
	until INTEGER NOT NULL
);
CREATE INDEX registrations_until ON registrations(until);
`)},
}

// SchemaVersion is the schema this binary writes.
var SchemaVersion = migrations[len(migrations)-1].version

func execAll(ddl string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, ddl)
		return err
	}
}

// addKeyTimes adds tenant_keys.created and last_used where they are
// missing: databases from before versioning may have them already.
func addKeyTimes(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info('tenant_keys')`)
	if err != nil {
		return err
	}
	cols := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		cols[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range []string{"created", "last_used"} {
		if !cols[c] {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE tenant_keys ADD COLUMN `+c+` INTEGER NOT NULL DEFAULT 0`); err != nil {
				return err
			}
		}
	}
	return nil
}

// schemaVersion reads the version (0: a new or unversioned database).
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// migrate brings db to SchemaVersion, one migration per transaction, and
// refuses a database newer than this binary. Two processes opening the
// same database at once (the coordinator and `aitbc coordinator tenant
// add`) are serialised by SQLite's write lock; the loser re-reads the
// version inside its transaction and skips what the winner applied.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: the database has schema version %d, this binary knows up to %d: run a newer aitbc, or restore a backup made by this version", ErrSchemaTooNew, v, SchemaVersion)
	}
	for _, m := range migrations {
		if m.version <= v {
			continue
		}
		if err := applyMigration(ctx, db, m); err != nil {
			return fmt.Errorf("schema version %d (%s): %w", m.version, m.what, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Take the write lock first, then look again: another process may have
	// applied this step since we read the version.
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version WHERE version < 0`); err != nil {
		return err
	}
	cur, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if cur >= m.version {
		return nil
	}
	if err := m.apply(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_version`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES(?)`, m.version); err != nil {
		return err
	}
	return tx.Commit()
}

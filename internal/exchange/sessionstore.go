package exchange

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver

	"github.com/aitbc/aitbc/internal/address"
)

// SessionStore keeps the exchange's signed-in sessions in an SQLite file
// (Config.SessionsPath, <home>/exchange/sessions.db), so that a restarted
// exchange does not sign everyone out: each session keeps the expiry it
// was given at sign-in. Only a hash of each token is stored, so the file
// (mode 0600) does not give anyone a live session. Challenges are not
// kept: they live five minutes and a sign-in started before a restart is
// started again.
type SessionStore struct {
	db *sql.DB
}

// OpenSessionStore opens (creating it) the session file at path.
func OpenSessionStore(ctx context.Context, path string) (*SessionStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("exchange: sessions: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("exchange: sessions: %w", err)
	}
	f.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("exchange: sessions: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(2)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS sessions (
		token_hash TEXT PRIMARY KEY,
		address    TEXT NOT NULL,
		expires    INTEGER NOT NULL -- unix nanoseconds
	)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("exchange: sessions: %s: %w", path, err)
	}
	return &SessionStore{db: db}, nil
}

// Close closes the file.
func (st *SessionStore) Close() error { return st.db.Close() }

func tokenHash(token string) string {
	h := sha256.Sum256([]byte("AITBC/exchange-session/v1\x00" + token))
	return hex.EncodeToString(h[:])
}

// storedSession is a session as the file has it: the token's hash.
type storedSession struct {
	hash    string
	addr    address.Address
	expires time.Time
}

func (st *SessionStore) put(ctx context.Context, s storedSession) error {
	_, err := st.db.ExecContext(ctx, `INSERT OR REPLACE INTO sessions (token_hash, address, expires) VALUES (?, ?, ?)`,
		s.hash, s.addr.String(), s.expires.UnixNano())
	return err
}

func (st *SessionStore) delete(ctx context.Context, hash string) error {
	_, err := st.db.ExecContext(ctx, `DELETE FROM sessions WHERE token_hash = ?`, hash)
	return err
}

// deleteExpired removes the sessions expired at now.
func (st *SessionStore) deleteExpired(ctx context.Context, now time.Time) error {
	_, err := st.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ?`, now.UnixNano())
	return err
}

// load reads the sessions still valid at now, at most limit of them (the
// latest to expire first: the newest sign-ins).
func (st *SessionStore) load(ctx context.Context, now time.Time, limit int) ([]storedSession, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT token_hash, address, expires FROM sessions WHERE expires > ? ORDER BY expires DESC LIMIT ?`,
		now.UnixNano(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedSession
	for rows.Next() {
		var hash, addr string
		var exp int64
		if err := rows.Scan(&hash, &addr, &exp); err != nil {
			return nil, err
		}
		a, err := address.Parse(addr)
		if err != nil {
			return nil, fmt.Errorf("session %s…: %w", hash[:min(8, len(hash))], err)
		}
		out = append(out, storedSession{hash: hash, addr: a, expires: time.Unix(0, exp)})
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

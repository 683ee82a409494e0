package oracle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	_ "modernc.org/sqlite" // the SQLite driver

	"github.com/aitbc/aitbc/internal/oracle/report"
)

// Store keeps the accepted reports in SQLite.
type Store struct{ db *sql.DB }

const schema = `
CREATE TABLE IF NOT EXISTS reports (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	agent TEXT NOT NULL,
	ts INTEGER NOT NULL,
	received_ms INTEGER NOT NULL,
	epoch INTEGER NOT NULL,
	processed_tokens INTEGER NOT NULL,
	avg_latency_ms REAL NOT NULL,
	uptime_seconds INTEGER NOT NULL,
	tasks_completed INTEGER NOT NULL,
	payload TEXT NOT NULL,
	signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_agent_epoch ON reports(agent, epoch);
CREATE TABLE IF NOT EXISTS agents (
	agent TEXT PRIMARY KEY,
	last_ts INTEGER NOT NULL,
	last_received_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS commits (
	agent TEXT NOT NULL,
	epoch INTEGER NOT NULL,
	tx_hash TEXT NOT NULL,
	error TEXT NOT NULL,
	PRIMARY KEY (agent, epoch)
);`

// OpenStore opens (or creates) the database at path; ":memory:" for tests.
func OpenStore(path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	if path == ":memory:" {
		dsn = ":memory:"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// One connection: accepting a report reads the agent's last timestamp
	// and writes the new one in one transaction, and SQLite serializes
	// writers anyway.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("oracle store: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Errors of Add.
var (
	ErrReplay = errors.New("timestamp not after the agent's last report")
	ErrRate   = errors.New("too many reports")
)

// Add stores a verified report received at receivedMs (Unix milliseconds)
// unless its timestamp is not after the agent's last one (ErrReplay) or
// the agent's last report came less than minIntervalMs before (ErrRate).
// Both checks and the insert are one transaction.
func (s *Store) Add(ctx context.Context, p report.Payload, epoch, receivedMs, minIntervalMs int64, raw []byte, sig string) (int64, error) {
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer t.Rollback() //nolint:errcheck // after Commit it is a no-op
	var lastTS, lastRecv int64
	err = t.QueryRowContext(ctx, `SELECT last_ts, last_received_ms FROM agents WHERE agent = ?`, p.Agent).Scan(&lastTS, &lastRecv)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, err
	case p.Timestamp <= lastTS:
		return 0, fmt.Errorf("%w: %d, last %d", ErrReplay, p.Timestamp, lastTS)
	case receivedMs-lastRecv < minIntervalMs:
		return 0, fmt.Errorf("%w: one per %d ms; the last came %d ms ago", ErrRate, minIntervalMs, receivedMs-lastRecv)
	}
	res, err := t.ExecContext(ctx, `INSERT INTO reports (agent, ts, received_ms, epoch, processed_tokens, avg_latency_ms, uptime_seconds, tasks_completed, payload, signature)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.Agent, p.Timestamp, receivedMs, epoch, int64(p.ProcessedTokens), p.AvgLatencyMs,
		int64(p.UptimeSeconds), int64(p.TasksCompleted), string(raw), sig)
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO agents (agent, last_ts, last_received_ms) VALUES (?, ?, ?)
		ON CONFLICT(agent) DO UPDATE SET last_ts = excluded.last_ts, last_received_ms = excluded.last_received_ms`, p.Agent, p.Timestamp, receivedMs); err != nil {
		return 0, err
	}
	return id, t.Commit()
}

// Aggregate is an agent's reports summed: over one epoch, or all.
type Aggregate struct {
	Agent           string  `json:"agent"`
	Epoch           *int64  `json:"epoch,omitempty"` // nil: every epoch
	Reports         uint64  `json:"reports"`
	ProcessedTokens uint64  `json:"processed_tokens"`
	TasksCompleted  uint64  `json:"tasks_completed"`
	AvgLatencyMs    float64 `json:"avg_latency_ms"` // over the tasks (weighted by each report's tasks)
	UptimeSeconds   uint64  `json:"uptime_seconds"` // the longest reported
	FirstTimestamp  int64   `json:"first_timestamp"`
	LastTimestamp   int64   `json:"last_timestamp"`
}

// Aggregate sums agent's reports in epoch (all epochs when epoch < 0).
func (s *Store) Aggregate(ctx context.Context, agent string, epoch int64) (Aggregate, error) {
	a := Aggregate{Agent: agent}
	q := `SELECT COUNT(*), COALESCE(SUM(processed_tokens),0), COALESCE(SUM(tasks_completed),0),
		COALESCE(SUM(avg_latency_ms * tasks_completed),0), COALESCE(MAX(uptime_seconds),0), COALESCE(MIN(ts),0), COALESCE(MAX(ts),0)
		FROM reports WHERE agent = ?`
	args := []any{agent}
	if epoch >= 0 {
		q += ` AND epoch = ?`
		args = append(args, epoch)
		a.Epoch = &epoch
	}
	var weighted float64
	var n, tok, tasks, up int64
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n, &tok, &tasks, &weighted, &up, &a.FirstTimestamp, &a.LastTimestamp); err != nil {
		return a, err
	}
	a.Reports, a.ProcessedTokens, a.TasksCompleted, a.UptimeSeconds = uint64(n), uint64(tok), uint64(tasks), uint64(up)
	if tasks > 0 {
		a.AvgLatencyMs = weighted / float64(tasks)
	}
	return a, nil
}

// Pending lists the (agent, epoch) pairs before epoch `before` that have
// reports and no commit, oldest epoch first, at most limit.
func (s *Store) Pending(ctx context.Context, before int64, limit int) ([][2]any, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT r.agent, r.epoch FROM reports r
		LEFT JOIN commits c ON c.agent = r.agent AND c.epoch = r.epoch
		WHERE r.epoch < ? AND c.agent IS NULL ORDER BY r.epoch, r.agent LIMIT ?`, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][2]any
	for rows.Next() {
		var agent string
		var epoch int64
		if err := rows.Scan(&agent, &epoch); err != nil {
			return nil, err
		}
		out = append(out, [2]any{agent, epoch})
	}
	return out, rows.Err()
}

// Committed records an epoch's commit (txHash), or why it was given up.
func (s *Store) Committed(ctx context.Context, agent string, epoch int64, txHash, reason string) error {
	_, err := s.db.ExecContext(ctx, `INSERT OR REPLACE INTO commits (agent, epoch, tx_hash, error) VALUES (?, ?, ?, ?)`, agent, epoch, txHash, reason)
	return err
}

// Commit is a committed epoch.
type Commit struct {
	Epoch  int64  `json:"epoch"`
	TxHash string `json:"tx_hash,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Commits lists an agent's last commits, newest first.
func (s *Store) Commits(ctx context.Context, agent string, limit int) ([]Commit, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT epoch, tx_hash, error FROM commits WHERE agent = ? ORDER BY epoch DESC LIMIT ?`, agent, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Commit{}
	for rows.Next() {
		var c Commit
		if err := rows.Scan(&c.Epoch, &c.TxHash, &c.Error); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Prune deletes the reports of epochs before `before` whose aggregates are
// committed (or given up), and those commits' records stay: the store's
// size is bounded by the retention, not by the oracle's age. The agents'
// last timestamps stay too, so that a pruned report cannot be replayed.
func (s *Store) Prune(ctx context.Context, before int64) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM reports WHERE epoch < ? AND EXISTS
		(SELECT 1 FROM commits c WHERE c.agent = reports.agent AND c.epoch = reports.epoch)`, before)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Count is the number of stored reports (tests and /health).
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	return n, s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&n)
}

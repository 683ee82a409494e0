package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

// nowMs is the database's clock in Unix milliseconds: leases are compared
// with it, never with a coordinator's clock.
const nowMs = `(extract(epoch from clock_timestamp()) * 1000)::bigint`

// jobChannel is the LISTEN/NOTIFY channel on which PutJob announces
// "<job id> <status>".
const jobChannel = "aitbc_jobs"

var _ Shared = (*Postgres)(nil)

// claim leases active jobs to this coordinator: those whose lease expired,
// and with mine also those it holds already; at most n (0: all). SKIP
// LOCKED lets two coordinators claim at once without waiting on each
// other or taking the same job.
func (s *Postgres) claim(ctx context.Context, n int, mine bool) ([]*Job, error) {
	var limit *int
	if n > 0 {
		limit = &n
	}
	cond := `lease_until < ` + nowMs
	if mine {
		cond = `(lease_owner = $1 OR ` + cond + `)`
	}
	rows, err := s.pool.Query(ctx, `UPDATE jobs SET lease_owner = $1, lease_until = `+nowMs+` + $2
		WHERE id IN (SELECT id FROM jobs WHERE status IN ($3,$4,$5,$6) AND `+cond+`
			ORDER BY created, id LIMIT $7 FOR UPDATE SKIP LOCKED)
		RETURNING data`,
		s.owner, s.lease.Milliseconds(), StatusQueued, StatusDispatched, StatusRunning, StatusCompleted, limit)
	if err != nil {
		return nil, fmt.Errorf("store: claim jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Job, error) {
		var data []byte
		if err := r.Scan(&data); err != nil {
			return nil, err
		}
		return decodeJob(data)
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim jobs: %w", err)
	}
	slices.SortFunc(out, func(a, b *Job) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ClaimExpired implements Shared.
func (s *Postgres) ClaimExpired(ctx context.Context, n int) ([]*Job, error) {
	if s.owner == "" {
		return nil, errors.New("store: claiming jobs needs a lease owner")
	}
	return s.claim(ctx, n, false)
}

// RenewLeases implements Shared.
func (s *Postgres) RenewLeases(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE jobs SET lease_until = `+nowMs+` + $1 WHERE id = ANY($2) AND lease_owner = $3`,
		s.lease.Milliseconds(), ids, s.owner); err != nil {
		return nil, fmt.Errorf("store: renew leases: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM jobs WHERE id = ANY($1) AND lease_owner <> $2`, ids, s.owner)
	if err != nil {
		return nil, fmt.Errorf("store: renew leases: %w", err)
	}
	lost, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: renew leases: %w", err)
	}
	return lost, nil
}

// ClaimSettlement implements Shared.
func (s *Postgres) ClaimSettlement(ctx context.Context, id string) error {
	var owner string
	err := s.pool.QueryRow(ctx, `UPDATE jobs SET settle_owner = lease_owner, settle_at = `+nowMs+`
		WHERE id = $1 RETURNING lease_owner`, id).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: job %s", ErrNotFound, id)
	}
	if err != nil {
		return fmt.Errorf("store: claim settlement %s: %w", id, err)
	}
	if owner != s.owner {
		return fmt.Errorf("%w: job %s is driven by %s", ErrLeaseLost, id, owner)
	}
	return nil
}

// Offer implements Shared.
func (s *Postgres) Offer(ctx context.Context, ids []string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE jobs SET offered = true WHERE id = ANY($1) AND lease_owner = $2 AND status = $3`,
		ids, s.owner, StatusQueued); err != nil {
		return fmt.Errorf("store: offer jobs: %w", err)
	}
	return nil
}

// Withdraw implements Shared.
func (s *Postgres) Withdraw(ctx context.Context, ids []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `UPDATE jobs SET offered = false WHERE id = ANY($1) AND lease_owner = $2 RETURNING id`, ids, s.owner)
	if err != nil {
		return nil, fmt.Errorf("store: withdraw offers: %w", err)
	}
	kept, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: withdraw offers: %w", err)
	}
	return kept, nil
}

// ClaimOffered implements Shared. The candidates are read first and
// filtered by fits outside any transaction; the claim then takes those
// still offered, skipping rows another claimer has locked.
func (s *Postgres) ClaimOffered(ctx context.Context, model string, n int, fits func(*Job) bool) ([]*Job, error) {
	if s.owner == "" || n <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT data FROM jobs WHERE offered AND status = $1 AND model = $2 AND lease_owner <> $3
		ORDER BY created, id LIMIT $4`, StatusQueued, model, s.owner, 4*n)
	if err != nil {
		return nil, fmt.Errorf("store: offered jobs: %w", err)
	}
	cands, err := pgx.CollectRows(rows, collectJob)
	if err != nil {
		return nil, fmt.Errorf("store: offered jobs: %w", err)
	}
	var ids []string
	for _, j := range cands {
		if len(ids) < n && (fits == nil || fits(j)) {
			ids = append(ids, j.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err = s.pool.Query(ctx, `UPDATE jobs SET lease_owner = $1, lease_until = `+nowMs+` + $2, offered = false
		WHERE id IN (SELECT id FROM jobs WHERE id = ANY($3) AND offered AND status = $4 AND lease_owner <> $1
			FOR UPDATE SKIP LOCKED)
		RETURNING data`, s.owner, s.lease.Milliseconds(), ids, StatusQueued)
	if err != nil {
		return nil, fmt.Errorf("store: claim offered jobs: %w", err)
	}
	out, err := pgx.CollectRows(rows, collectJob)
	if err != nil {
		return nil, fmt.Errorf("store: claim offered jobs: %w", err)
	}
	slices.SortFunc(out, func(a, b *Job) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func collectJob(r pgx.CollectableRow) (*Job, error) {
	var data []byte
	if err := r.Scan(&data); err != nil {
		return nil, err
	}
	return decodeJob(data)
}

// ReservedElsewhere implements Shared.
func (s *Postgres) ReservedElsewhere(ctx context.Context, tenantID string) (coin.Amount, error) {
	var sum int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(SUM(reserve), 0)::bigint FROM jobs
		WHERE tenant_id = $1 AND reserve > 0 AND lease_owner <> $2 AND status IN ($3,$4,$5,$6)`,
		tenantID, s.owner, StatusQueued, StatusDispatched, StatusRunning, StatusCompleted).Scan(&sum); err != nil {
		return 0, fmt.Errorf("store: reservations: %w", err)
	}
	return coin.Amount(sum), nil
}

// Listen implements Shared. A notification lost while the connection is
// down is not replayed: followers also poll the store (the follow-up loop),
// so a lost one delays an event, it does not lose it.
func (s *Postgres) Listen(ctx context.Context, fn func(id, status string)) error {
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			break
		}
		s.log.Debug("store: job notifications lost; reconnecting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return ctx.Err()
}

func (s *Postgres) listenOnce(ctx context.Context, fn func(id, status string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection that LISTENs must not go back to the pool listening.
	c := conn.Hijack()
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, `LISTEN `+jobChannel); err != nil {
		return err
	}
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		id, status, _ := strings.Cut(n.Payload, " ")
		fn(id, status)
	}
}

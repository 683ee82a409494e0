package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

// Limits that hold across the coordinators sharing a database: a tenant's
// active jobs, their prompt bytes and its deposit's reservations are
// checked and the job stored in one transaction under the tenant's
// advisory lock (PutNewJob), and write rates are token buckets in the
// database (TakeToken).

// tenantLock is the advisory lock class of a tenant's submissions
// (with hashtext(tenant id)).
const tenantLock = 0x74656e61 // "tena"

// Load is what a tenant's active jobs and allocations that other
// coordinators hold.
type Load struct {
	Jobs        int
	PromptBytes int64
	Reserved    coin.Amount // of its deposit: max prices of deposit jobs not yet created on chain
	Allocations []Allocation
}

// Allocation is a tenant's agent's allocation of slots, as the
// coordinators sharing a store see it (the slots are on a miner of the
// coordinator Owner).
type Allocation struct {
	Tenant, Agent, Owner string
	Slots                int
	Expires              time.Time
}

// tenantLoad reads what tenant's active jobs and live allocations (at now)
// that other coordinators hold.
func (s *Postgres) tenantLoad(ctx context.Context, tx pgx.Tx, tenant string, now time.Time) (Load, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, tenantLock, tenant); err != nil {
		return Load{}, fmt.Errorf("store: tenant lock: %w", err)
	}
	var l Load
	var reserved int64
	if err := tx.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(prompt_bytes), 0)::bigint, COALESCE(SUM(reserve), 0)::bigint FROM jobs
		WHERE tenant_id = $1 AND lease_owner <> $2 AND status IN ($3,$4,$5,$6)`,
		tenant, s.owner, StatusQueued, StatusDispatched, StatusRunning, StatusCompleted).Scan(&l.Jobs, &l.PromptBytes, &reserved); err != nil {
		return Load{}, fmt.Errorf("store: tenant load: %w", err)
	}
	l.Reserved = coin.Amount(reserved)
	rows, err := tx.Query(ctx, `SELECT agent_id, owner, slots, expires FROM allocations
		WHERE tenant_id = $1 AND owner <> $2 AND expires > $3 ORDER BY agent_id`, tenant, s.owner, now.UnixMilli())
	if err != nil {
		return Load{}, fmt.Errorf("store: tenant allocations: %w", err)
	}
	l.Allocations, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Allocation, error) {
		a := Allocation{Tenant: tenant}
		var exp int64
		err := r.Scan(&a.Agent, &a.Owner, &a.Slots, &exp)
		a.Expires = time.UnixMilli(exp).UTC()
		return a, err
	})
	if err != nil {
		return Load{}, fmt.Errorf("store: tenant allocations: %w", err)
	}
	return l, nil
}

// PutAllocation records allocation a, held by this coordinator, if check
// accepts what the tenant's jobs and allocations on the other coordinators
// hold (under the tenant's lock, as PutNewJob). An agent with a live
// allocation (at now) on any coordinator is ErrExists.
func (s *Postgres) PutAllocation(ctx context.Context, a Allocation, now time.Time, check func(Load) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := s.tenantLoad(ctx, tx, a.Tenant, now)
		if err != nil {
			return err
		}
		var live bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM allocations WHERE tenant_id = $1 AND agent_id = $2 AND expires > $3)`,
			a.Tenant, a.Agent, now.UnixMilli()).Scan(&live); err != nil {
			return fmt.Errorf("store: allocation: %w", err)
		}
		if live {
			return fmt.Errorf("%w: allocation of agent %s", ErrExists, a.Agent)
		}
		if err := check(l); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO allocations(tenant_id, agent_id, owner, slots, expires) VALUES($1,$2,$3,$4,$5)
			ON CONFLICT (tenant_id, agent_id) DO UPDATE SET owner = excluded.owner, slots = excluded.slots, expires = excluded.expires`,
			a.Tenant, a.Agent, s.owner, a.Slots, a.Expires.UnixMilli()); err != nil {
			return fmt.Errorf("store: allocation: %w", err)
		}
		return nil
	})
}

// DropAllocation forgets the tenant's agent's allocation.
func (s *Postgres) DropAllocation(ctx context.Context, tenant, agent string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM allocations WHERE tenant_id = $1 AND agent_id = $2`, tenant, agent); err != nil {
		return fmt.Errorf("store: allocation: %w", err)
	}
	return nil
}

// promptBytes is the size of a job's prompt or messages.
func promptBytes(j *Job) int64 {
	n := int64(len(j.Prompt))
	for _, m := range j.Messages {
		n += int64(len(m.Content))
		for _, im := range m.Images {
			n += int64(len(im))
		}
	}
	return n
}

// PutNewJob stores a new job, leased to this coordinator, if check accepts
// what the tenant's active jobs on the other coordinators hold. The
// tenant's submissions on every coordinator are serialised (an advisory
// lock held until the job is stored), so two at the same moment on two
// coordinators cannot both pass a limit they exceed together, nor both
// reserve the same deposit. check's error comes back as it is, with
// nothing stored; check must not block (it runs inside the transaction).
// A job id that exists is ErrExists.
func (s *Postgres) PutNewJob(ctx context.Context, j *Job, check func(Load) error) error {
	if s.owner == "" {
		return errors.New("store: storing jobs needs a lease owner")
	}
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := s.tenantLoad(ctx, tx, j.TenantID, j.Created)
		if err != nil {
			return err
		}
		if err := check(l); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `WITH ins AS (
			INSERT INTO jobs(id, tenant_id, status, created, data, lease_owner, lease_until, reserve, model, prompt_bytes)
			VALUES($1,$2,$3,$4,$5,$6, `+nowMs+` + $7, $8, $9, $10) RETURNING id)
			SELECT pg_notify('`+jobChannel+`', $1 || ' ' || $3) FROM ins`,
			j.ID, j.TenantID, j.Status, j.Created.UnixMilli(), data, s.owner, s.lease.Milliseconds(), int64(reserveOf(j)), j.Model, promptBytes(j))
		if uniqueViolation(err) {
			return fmt.Errorf("%w: job %s", ErrExists, j.ID)
		}
		if err != nil {
			return fmt.Errorf("store: job %s: %w", j.ID, err)
		}
		return nil
	})
}

// TakeToken takes one token from the bucket key (burst tokens at most,
// rate more per second), in the database, so that every coordinator
// sharing it takes from the same bucket. It answers whether the request
// may go and, if not, how long until a token is there. The bucket is one
// row, updated in one statement under its row lock (the database's clock
// decides, so the coordinators' clocks need not agree).
func (s *Postgres) TakeToken(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if rate <= 0 {
		return true, 0, nil
	}
	b := float64(max(burst, 1))
	refill := `LEAST($3::float8, rate_buckets.tokens + (excluded.at - rate_buckets.at)::float8 / 1000 * $2::float8)`
	var left float64
	err := s.pool.QueryRow(ctx, `INSERT INTO rate_buckets(key, tokens, at) VALUES($1, $3::float8 - 1, `+nowMs+`)
		ON CONFLICT (key) DO UPDATE SET tokens = `+refill+` - 1, at = excluded.at
		WHERE `+refill+` >= 1
		RETURNING tokens`, key, rate, b).Scan(&left)
	if err == nil {
		return true, 0, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, 0, fmt.Errorf("store: rate bucket: %w", err)
	}
	var have float64
	if err := s.pool.QueryRow(ctx, `SELECT LEAST($2::float8, tokens + (`+nowMs+` - at)::float8 / 1000 * $3::float8) FROM rate_buckets WHERE key = $1`,
		key, b, rate).Scan(&have); err != nil {
		return false, time.Second, nil // refused a moment ago: ask again in a second
	}
	wait := time.Duration(math.Ceil((1-have)/rate*1000)) * time.Millisecond
	return false, max(wait, time.Millisecond), nil
}

package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

// backend opens one implementation of store.Store; open may be called
// again to reopen the same database (as a restarted coordinator would).
type backend struct {
	name string
	db   func(t *testing.T) (open func() store.Store)
}

// backends is every Store implementation: the contract tests run on each.
var backends = []backend{
	{"sqlite", func(t *testing.T) func() store.Store {
		path := filepath.Join(t.TempDir(), "c.db")
		return func() store.Store {
			s, err := store.OpenSQLite(path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}},
	{"postgres", func(t *testing.T) func() store.Store {
		dsn := pgtest.DSN(t)
		return func() store.Store {
			s, err := store.OpenPostgres(context.Background(), dsn, store.PostgresOptions{Owner: "c1"})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}},
}

func forEachBackend(t *testing.T, f func(t *testing.T, open func() store.Store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.db(t)) })
	}
}

func jobID(i int) string { return fmt.Sprintf("%032x", i) }

func TestContractTenantsAndJobsSurviveReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() store.Store) {
		ctx := context.Background()
		s := open()
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
		if err := s.CreateTenant(ctx, store.Tenant{ID: "t1", Name: "dup id", Address: a2, Created: now}, []byte("y")); !errors.Is(err, store.ErrExists) {
			t.Fatalf("duplicate id: %v", err)
		}
		for i := 0; i < 5; i++ {
			j := &store.Job{ID: jobID(i), TenantID: "t1", Customer: a1, Model: "m", Status: store.StatusQueued, Created: now.Add(time.Duration(i) * time.Second), MaxPrice: 1234}
			if i == 4 {
				j.Status = store.StatusSettled
			}
			if err := s.PutJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		// A replaced job keeps only its newest snapshot.
		j2 := &store.Job{ID: jobID(2), TenantID: "t1", Customer: a1, Model: "m", Status: store.StatusRunning, Created: now.Add(2 * time.Second), Result: "partial", MaxPrice: 1234}
		if err := s.PutJob(ctx, j2); err != nil {
			t.Fatal(err)
		}
		s.Close()

		s = open()
		defer s.Close()
		tn, err := s.TenantByKey(ctx, k1[:])
		if err != nil || tn.ID != "t1" || tn.Address != a1 || !tn.Created.Equal(now) {
			t.Fatalf("tenant by key: %+v %v", tn, err)
		}
		if tn, err := s.TenantByAddress(ctx, a1); err != nil || tn.ID != "t1" {
			t.Fatalf("tenant by address: %+v %v", tn, err)
		}
		other := sha256.Sum256([]byte("key-2"))
		if _, err := s.TenantByKey(ctx, other[:]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown key: %v", err)
		}
		if _, err := s.TenantByAddress(ctx, a2); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown address: %v", err)
		}
		if ts, err := s.Tenants(ctx); err != nil || len(ts) != 1 {
			t.Fatalf("tenants: %+v %v", ts, err)
		}
		active, err := s.ActiveJobs(ctx)
		if err != nil || len(active) != 4 || active[0].ID != jobID(0) || active[3].ID != jobID(3) {
			t.Fatalf("active jobs: %d %v", len(active), err)
		}
		got, err := s.Job(ctx, jobID(2))
		if err != nil || got.Status != store.StatusRunning || got.Result != "partial" || got.MaxPrice != 1234 || got.Customer != a1 {
			t.Fatalf("job 2: %+v %v", got, err)
		}
		list, _ := s.JobsByTenant(ctx, "t1", 2)
		if len(list) != 2 || list[0].ID != jobID(4) || list[1].ID != jobID(3) {
			t.Fatalf("newest first: %+v", list)
		}
		if _, err := s.Job(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		counts, _ := s.CountByStatus(ctx)
		if counts[store.StatusQueued] != 3 || counts[store.StatusRunning] != 1 || counts[store.StatusSettled] != 1 {
			t.Fatalf("counts %v", counts)
		}
	})
}

func TestContractKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() store.Store) {
		ctx := context.Background()
		s := open()
		defer s.Close()
		var a address.Address
		a[0] = 7
		k1, k2 := sha256.Sum256([]byte("k1")), sha256.Sum256([]byte("k2"))
		t0 := time.UnixMilli(1_700_000_000_000).UTC()
		if err := s.CreateTenant(ctx, store.Tenant{ID: "t", Name: "n", Address: a, Created: t0}, k1[:]); err != nil {
			t.Fatal(err)
		}
		if err := s.AddTenantKey(ctx, "t", k2[:]); err != nil {
			t.Fatal(err)
		}
		used := t0.Add(time.Hour)
		if err := s.TouchKey(ctx, k1[:], used); err != nil {
			t.Fatal(err)
		}
		keys, err := s.TenantKeys(ctx, "t")
		if err != nil || len(keys) != 2 || keys[0].ID != store.KeyIDOf(k1[:]) || keys[0].LastUsed == nil || !keys[0].LastUsed.Equal(used) || keys[1].LastUsed != nil {
			t.Fatalf("keys: %+v %v", keys, err)
		}
		if err := s.RevokeKey(ctx, "t", "00000000deadbeef"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke unknown: %v", err)
		}
		if err := s.RevokeKey(ctx, "other", store.KeyIDOf(k1[:])); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoke another tenant's key: %v", err)
		}
		if err := s.RevokeKey(ctx, "t", store.KeyIDOf(k1[:])); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TenantByKey(ctx, k1[:]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked key still opens: %v", err)
		}
		if tn, err := s.TenantByKey(ctx, k2[:]); err != nil || tn.ID != "t" {
			t.Fatalf("second key: %v %v", tn, err)
		}
	})
}

func TestContractRegistrations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() store.Store) {
		ctx := context.Background()
		s := open()
		t0 := time.UnixMilli(1_700_000_000_000)
		h := func(i int) []byte { x := sha256.Sum256([]byte{byte(i)}); return x[:] }
		if err := s.UseRegistration(ctx, h(1), t0.Add(time.Minute), t0, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.UseRegistration(ctx, h(1), t0.Add(time.Minute), t0.Add(time.Second), 2); !errors.Is(err, store.ErrExists) {
			t.Fatalf("replay: %v", err)
		}
		if err := s.UseRegistration(ctx, h(2), t0.Add(2*time.Minute), t0, 2); err != nil {
			t.Fatal(err)
		}
		if err := s.UseRegistration(ctx, h(3), t0.Add(time.Minute), t0, 2); !errors.Is(err, store.ErrFull) {
			t.Fatalf("over the limit: %v", err)
		}
		s.Close()
		s = open() // a restarted coordinator still refuses the replay
		defer s.Close()
		if err := s.UseRegistration(ctx, h(1), t0.Add(time.Minute), t0.Add(2*time.Second), 2); !errors.Is(err, store.ErrExists) {
			t.Fatalf("replay after reopen: %v", err)
		}
		// Once h(1)'s validity ended it is forgotten, which frees a slot.
		if err := s.UseRegistration(ctx, h(3), t0.Add(3*time.Minute), t0.Add(time.Minute), 2); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	})
}

func TestContractPruneKeepsActiveJobs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() store.Store) {
		ctx := context.Background()
		s := open()
		defer s.Close()
		old := time.UnixMilli(1_600_000_000_000).UTC()
		statuses := []string{store.StatusSettled, store.StatusFailed, store.StatusExpired, store.StatusQueued, store.StatusCompleted}
		for i, st := range statuses {
			if err := s.PutJob(ctx, &store.Job{ID: jobID(i), TenantID: "t", Status: st, Created: old}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutJob(ctx, &store.Job{ID: jobID(9), TenantID: "t", Status: store.StatusSettled, Created: old.Add(48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		p, ok := s.(interface {
			PruneJobs(context.Context, time.Time) (int, error)
		})
		if !ok {
			t.Fatalf("%T cannot prune", s)
		}
		n, err := p.PruneJobs(ctx, old.Add(time.Hour))
		if err != nil || n != 3 {
			t.Fatalf("pruned %d %v", n, err)
		}
		counts, _ := s.CountByStatus(ctx)
		if counts[store.StatusQueued] != 1 || counts[store.StatusCompleted] != 1 || counts[store.StatusSettled] != 1 || len(counts) != 3 {
			t.Fatalf("left %v", counts)
		}
	})
}

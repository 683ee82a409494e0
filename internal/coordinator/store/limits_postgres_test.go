package store_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

// TestTakeTokenIsOneBucketForAllCoordinators: 30 requests at once through
// three stores (three coordinators) on one database take from one bucket
// of 5: exactly 5 pass, and a refused one learns how long to wait.
func TestTakeTokenIsOneBucketForAllCoordinators(t *testing.T) {
	dsn := pgtest.DSN(t)
	var stores []*store.Postgres
	for _, o := range []string{"c1", "c2", "c3"} {
		s, err := store.OpenPostgres(context.Background(), dsn, store.PostgresOptions{Owner: o})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	var passed atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, wait, err := stores[i%3].TakeToken(t.Context(), "write/t1", 0.001, 5)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				passed.Add(1)
			} else if wait < 900*time.Second {
				t.Errorf("refused with a wait of %s; a token comes every 1000 s", wait)
			}
		}()
	}
	wg.Wait()
	if n := passed.Load(); n != 5 {
		t.Fatalf("%d requests passed a bucket of 5", n)
	}
	// Another key has its own bucket.
	if ok, _, err := stores[0].TakeToken(t.Context(), "write/t2", 0.001, 5); !ok || err != nil {
		t.Fatalf("another tenant: %v %v", ok, err)
	}
}

// TestPutNewJobSeesOtherCoordinatorsJobsAndRefusesWhatCheckRefuses: the
// check sees the tenant's active jobs that other coordinators hold (not
// this one's, nor other tenants'), nothing is stored when it refuses, and
// an id stored already is ErrExists.
func TestPutNewJobSeesOtherCoordinatorsJobsAndRefusesWhatCheckRefuses(t *testing.T) {
	dsn := pgtest.DSN(t)
	open := func(owner string) *store.Postgres {
		s, err := store.OpenPostgres(context.Background(), dsn, store.PostgresOptions{Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	c1, c2 := open("c1"), open("c2")
	now := time.Now().UTC().Truncate(time.Millisecond)
	job := func(i int, tenant string) *store.Job {
		return &store.Job{ID: jobID(i), TenantID: tenant, Model: "m", Prompt: "hello", Status: store.StatusQueued, Created: now,
			Payment: "deposit", MaxPrice: 7}
	}
	accept := func(store.Load) error { return nil }
	for i, s := range []*store.Postgres{c1, c1, c2} {
		if err := s.PutNewJob(t.Context(), job(i, "t1"), accept); err != nil {
			t.Fatal(err)
		}
	}
	if err := c2.PutNewJob(t.Context(), job(9, "t2"), accept); err != nil {
		t.Fatal(err)
	}
	var seen store.Load
	refuse := errors.New("over the limit")
	err := c2.PutNewJob(t.Context(), job(3, "t1"), func(l store.Load) error { seen = l; return refuse })
	if !errors.Is(err, refuse) {
		t.Fatalf("refusal: %v", err)
	}
	if seen.Jobs != 2 || seen.PromptBytes != 10 || seen.Reserved != 14 {
		t.Fatalf("coordinator 2 saw %+v of tenant t1 elsewhere, want coordinator 1's 2 jobs, 10 bytes, 14 reserved", seen)
	}
	if _, err := c1.Job(t.Context(), jobID(3)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused job stored: %v", err)
	}
	if err := c1.PutNewJob(t.Context(), job(2, "t1"), accept); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate id: %v", err)
	}
}

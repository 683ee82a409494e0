package store_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

func openPG(t *testing.T, dsn, owner string, lease time.Duration) *store.Postgres {
	t.Helper()
	s, err := store.OpenPostgres(context.Background(), dsn, store.PostgresOptions{Owner: owner, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestLeaseKeepsAJobWithOneCoordinatorUntilItExpires(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	c1 := openPG(t, dsn, "c1", 200*time.Millisecond)
	c2 := openPG(t, dsn, "c2", time.Minute)
	long := openPG(t, dsn, "c1", time.Minute) // c1 with a lease that cannot run out in this test

	if err := long.PutJob(ctx, &store.Job{ID: jobID(1), TenantID: "t", Status: store.StatusRunning, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := c2.ClaimExpired(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("c2 took a job c1 holds: %d %v", len(got), err)
	}
	if act, err := c2.ActiveJobs(ctx); err != nil || len(act) != 0 {
		t.Fatalf("a starting c2 adopted c1's job: %d %v", len(act), err)
	}
	if err := c2.PutJob(ctx, &store.Job{ID: jobID(1), TenantID: "t", Status: store.StatusFailed}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("c2 overwrote c1's job: %v", err)
	}
	if err := c2.ClaimSettlement(ctx, jobID(1)); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("c2 may settle c1's job: %v", err)
	}
	if err := long.ClaimSettlement(ctx, jobID(1)); err != nil {
		t.Fatalf("c1 may not settle its own job: %v", err)
	}
	if err := c2.ClaimSettlement(ctx, jobID(2)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("settling an unknown job: %v", err)
	}

	// c1 goes quiet: its 200 ms lease (written by c1's short-lease handle)
	// runs out and c2 takes the job over.
	if _, err := c1.RenewLeases(ctx, []string{jobID(1)}); err != nil {
		t.Fatal(err)
	}
	var got []*store.Job
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		var err error
		if got, err = c2.ClaimExpired(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0].ID != jobID(1) || got[0].Status != store.StatusRunning {
		t.Fatalf("takeover: %+v", got)
	}
	// c1 comes back: it learns it lost the job, and cannot write it.
	lost, err := c1.RenewLeases(ctx, []string{jobID(1), jobID(7)})
	if err != nil || len(lost) != 1 || lost[0] != jobID(1) {
		t.Fatalf("lost: %v %v", lost, err)
	}
	if err := c1.PutJob(ctx, &store.Job{ID: jobID(1), TenantID: "t", Status: store.StatusFailed}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("the old coordinator overwrote its successor's job: %v", err)
	}
	if err := c1.ClaimSettlement(ctx, jobID(1)); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("the old coordinator may settle: %v", err)
	}
	if err := c2.PutJob(ctx, &store.Job{ID: jobID(1), TenantID: "t", Status: store.StatusSettled}); err != nil {
		t.Fatal(err)
	}
	if j, _ := c1.Job(ctx, jobID(1)); j.Status != store.StatusSettled {
		t.Fatalf("status %s", j.Status)
	}
}

func TestConcurrentClaimsTakeEachJobOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	dead := openPG(t, dsn, "dead", time.Millisecond)
	const jobs = 300
	for i := range jobs {
		if err := dead.PutJob(ctx, &store.Job{ID: jobID(i), TenantID: "t", Status: store.StatusQueued, Created: time.UnixMilli(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond) // past the dead coordinator's 1 ms leases
	var mu sync.Mutex
	owner := map[string]string{}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		s := openPG(t, dsn, name, time.Minute)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimExpired(ctx, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, j := range got {
					if prev, dup := owner[j.ID]; dup {
						t.Errorf("job %s claimed by %s and %s", j.ID, prev, name)
					}
					owner[j.ID] = name
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(owner) != jobs {
		t.Fatalf("claimed %d of %d jobs", len(owner), jobs)
	}
}

func TestJobChangesAreAnnouncedToOtherCoordinators(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := pgtest.DSN(t)
	c1 := openPG(t, dsn, "c1", time.Minute)
	c2 := openPG(t, dsn, "c2", time.Minute)
	got := make(chan string, 16)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c2.Listen(lctx, func(id, status string) { got <- id + " " + status }) }()
	// LISTEN takes effect asynchronously: write until the first arrives.
	want := jobID(3) + " " + store.StatusRunning
	for {
		if err := c1.PutJob(ctx, &store.Job{ID: jobID(3), TenantID: "t", Status: store.StatusRunning}); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-got:
			if e != want {
				t.Fatalf("event %q, want %q", e, want)
			}
		case <-time.After(200 * time.Millisecond):
			continue
		case <-ctx.Done():
			t.Fatal("no notification")
		}
		break
	}
	if err := c1.PutJob(ctx, &store.Job{ID: jobID(3), TenantID: "t", Status: store.StatusSettled}); err != nil {
		t.Fatal(err)
	}
	for e := range got {
		if e == jobID(3)+" "+store.StatusSettled {
			break
		}
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("listen ended with %v", err)
	}
}

func TestPostgresSchemaMigratesOnceAndRefusesNewer(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{Owner: "x"})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, v int
	if err := conn.QueryRow(ctx, `SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&rows, &v); err != nil || rows != 1 || v != store.PostgresSchemaVersion {
		t.Fatalf("schema_version rows %d version %d: %v", rows, v, err)
	}
	if _, err := conn.Exec(ctx, `UPDATE schema_version SET version = version + 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{Owner: "x"}); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestPostgresURLPasswordStaysOutOfErrors(t *testing.T) {
	_, err := store.OpenPostgres(context.Background(), "postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=2", store.PostgresOptions{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v", err)
	}
	_, err = store.OpenPostgres(context.Background(), "postgres://u:s3cret@[bad/db", store.PostgresOptions{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error %v", err)
	}
}

// TestStoreSurvivesADatabaseRestart: after the server restarts, writes
// succeed again on the same store (the pool replaces its dead
// connections; the coordinator's writer retries the failed one) and the
// notification listener reconnects by itself.
func TestStoreSurvivesADatabaseRestart(t *testing.T) {
	if os.Getenv("AITBC_TEST_POSTGRES") != "" {
		t.Skip("restarts the test's own PostgreSQL server; AITBC_TEST_POSTGRES names an external one")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dsn := pgtest.DSN(t)
	c1 := openPG(t, dsn, "c1", time.Minute)
	c2 := openPG(t, dsn, "c2", time.Minute)
	got := make(chan string, 64)
	go func() { _ = c2.Listen(ctx, func(id, status string) { got <- id + " " + status }) }()
	put := func(status string) {
		t.Helper()
		var err error
		for ctx.Err() == nil {
			if err = c1.PutJob(ctx, &store.Job{ID: jobID(5), TenantID: "t", Status: status}); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("put after restart: %v", err)
	}
	await := func(status string) {
		t.Helper()
		for {
			put(status)
			select {
			case e := <-got:
				if e == jobID(5)+" "+status {
					return
				}
			case <-time.After(300 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("no notification of %s", status)
			}
		}
	}
	await(store.StatusQueued)
	pgtest.Restart(t, 200*time.Millisecond)
	await(store.StatusRunning)
	if j, err := c2.Job(ctx, jobID(5)); err != nil || j.Status != store.StatusRunning {
		t.Fatalf("after restart: %+v %v", j, err)
	}
}

// TestReservationsAreSeenByOtherCoordinators: a deposit job's max price
// counts against its tenant's deposit on every other coordinator while
// the job is active and not yet created on chain.
func TestReservationsAreSeenByOtherCoordinators(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	c1 := openPG(t, dsn, "c1", time.Minute)
	c2 := openPG(t, dsn, "c2", time.Minute)
	put := func(id int, tenant, payment, status string, onChain bool, price coin.Amount) {
		t.Helper()
		if err := c1.PutJob(ctx, &store.Job{ID: jobID(id), TenantID: tenant, Payment: payment, Status: status, OnChain: onChain, MaxPrice: price}); err != nil {
			t.Fatal(err)
		}
	}
	put(1, "t", "deposit", store.StatusQueued, false, 5*coin.Unit)
	put(2, "t", "deposit", store.StatusRunning, false, 2*coin.Unit)
	put(3, "t", "deposit", store.StatusRunning, true, 7*coin.Unit)  // on chain: the deposit read shows it
	put(4, "t", "wallet", store.StatusQueued, false, 11*coin.Unit)  // paid from the customer's wallet
	put(5, "t", "deposit", store.StatusFailed, false, 13*coin.Unit) // ended
	put(6, "u", "deposit", store.StatusQueued, false, 17*coin.Unit) // another tenant
	if got, err := c2.ReservedElsewhere(ctx, "t"); err != nil || got != 7*coin.Unit {
		t.Fatalf("c2 sees %s reserved, want 7: %v", got, err)
	}
	if got, err := c1.ReservedElsewhere(ctx, "t"); err != nil || got != 0 {
		t.Fatalf("c1 counts its own jobs elsewhere: %s %v", got, err)
	}
	put(1, "t", "deposit", store.StatusDispatched, true, 5*coin.Unit) // its create_for landed
	if got, _ := c2.ReservedElsewhere(ctx, "t"); got != 2*coin.Unit {
		t.Fatalf("after job 1 reached the chain c2 sees %s, want 2", got)
	}
}

// TestOfferedJobsAreTakenOnceAndOnlyWhenTheyFit: only queued jobs their
// coordinator offered can be claimed, only those the claimer's fits
// accepts, each by one claimer; a withdrawn offer stays with its
// coordinator, and a taken one cannot be withdrawn.
func TestOfferedJobsAreTakenOnceAndOnlyWhenTheyFit(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	c1 := openPG(t, dsn, "c1", time.Minute)
	c2 := openPG(t, dsn, "c2", time.Minute)
	c3 := openPG(t, dsn, "c3", time.Minute)
	for i := range 6 {
		if err := c1.PutJob(ctx, &store.Job{ID: jobID(i), TenantID: "t", Model: "m", Status: store.StatusQueued, Created: time.UnixMilli(int64(i)), MaxPrice: coin.Amount(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c2.ClaimOffered(ctx, "m", 10, nil); err != nil || len(got) != 0 {
		t.Fatalf("claimed jobs nobody offered: %d %v", len(got), err)
	}
	if err := c1.Offer(ctx, []string{jobID(0), jobID(1), jobID(2), jobID(3), jobID(4)}); err != nil {
		t.Fatal(err)
	}
	if err := c2.Offer(ctx, []string{jobID(5)}); err != nil { // not c2's: no effect
		t.Fatal(err)
	}
	kept, err := c1.Withdraw(ctx, []string{jobID(4)})
	if err != nil || len(kept) != 1 || kept[0] != jobID(4) {
		t.Fatalf("withdraw: %v %v", kept, err)
	}
	expensive := func(j *store.Job) bool { return j.MaxPrice >= 2 } // c2's miners charge 2
	got, err := c2.ClaimOffered(ctx, "m", 10, expensive)
	if err != nil || len(got) != 2 || got[0].ID != jobID(2) || got[1].ID != jobID(3) {
		t.Fatalf("c2 took %v %v, want jobs 2 and 3", got, err)
	}
	if got, _ := c2.ClaimOffered(ctx, "other-model", 10, nil); len(got) != 0 {
		t.Fatalf("took another model's jobs: %d", len(got))
	}
	got, err = c3.ClaimOffered(ctx, "m", 1, nil)
	if err != nil || len(got) != 1 || got[0].ID != jobID(0) {
		t.Fatalf("c3 took %v %v, want job 0 (oldest, one)", got, err)
	}
	if got, _ := c3.ClaimOffered(ctx, "m", 10, nil); len(got) != 1 || got[0].ID != jobID(1) {
		t.Fatalf("c3's second claim: %v", got)
	}
	kept, err = c1.Withdraw(ctx, []string{jobID(0), jobID(2), jobID(5)})
	if err != nil || len(kept) != 1 || kept[0] != jobID(5) {
		t.Fatalf("withdrawing taken offers kept %v %v, want only job 5 (never offered, still c1's)", kept, err)
	}
	lost, _ := c1.RenewLeases(ctx, []string{jobID(0), jobID(1), jobID(2), jobID(3), jobID(4)})
	if len(lost) != 4 {
		t.Fatalf("c1 lost %v, want jobs 0-3", lost)
	}
}

package bench_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aitbc/aitbc/internal/bench"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

// TestJobsCoordinatorsTwo runs `aitbc bench jobs --coordinators 2` at a
// tiny size on a PostgreSQL server: a row for one and for two coordinators,
// every paid job settled and every status request answered (through both
// coordinators, whichever took the job), the databases it made dropped
// and the one it was given left alone. No rate is asserted: timing belongs
// to the benchmark.
func TestJobsCoordinatorsTwo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two devnets")
	}
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	const clients, requests, jobs = 4, 2, 6
	r, err := bench.JobsCoordinators(ctx, bench.CoordinatorsOptions{Coordinators: 2, Store: dsn, Clients: clients, Requests: requests, PaidJobs: jobs, Miners: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 2 || r.Server != "given" {
		t.Fatalf("rows %+v, server %q", r.Rows, r.Server)
	}
	for i, row := range r.Rows {
		if row.Coordinators != i+1 || row.PaidJobs != jobs || row.PaidJobsPerSecond <= 0 || row.PaidElapsed <= 0 {
			t.Errorf("row %d: %+v", i, row)
		}
		if row.StatusLatency.N != clients*requests || row.StatusLatency.P95 <= 0 {
			t.Errorf("row %d: status latency %+v, want %d answered requests", i, row.StatusLatency, clients*requests)
		}
	}
	if !strings.Contains(r.Method, "coordinator i mod n") {
		t.Errorf("method %q does not say how jobs were spread", r.Method)
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE 'aitbc_bench_%'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d bench databases left on the server", left)
	}
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("the given database got %d tables: the bench must work beside it, not in it", tables)
	}
}

// TestJobsCoordinatorsRefusesBadOptions: a count out of range or a store
// coordinators cannot share is refused before anything starts.
func TestJobsCoordinatorsRefusesBadOptions(t *testing.T) {
	for _, o := range []bench.CoordinatorsOptions{
		{Coordinators: 0},
		{Coordinators: bench.MaxBenchCoordinators + 1},
		{Coordinators: 2, Store: "/tmp/coordinator.db"},
		{Coordinators: 2, Store: "postgres://u@h:5432/db?sslmode=disable"},
	} {
		if _, err := bench.JobsCoordinators(context.Background(), o); !errors.Is(err, bench.ErrBadOptions) {
			t.Errorf("%+v: %v, want ErrBadOptions", o, err)
		}
	}
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/pgserver"
)

// MaxBenchCoordinators bounds --coordinators: each is a whole service with
// its own pool of store connections, and the throwaway server allows 200.
const MaxBenchCoordinators = 8

// benchConnsPerCoordinator leaves room under a coordinator's connection
// cap (httpx.DefaultMaxConns) for its miners and chain clients.
const benchConnsPerCoordinator = httpx.DefaultMaxConns - 124

// CoordinatorsOptions configure the scaling figure: the same paid flow and
// status load against 1, 2, ... Coordinators coordinators sharing one
// PostgreSQL store.
type CoordinatorsOptions struct {
	Coordinators int    // the most coordinators measured (1..Coordinators)
	Store        string // postgres:// URL; the bench makes its databases beside it. "": a throwaway server
	Clients      int    // status clients, spread over the coordinators (1000)
	Requests     int    // status requests per client, one a second (20)
	PaidJobs     int    // paid jobs, spread over the coordinators (200)
	Miners       int    // miners, each listing every coordinator (3)
	Progress     io.Writer
}

// CoordinatorsRow is one coordinator count's figures.
type CoordinatorsRow struct {
	Coordinators      int           `json:"coordinators"`
	PaidJobs          int           `json:"paid_jobs"`
	PaidElapsed       time.Duration `json:"paid_elapsed_ns"`
	PaidJobsPerSecond float64       `json:"paid_jobs_per_second"`
	StatusLatency     Latency       `json:"status_latency"`
	StatusRPS         float64       `json:"status_rps"`
}

// CoordinatorsResult is the scaling figure.
type CoordinatorsResult struct {
	Rows     []CoordinatorsRow `json:"rows"`
	Server   string            `json:"server"` // "throwaway" or "given"
	CPUCores int               `json:"cpu_cores"`
	Method   string            `json:"method"`
}

// ErrNoPostgres is returned when no store was given and no throwaway
// server could be started. Every row runs on PostgreSQL, one coordinator
// too, so that the rows differ only in the number of coordinators.
var ErrNoPostgres = errors.New("bench: the coordinators share a PostgreSQL store: give --store postgres://... or install PostgreSQL's server programs (initdb, pg_ctl)")

// ErrBadOptions marks options refused before anything starts (the CLI
// answers them as a usage error).
var ErrBadOptions = errors.New("bench: bad options")

func (o *CoordinatorsOptions) check() error {
	if o.Coordinators < 1 || o.Coordinators > MaxBenchCoordinators {
		return fmt.Errorf("%w: --coordinators %d: want 1 to %d", ErrBadOptions, o.Coordinators, MaxBenchCoordinators)
	}
	if o.Store != "" {
		if !store.IsPostgresURL(o.Store) {
			return fmt.Errorf("%w: --store must be a postgres:// URL: coordinators share only a PostgreSQL store", ErrBadOptions)
		}
		if _, _, err := pgserver.SplitURL(o.Store); err != nil {
			return fmt.Errorf("%w: --store: %w", ErrBadOptions, err)
		}
	}
	if o.Clients <= 0 {
		o.Clients = 1000
	}
	if o.Requests <= 0 {
		o.Requests = 20
	}
	if o.PaidJobs <= 0 {
		o.PaidJobs = 200
	}
	if o.Miners <= 0 {
		o.Miners = 3
	}
	return nil
}

// JobsCoordinators measures paid jobs per second and status latency with
// 1, 2, ... o.Coordinators coordinators sharing one PostgreSQL store, each
// count on a fresh devnet and a fresh database (dropped afterwards), so
// the rows differ only in the number of coordinators.
func JobsCoordinators(ctx context.Context, o CoordinatorsOptions) (CoordinatorsResult, error) {
	res := CoordinatorsResult{CPUCores: runtime.NumCPU(), Server: "given"}
	if err := o.check(); err != nil {
		return res, err
	}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	via := o.Store
	if via == "" {
		say("starting a throwaway PostgreSQL server ...")
		srv, err := pgserver.Start(ctx)
		if err != nil {
			return res, fmt.Errorf("%w (%v)", ErrNoPostgres, err)
		}
		defer srv.Stop()
		via, res.Server = srv.Base()+"postgres", "throwaway"
	}
	for n := 1; n <= o.Coordinators; n++ {
		row, err := coordinatorsRow(ctx, o, via, n, say)
		if err != nil {
			return res, fmt.Errorf("bench: with %d coordinator(s): %w", n, err)
		}
		res.Rows = append(res.Rows, row)
	}
	res.Method = fmt.Sprintf("for each count of coordinators, a fresh in-process devnet (real chain, 500 ms blocks, %d miners on the built-in engine, "+
		"each listing every coordinator, the first rotated) whose coordinators share one fresh PostgreSQL database (on a %s server); "+
		"%d paid jobs of 16 tokens submitted at once, job i to coordinator i mod n, timed until every one is settled on chain; then %d clients, "+
		"client w asking coordinator w mod n, each sending GET /v1/jobs/{id}/status once a second (random phase) %d times, at most %d connections to a coordinator. Load generator, "+
		"coordinators, node, miners and PostgreSQL share the machine's %d cores.",
		o.Miners, res.Server, o.PaidJobs, o.Clients, o.Requests, benchConnsPerCoordinator, res.CPUCores)
	return res, nil
}

func coordinatorsRow(ctx context.Context, o CoordinatorsOptions, via string, n int, say func(string, ...any)) (CoordinatorsRow, error) {
	row := CoordinatorsRow{Coordinators: n, PaidJobs: o.PaidJobs}
	name := fmt.Sprintf("aitbc_bench_%d_%d_%d", os.Getpid(), time.Now().Unix(), n)
	dsn, err := pgserver.CreateDatabase(ctx, via, name)
	if err != nil {
		return row, err
	}
	defer func() {
		// A fresh context: the database goes even when the run was cut short.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pgserver.DropDatabase(dctx, via, name); err != nil {
			say("  (could not drop database %s: %v)", name, err)
		}
	}()
	say("%d coordinator(s): starting a devnet ...", n)
	d, stop, err := startDevnet(ctx, o.Miners, n, dsn)
	if err != nil {
		return row, err
	}
	defer stop()
	// At most benchConnsPerCoordinator connections to each coordinator: its
	// listener refuses past httpx.DefaultMaxConns (miners and the
	// coordinators' own clients need some), and on a loaded machine slow
	// answers make the load generator open more. Past that, requests wait
	// for a connection and the wait counts in their latency.
	transport := &http.Transport{MaxIdleConns: o.Clients * 2, MaxIdleConnsPerHost: benchConnsPerCoordinator, MaxConnsPerHost: benchConnsPerCoordinator}
	defer transport.CloseIdleConnections()
	httpc := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	cs := make([]*coordinator.Client, len(d.CoordinatorURLs))
	for i, u := range d.CoordinatorURLs {
		cs[i] = &coordinator.Client{BaseURL: u, APIKey: d.APIKey, HTTP: httpc}
	}
	if len(cs) != n {
		return row, fmt.Errorf("devnet started %d coordinators, not %d", len(cs), n)
	}
	say("  %d paid jobs on %d miners ...", o.PaidJobs, o.Miners)
	ids, elapsed, err := paidFlow(ctx, cs, o.PaidJobs)
	if err != nil {
		return row, err
	}
	row.PaidElapsed, row.PaidJobsPerSecond = elapsed, float64(o.PaidJobs)/elapsed.Seconds()
	say("  %d settled in %.1f s: %.1f jobs/s", o.PaidJobs, elapsed.Seconds(), row.PaidJobsPerSecond)
	transport.CloseIdleConnections() // the paid flow's: fewer to hold beside the status clients'

	say("  %d clients polling status once a second, %d requests each ...", o.Clients, o.Requests)
	row.StatusLatency, row.StatusRPS, err = statusLoad(ctx, cs, ids, o.Clients, o.Requests, time.Second)
	if err != nil {
		return row, err
	}
	say("  %s at %.0f requests/s offered", row.StatusLatency, row.StatusRPS)
	return row, nil
}

// Package pgtest gives tests a throwaway PostgreSQL database.
//
// With AITBC_TEST_POSTGRES=postgres://... set, it uses that server. Otherwise
// it starts one of its own with internal/pgserver (initdb into a temporary
// directory, a free loopback port, trust authentication). One server
// serves a whole test binary; every call of DSN makes a fresh database on
// it, so tests never see each other's rows. Run stops the server after the
// package's tests: call it from TestMain.
//
// When no server can be had, DSN skips the test with a loud message, unless
// AITBC_REQUIRE_POSTGRES is set (CI sets it): then it fails.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/pgserver"
)

// server is the binary's own PostgreSQL, started on first use.
type server struct {
	once    sync.Once
	base    string           // postgres://.../ without the database name
	own     *pgserver.Server // nil for an external server
	err     error
	counter atomic.Int64
}

var srv server // the test binary's one server: tests share it, each with its own database

// Run runs the package's tests and then stops the server, if one was started.
func Run(m *testing.M) int {
	code := m.Run()
	if srv.own != nil {
		srv.own.Stop()
	}
	return code
}

// DSN returns the URL of a new, empty database, or skips (fails, with
// AITBC_REQUIRE_POSTGRES set) when no PostgreSQL server can be had.
func DSN(t testing.TB) string {
	t.Helper()
	srv.once.Do(srv.start)
	if srv.err != nil {
		msg := fmt.Sprintf("\n\n*** NO POSTGRESQL: %v ***\n*** the PostgreSQL store tests did NOT run; install postgresql (Debian's package) or set AITBC_TEST_POSTGRES=postgres://... ***\n", srv.err)
		if os.Getenv("AITBC_REQUIRE_POSTGRES") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	name := fmt.Sprintf("aitbc_test_%d_%d", os.Getpid(), srv.counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := pgserver.CreateDatabase(ctx, srv.base+"postgres", name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

func (s *server) start() {
	if dsn := os.Getenv("AITBC_TEST_POSTGRES"); dsn != "" {
		// The caller's server: databases are made beside the one named.
		base, _, err := pgserver.SplitURL(dsn)
		if err != nil {
			s.err = fmt.Errorf("AITBC_TEST_POSTGRES: %w", err)
			return
		}
		s.base = base
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.own, s.err = pgserver.Start(ctx)
	if s.err == nil {
		s.base = s.own.Base()
	}
}

// Restart stops the test binary's own server and starts it again on the
// same port and data, as an operator's database restart would. It fails
// the test on an external server (AITBC_TEST_POSTGRES), which it cannot
// restart.
func Restart(t testing.TB, down time.Duration) {
	t.Helper()
	if srv.own == nil {
		t.Fatal("pgtest: cannot restart an external server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.own.Restart(ctx, down); err != nil {
		t.Fatal(err)
	}
}

// Package pgtest gives tests a throwaway PostgreSQL database.
//
// With AITBC_TEST_POSTGRES=postgres://... set, it uses that server. Otherwise
// it starts one of its own: initdb into a temporary directory, pg_ctl start
// on a free loopback port with its unix socket in the same directory, trust
// authentication (nothing but this machine can reach it). PostgreSQL refuses
// to run as root, so under root the server runs as the "postgres" user (or
// "nobody"). One server serves a whole test binary; every call of DSN makes
// a fresh database on it, so tests never see each other's rows. Run
// stops the server after the package's tests: call it from TestMain.
//
// When no server can be had, DSN skips the test with a loud message, unless
// AITBC_REQUIRE_POSTGRES is set (CI sets it): then it fails.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// server is the binary's own PostgreSQL, started on first use.
type server struct {
	once    sync.Once
	base    string // postgres://.../ without the database name
	dir     string // data and socket directory we made ("" for an external server)
	runAs   string // user pg_ctl runs as ("" for ourselves)
	pgCtl   string
	opts    string // the server's options, for a restart
	err     error
	counter atomic.Int64
}

var srv server // the test binary's one server: tests share it, each with its own database

// Run runs the package's tests and then stops the server, if one was started.
func Run(m *testing.M) int {
	code := m.Run()
	srv.stop()
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
	conn, err := pgx.Connect(ctx, srv.base+"postgres")
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return srv.base + name
}

func (s *server) start() {
	if dsn := os.Getenv("AITBC_TEST_POSTGRES"); dsn != "" {
		// The caller's server: databases are made beside the one named.
		i := strings.LastIndex(dsn, "/")
		if i < 0 || strings.Contains(dsn[i:], "?") {
			s.err = fmt.Errorf("AITBC_TEST_POSTGRES=%q: want postgres://user@host:port/dbname without parameters", dsn)
			return
		}
		s.base = dsn[:i+1]
		return
	}
	bin, err := findBin()
	if err != nil {
		s.err = err
		return
	}
	s.pgCtl = filepath.Join(bin, "pg_ctl")
	if os.Geteuid() == 0 {
		for _, name := range []string{"postgres", "nobody"} {
			if _, err := user.Lookup(name); err == nil {
				s.runAs = name
				break
			}
		}
		if s.runAs == "" {
			s.err = errors.New("running as root and no postgres or nobody user to run the server as")
			return
		}
	}
	// Not t.TempDir: its parents are private to us, and the server may
	// run as another user.
	dir, err := os.MkdirTemp("", "aitbc-pgtest-")
	if err != nil {
		s.err = err
		return
	}
	s.dir = dir
	if s.runAs != "" {
		if err := exec.Command("chown", s.runAs, dir).Run(); err != nil {
			s.err = fmt.Errorf("chown %s: %w", dir, err)
			return
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.cmd(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		s.err = fmt.Errorf("initdb: %v: %s", err, lastLines(out))
		return
	}
	port, err := freePort()
	if err != nil {
		s.err = err
		return
	}
	s.opts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
	if out, err := s.cmd(s.pgCtl, "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(dir, "log"), "-o", s.opts).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		s.err = fmt.Errorf("pg_ctl start: %v: %s %s", err, lastLines(out), lastLines(log))
		return
	}
	s.base = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/", port)
}

// stop stops our own server and removes its directory.
func (s *server) stop() {
	if s.dir == "" {
		return
	}
	if s.base != "" {
		_ = s.cmd(s.pgCtl, "stop", "-m", "immediate", "-w", "-D", filepath.Join(s.dir, "data")).Run()
	}
	os.RemoveAll(s.dir)
}

// Restart stops the test binary's own server and starts it again on the
// same port and data, as an operator's database restart would. It fails
// the test on an external server (AITBC_TEST_POSTGRES), which it cannot
// restart.
func Restart(t testing.TB, down time.Duration) {
	t.Helper()
	if srv.dir == "" {
		t.Fatal("pgtest: cannot restart an external server")
	}
	data := filepath.Join(srv.dir, "data")
	if out, err := srv.cmd(srv.pgCtl, "stop", "-m", "fast", "-w", "-D", data).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v: %s", err, out)
	}
	time.Sleep(down)
	if out, err := srv.cmd(srv.pgCtl, "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(srv.dir, "log"), "-o", srv.opts).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl start: %v: %s", err, out)
	}
}

func (s *server) cmd(name string, args ...string) *exec.Cmd {
	if s.runAs == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("runuser", append([]string{"-u", s.runAs, "--", name}, args...)...)
}

// findBin finds PostgreSQL's programs: on PATH, or in Debian's versioned
// directory (which is not on PATH).
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], " | ")
}

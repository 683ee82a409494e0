// Package pgserver starts a throwaway PostgreSQL server on this machine:
// initdb into a temporary directory, pg_ctl start on a free loopback port
// with its unix socket in the same directory, trust authentication
// (nothing but this machine can reach it), durability off (it holds
// nothing worth keeping). PostgreSQL refuses to run as root, so under root
// the server runs as the "postgres" user (or "nobody").
//
// The tests' pgtest and `aitbc bench jobs --coordinators N` both use it.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throwaway server.
type Server struct {
	base  string // postgres://postgres@127.0.0.1:port/ without the database name
	dir   string // data and socket directory
	runAs string // user pg_ctl runs as ("" for ourselves)
	pgCtl string
	opts  string // the server's options, for a restart
}

// Start initialises and starts a server. Stop removes it.
func Start(ctx context.Context) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{pgCtl: filepath.Join(bin, "pg_ctl")}
	if os.Geteuid() == 0 {
		for _, name := range []string{"postgres", "nobody"} {
			if _, err := user.Lookup(name); err == nil {
				s.runAs = name
				break
			}
		}
		if s.runAs == "" {
			return nil, errors.New("pgserver: running as root and no postgres or nobody user to run the server as")
		}
	}
	// Not a private temporary directory of ours: the server may run as
	// another user.
	dir, err := os.MkdirTemp("", "aitbc-pgserver-")
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	s.dir = dir
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.runAs != "" {
		if err := exec.CommandContext(ctx, "chown", s.runAs, dir).Run(); err != nil {
			return fail(fmt.Errorf("pgserver: chown %s: %w", dir, err))
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.cmd(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgserver: initdb: %w: %s", err, lastLines(out)))
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	s.opts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
	if err := s.pgStart(ctx); err != nil {
		return fail(err)
	}
	s.base = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/", port)
	return s, nil
}

// Base is the server's URL without a database name.
func (s *Server) Base() string { return s.base }

// Stop stops the server at once and removes its directory.
func (s *Server) Stop() {
	// A fresh context: stopping must happen even when the caller's is done.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.cmd(ctx, s.pgCtl, "stop", "-m", "immediate", "-w", "-D", filepath.Join(s.dir, "data")).Run()
	os.RemoveAll(s.dir)
}

// Restart stops the server and starts it again on the same port and data
// after down, as an operator's database restart would.
func (s *Server) Restart(ctx context.Context, down time.Duration) error {
	if out, err := s.cmd(ctx, s.pgCtl, "stop", "-m", "fast", "-w", "-D", filepath.Join(s.dir, "data")).CombinedOutput(); err != nil {
		return fmt.Errorf("pgserver: pg_ctl stop: %w: %s", err, lastLines(out))
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	return s.pgStart(ctx)
}

func (s *Server) pgStart(ctx context.Context) error {
	data := filepath.Join(s.dir, "data")
	if out, err := s.cmd(ctx, s.pgCtl, "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(s.dir, "log"), "-o", s.opts).CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pgserver: pg_ctl start: %w: %s %s", err, lastLines(out), lastLines(log))
	}
	return nil
}

func (s *Server) cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	if s.runAs == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs, "--", name}, args...)...)
}

var dbName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDatabase makes an empty database named name on the server of via,
// a postgres:// URL of an existing database to connect through (Base() +
// "postgres", or an operator's database), and returns the new one's URL.
func CreateDatabase(ctx context.Context, via, name string) (string, error) {
	if !dbName.MatchString(name) {
		return "", fmt.Errorf("pgserver: database name %q: want lower-case letters, digits and _", name)
	}
	base, _, err := SplitURL(via)
	if err != nil {
		return "", err
	}
	conn, err := connect(ctx, via)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	return base + name, nil
}

// DropDatabase removes a database CreateDatabase made, connecting through
// via, and closing whatever connections are still open to it.
func DropDatabase(ctx context.Context, via, name string) error {
	if !dbName.MatchString(name) {
		return fmt.Errorf("pgserver: database name %q: want lower-case letters, digits and _", name)
	}
	conn, err := connect(ctx, via)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgserver: drop database %s: %w", name, err)
	}
	return nil
}

// connect parses first, on its own: pgx's parse errors can quote the URL,
// password included, so they are not wrapped.
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("pgserver: bad PostgreSQL URL (want postgres://user:password@host:port/database)")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgserver: connect to %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return conn, nil
}

// SplitURL cuts a postgres:// URL into the server part (ending in "/") and
// the database name, refusing URLs with parameters, whose database could
// not be swapped by appending a name.
func SplitURL(dsn string) (base, db string, err error) {
	i := strings.LastIndex(dsn, "/")
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") || i < len("postgres://") || strings.Contains(dsn[i:], "?") {
		return "", "", errors.New("pgserver: want a postgres://user:password@host:port/dbname URL without parameters")
	}
	return dsn[:i+1], dsn[i+1:], nil
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
	return "", errors.New("pgserver: no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin (install Debian's postgresql package)")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], " | ")
}

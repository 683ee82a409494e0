package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/cli"
)

// syncBuffer is a bytes.Buffer that services may log into from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLogging runs `aitbc web start` with extra arguments until it has
// logged that it listens, then stops it, and returns its stderr.
func startLogging(t *testing.T, env map[string]string, extra ...string) string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr syncBuffer
	root := cli.NewRoot("aitbc", strings.NewReader(""), &stdout, &stderr)
	args := append([]string{"web", "start", "--listen", port(t), "--node", "http://127.0.0.1:1", "--coordinator", "off", "--wallet-url", "off"}, extra...)
	root.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "listening") {
		select {
		case err := <-done:
			t.Fatalf("web start ended: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line after 30 s:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("web start: %v", err)
	}
	return stderr.String()
}

// logRecords returns the stderr lines that are JSON objects, and fails on
// a line written as a text log record (time=... level=...).
func logRecords(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(line, "time=") {
			t.Errorf("a text log line with --log-format json: %s", line)
			continue
		}
		if !strings.HasPrefix(line, "{") {
			continue // the command's own progress line, not a log record
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %v: %s", err, line)
			continue
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestLogFormatJSONWritesOneJSONObjectPerLine(t *testing.T) {
	for name, c := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"flag":        {args: []string{"--log-format", "json"}},
		"environment": {env: map[string]string{"AITBC_LOG_FORMAT": "json"}},
		"config file": {args: []string{"--config", "@web.toml"}},
	} {
		t.Run(name, func(t *testing.T) {
			for i, a := range c.args {
				if a == "@web.toml" { // a web.toml with log_format = "json"
					f := filepath.Join(t.TempDir(), "web.toml")
					if err := os.WriteFile(f, []byte("log_format = \"json\"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
					c.args[i] = f
				}
			}
			recs := logRecords(t, startLogging(t, c.env, c.args...))
			found := false
			for _, r := range recs {
				if r["msg"] == "listening" {
					found = true
					if r["level"] != "INFO" || r["time"] == nil || r["addr"] == nil {
						t.Errorf("listening record %v: want level, time and addr", r)
					}
				}
			}
			if !found {
				t.Errorf("no JSON record of the listener among %d", len(recs))
			}
		})
	}
}

func TestLogFormatTextIsTheDefault(t *testing.T) {
	out := startLogging(t, nil)
	if !strings.Contains(out, "level=INFO msg=listening") {
		t.Errorf("default log lines are not text:\n%s", out)
	}
}

func TestLogFormatRefusesUnknownFormats(t *testing.T) {
	code, stderr := runExit(t, "web", "start", "--log-format", "xml")
	if code != 2 || !strings.Contains(stderr, "--log-format must be text or json") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/cli"
)

// The exit statuses docs/OPERATIONS.md promises: 0 done, 1 could not,
// 2 called wrongly.
func TestExitStatuses(t *testing.T) {
	home := t.TempDir()
	dead := "http://" + port(t) // nothing listens there
	for _, c := range []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{"version"}, cli.ExitOK},
		{"unknown command", []string{"no-such-command"}, cli.ExitUsage},
		{"unknown flag", []string{"status", "--no-such-flag"}, cli.ExitUsage},
		{"too many arguments", []string{"status", "a", "b"}, cli.ExitUsage},
		{"arguments where none are taken", []string{"health", "extra"}, cli.ExitUsage},
		{"missing job id", []string{"ai-status"}, cli.ExitUsage},
		{"two different job ids", []string{"results", "0a", "--job-id", "0b"}, cli.ExitUsage},
		{"bad --output", []string{"version", "--output", "yaml"}, cli.ExitUsage},
		{"missing required flag", []string{"balance"}, cli.ExitUsage},
		{"wallet not found", []string{"--home", home, "--wallet-url", "off", "wallet", "show", "--wallet", "nobody"}, cli.ExitFailure},
		{"service unreachable", []string{"--coordinator", dead, "--api-key", "k", "status", "0a"}, cli.ExitFailure},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stderr := runExit(t, c.args...)
			if code != c.want {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.want, stderr)
			}
			if c.want != cli.ExitOK && (!strings.HasPrefix(stderr, "aitbc: ") || strings.Count(stderr, "\n") != 1) {
				t.Fatalf("stderr %q: want one line starting aitbc:", stderr)
			}
		})
	}
}

func TestBadVariableIsUsage(t *testing.T) {
	t.Setenv("AITBC_LIMIT", "many")
	code, stderr := runExit(t, "status", "--coordinator", "http://"+port(t), "--api-key", "k")
	if code != cli.ExitUsage || !strings.Contains(stderr, "AITBC_LIMIT") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

type jsonError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// With --output json an error is one JSON object on stderr whose code a
// script can switch on.
func TestJSONErrorsOnStderr(t *testing.T) {
	home := t.TempDir()
	for _, c := range []struct {
		name, code string
		exit       int
		env        string
		args       []string
	}{
		{"usage", cli.CodeUsage, cli.ExitUsage, "", []string{"-o", "json", "status", "--no-such-flag"}},
		{"usage, flag after the error", cli.CodeUsage, cli.ExitUsage, "", []string{"no-such-command", "--output=json"}},
		{"from the variable", cli.CodeUsage, cli.ExitUsage, "json", []string{"no-such-command"}},
		{"wallet not found", "wallet_not_found", cli.ExitFailure, "", []string{"--home", home, "--wallet-url", "off", "--output", "json", "wallet", "show", "--wallet", "nobody"}},
		{"unreachable", cli.CodeUnreachable, cli.ExitFailure, "", []string{"--coordinator", "http://" + port(t), "--api-key", "k", "-o", "json", "status", "0a"}},
		{"config unknown key", "config_unknown_key", cli.ExitUsage, "", []string{"-o", "json", "config", "show", "--service", "web", "--config", writeConfig(t, "listn = 1\n")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("AITBC_OUTPUT", c.env)
			}
			code, stderr := runExit(t, c.args...)
			var v jsonError
			if err := json.Unmarshal([]byte(stderr), &v); err != nil || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("stderr %q is not one JSON line: %v", stderr, err)
			}
			if code != c.exit || v.Error.Code != c.code || v.Error.Message == "" {
				t.Fatalf("exit %d, error %+v; want exit %d, code %s", code, v.Error, c.exit, c.code)
			}
		})
	}
}

// AITBC_WAIT=true means "wait" to every command that reads it: once it
// made `transaction status` fail on a duration it could not parse.
func TestWaitVariableMeansWaitEverywhere(t *testing.T) {
	t.Setenv("AITBC_WAIT", "true")
	code, stderr := runExit(t, "transaction", "status")
	if code != cli.ExitUsage || !strings.Contains(stderr, "--tx-id is required") {
		t.Fatalf("transaction status: exit %d, stderr %q", code, stderr)
	}
	code, stderr = runExit(t, "send", "--wallet-url", "off", "--home", t.TempDir())
	if strings.Contains(stderr, "AITBC_WAIT") || code != cli.ExitUsage || !strings.Contains(stderr, "--from") {
		t.Fatalf("send: exit %d, stderr %q", code, stderr)
	}
}

package cli_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/cli"
)

// `aitbc bench jobs` refuses a coordinator count or store it cannot use as
// a usage error (exit 2), before starting a devnet or a database.
func TestBenchJobsCoordinatorsUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "jobs", "--coordinators", "9"}, "want 1 to 8"},
		{[]string{"bench", "jobs", "--coordinators", "-1"}, "want 1 to 8"},
		{[]string{"bench", "jobs", "--store", "postgres://u@h:5432/db"}, "--store needs --coordinators"},
		{[]string{"bench", "jobs", "--coordinators", "2", "--store", "/tmp/coordinator.db"}, "postgres:// URL"},
		{[]string{"bench", "jobs", "--coordinators", "2", "--store", "postgres://u:secret@h:5432/db?sslmode=disable"}, "without parameters"},
	} {
		code, stderr := runExit(t, c.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "secret") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", c.args, code, stderr, cli.ExitUsage, c.want)
		}
	}
}

// A saturation search that could not step (a factor of 1, no steps, no
// start rate) is a usage error (exit 2), refused before any chain starts.
func TestSaturateUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "transfers", "--saturate", "--rate-factor", "1"},
		{"bench", "transfers", "--saturate", "--rate-start", "0"},
		{"bench", "transfers", "--saturate", "--step-seconds", "0"},
		{"testnet", "bench", "--saturate", "--steps", "0"},
	} {
		code, stderr := runExit(t, args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, "saturate: bad options") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d", args, code, stderr, cli.ExitUsage)
		}
	}
}

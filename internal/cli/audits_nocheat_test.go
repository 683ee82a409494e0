//go:build !aitbc_cheat

package cli_test

import (
	"strings"
	"testing"
)

// TestReleaseMinerHasNoCheatFlag: only a binary built with -tags
// aitbc_cheat can run a cheating miner.
func TestReleaseMinerHasNoCheatFlag(t *testing.T) {
	out, _, err := runCLI(t, "miner", "start", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "--cheat") {
		t.Fatalf("a release build offers --cheat:\n%s", out)
	}
	if _, _, err := runCLI(t, "miner", "start", "--cheat", "truncate", "--wallet", "w"); err == nil || !strings.Contains(err.Error(), "unknown flag") {
		t.Fatalf("--cheat in a release build: %v", err)
	}
}

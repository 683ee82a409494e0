package cli_test

import (
	"strings"
	"testing"
)

// ai-submit --split refuses what a split job cannot be before any escrow
// is locked (no wallet daemon or node is reached here).
func TestAISubmitSplitFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--temperature", "0.5"}, "greedy"},
		{[]string{"--service-id", "svc"}, "no marketplace service"},
		{[]string{"--type", "training", "--dataset", "d.csv"}, "inference only"},
	} {
		args := append([]string{"ai-submit", "--wallet", "w", "--prompt", "It was", "--payment", "1", "--split", "--node", "http://127.0.0.1:1"}, c.args...)
		_, _, err := runCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

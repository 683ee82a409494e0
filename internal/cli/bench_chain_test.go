package cli_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/cli"
)

// `aitbc bench chain` without --mix, or with weights it cannot use, is a
// usage error (exit 2) refused before any chain starts.
func TestBenchChainMixUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "chain"}, "give --mix"},
		{[]string{"bench", "chain", "--mix", "--weights", "transfer=60,swap=10"}, "weight swap=10"},
		{[]string{"bench", "chain", "--mix", "--weights", "transfer"}, "not kind=number"},
		{[]string{"bench", "chain", "--mix", "--weights", "bid=1,bid=2"}, "bid given twice"},
		{[]string{"bench", "chain", "--mix", "--weights", "transfer=0"}, "every weight is 0"},
		{[]string{"bench", "chain", "--mix", "--rate", "100000", "--duration", "1h"}, "is over 2000000"},
	} {
		code, stderr := runExit(t, c.args...)
		if code != cli.ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d saying %q", c.args, code, stderr, cli.ExitUsage, c.want)
		}
	}
}

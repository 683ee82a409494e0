package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/cli"
)

// TestEconomicsCommandsHaveExamples: every command of the token economics
// (staking, multisig, faucet, pools, treasury, economics, chain export)
// shows examples in --help and offers --output json.
func TestEconomicsCommandsHaveExamples(t *testing.T) {
	root := cli.NewRoot("aitbc", strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	var walk func(c *cobra.Command)
	checked := 0
	walk = func(c *cobra.Command) {
		if c.Example == "" {
			t.Errorf("aitbc %s has no Examples in its --help", strings.TrimPrefix(c.CommandPath(), "aitbc "))
		}
		if c.Flag("output") == nil {
			t.Errorf("%s has no --output", c.CommandPath())
		}
		checked++
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	for _, path := range [][]string{{"stake"}, {"unstake"}, {"staking"}, {"multisig"}, {"faucet"}, {"pool"}, {"treasury"}, {"economics"}, {"chain", "export"}} {
		c, _, err := root.Find(path)
		if err != nil || c == root {
			t.Fatalf("aitbc %s: %v", strings.Join(path, " "), err)
		}
		walk(c)
	}
	if checked < 15 {
		t.Errorf("only %d commands checked", checked)
	}
}

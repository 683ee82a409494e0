package cli

import (
	"github.com/spf13/cobra"
)

// splitFlags checks ai-submit --split against the other flags before any
// escrow is locked: a split job is greedy inference on a prompt, bound to
// no marketplace service (docs/DISTRIBUTED.md). An unset --temperature
// becomes 0.
func splitFlags(cmd *cobra.Command, typ, serviceID, inputData string, temperature *float32) error {
	switch {
	case typ != "inference":
		return usagef("--split runs inference only, not --type %s", typ)
	case serviceID != "":
		return usagef("--split jobs run under no marketplace service (--service-id)")
	case inputData != "":
		return usagef("--split jobs take a prompt without --input-data")
	case cmd.Flags().Changed("temperature") && *temperature != 0:
		return usagef("--split jobs are greedy: --temperature must be 0")
	}
	*temperature = 0
	return nil
}

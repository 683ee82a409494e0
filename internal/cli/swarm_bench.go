package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/swarm"
)

// newBenchSwarmCmd is `aitbc bench swarm`: routed decoding on loopback.
func newBenchSwarmCmd(g *Globals) *cobra.Command {
	var model string
	var tokens int
	cmd := &cobra.Command{
		Use:   "swarm",
		Short: "Tokens per second and per-hop overhead of routed decoding through 1, 2 and 4 span servers on loopback",
		Long: `Starts span servers on loopback holding even shares of the model's layers
(1, 2 and 4 spans), decodes --tokens greedily through each route, and
compares with the same decoding in one process: the per-hop overhead is the
extra time per token divided by the hops (docs/PERFORMANCE.md).`,
		Example: `  aitbc bench swarm
  aitbc bench swarm --tokens 200 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokens < 1 || tokens > 4096 {
				return usagef("--tokens must be 1 to 4096")
			}
			m, err := engine.Resolve(g.Home, model)
			if err != nil {
				return err
			}
			var counts []int
			for _, n := range []int{1, 2, 4} {
				if n <= m.Config().Layers {
					counts = append(counts, n)
				}
			}
			base, res, err := swarm.BenchLoopback(cmd.Context(), model, m, counts, tokens)
			if err != nil {
				return err
			}
			out := struct {
				Model             string              `json:"model"`
				OneProcessTokensS float64             `json:"one_process_tokens_per_second"`
				Routes            []swarm.BenchResult `json:"routes"`
			}{model, base, res}
			return g.Print(out, func(w io.Writer) {
				fmt.Fprintf(w, "%s, %d tokens; one process: %.0f tokens/s\n", model, tokens, base)
				fmt.Fprintf(w, "%6s %12s %12s\n", "SPANS", "TOKENS/S", "MS/HOP")
				for _, r := range res {
					fmt.Fprintf(w, "%6d %12.0f %12.3f\n", r.Spans, r.TokensPerSec, r.PerHopMs)
				}
			})
		},
	}
	cmd.Flags().StringVar(&model, "model", engine.DefaultModel, "model to split")
	cmd.Flags().IntVar(&tokens, "tokens", 100, "tokens to decode per route")
	return cmd
}

package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/bench"
)

// newBenchMarketCmd is `aitbc bench market`.
func newBenchMarketCmd(g *Globals) *cobra.Command {
	var o bench.MarketOptions
	cmd := &cobra.Command{
		Use:   "market",
		Short: "Committed marketplace transactions per second (bids, accepts, settlements) on a fresh single-validator node",
		Long: `Creates a temporary single-validator chain with --providers providers (one
listing each) and --customers customers; each customer bids, its provider
accepts (the payment locked in market.escrow) and the customer settles part of
it. Each phase is pre-signed and submitted to the node's mempool, and timed
from the first submission until all its transactions are committed. Then
--burst new customers bid at once (seed 001's "100 concurrent bids").`,
		Example: `  # the default run (3,000 customers, 1 s blocks), figures for docs/PERFORMANCE.md
  aitbc bench market

  # shorter blocks and a smaller run, as JSON
  aitbc bench market --block-time 200ms --customers 1000 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !g.JSON() {
				o.Progress = g.Stderr()
			}
			r, err := bench.Market(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) {
				for _, p := range r.Phases {
					fmt.Fprintf(w, "%-7s %6d committed in %6.2fs: %6.0f tx/s\n", p.Kind, p.Committed, p.Elapsed.Seconds(), p.TPS)
				}
				fmt.Fprintf(w, "market  %6d committed in %6.2fs: %6.0f tx/s\n", r.Committed, r.Elapsed.Seconds(), r.TPS)
				fmt.Fprintf(w, "burst   %6d concurrent bids committed in %.2fs\n", r.Burst.Committed, r.Burst.Elapsed.Seconds())
				fmt.Fprintf(w, "cpu     %.1f s on %d cores\n", r.CPUSeconds, r.CPUCores)
				fmt.Fprintf(w, "method  %s\n", r.Method)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Providers, "providers", 50, "providers, one listing each")
	f.IntVar(&o.Customers, "customers", 3000, "customers: one bid, accept and settlement each")
	f.DurationVar(&o.BlockTime, "block-time", time.Second, "block time")
	f.IntVar(&o.Submitters, "submitters", 4, "submitting goroutines")
	f.IntVar(&o.Burst, "burst", 100, "concurrent bids timed on their own")
	return cmd
}

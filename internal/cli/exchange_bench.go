package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/bench"
)

func newBenchExchangeCmd(g *Globals) *cobra.Command {
	var o bench.ExchangeOptions
	var profile string
	cmd := &cobra.Command{
		Use:   "exchange",
		Short: "Exchange orders cleared per second on a fresh single-validator node",
		Long: `Creates a temporary single-validator chain whose genesis funds half the
traders with AITBC and half with btc, pre-signs crossing orders of 1 AITBC,
submits them to the node's mempool and reports orders in committed blocks
divided by the time from the first submission until the book is empty (every
order cleared by the per-block batch auctions). docs/PERFORMANCE.md has
figures.`,
		Example: `  aitbc bench exchange
  aitbc bench exchange --accounts 2000 --per-account 10 --block-time 500ms --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.PerAcct > 200 {
				return usagef("--per-account at most 200 (the chain's open orders per account)")
			}
			if !g.JSON() {
				o.Progress = g.Stderr()
			}
			if profile != "" {
				stop, err := startCPUProfile(profile)
				if err != nil {
					return err
				}
				defer stop()
			}
			r, err := bench.Exchange(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) {
				fmt.Fprintf(w, "cleared %d orders (%d trades) in %d blocks, %.2fs; %d left open\n", r.Committed, r.Trades, r.Blocks, r.Elapsed.Seconds(), r.StillOpen)
				fmt.Fprintf(w, "throughput  %.0f orders cleared/s; largest block %d txs\n", r.OrdersPerSec, r.MaxBlockTxs)
				fmt.Fprintf(w, "cpu         %.1f s on %d cores\n", r.CPUSeconds, r.CPUCores)
				fmt.Fprintf(w, "method      %s\n", r.Method)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Accounts, "accounts", 1000, "traders (half sell, half buy)")
	f.IntVar(&o.PerAcct, "per-account", 20, "orders per trader (at most 200)")
	f.DurationVar(&o.BlockTime, "block-time", time.Second, "block time")
	f.IntVar(&o.Submitters, "submitters", 4, "submitting goroutines")
	f.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	_ = f.MarkHidden("cpuprofile")
	return cmd
}

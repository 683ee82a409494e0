package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/bench"
)

func newBenchCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure the system's throughput"}
	var o bench.TransferOptions
	transfers := &cobra.Command{
		Use:   "transfers",
		Short: "Committed signed transfers per second on a fresh single-validator node",
		Long: `Creates a temporary single-validator chain with many funded accounts,
pre-signs transfers (consecutive nonces per account), submits them to the node's
mempool from several goroutines, and reports transactions in committed blocks
divided by the time from the first submission to the last commit, with the
block time and CPU seconds used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !g.JSON() {
				o.Progress = g.Stderr()
			}
			r, err := bench.Transfers(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) {
				fmt.Fprintf(w, "committed %d of %d transfers in %d blocks, %.2fs\n", r.Committed, r.Txs, r.Blocks, r.Elapsed.Seconds())
				fmt.Fprintf(w, "throughput  %.0f committed tx/s (mempool admission %.0f tx/s)\n", r.TPS, r.SubmitTPS)
				fmt.Fprintf(w, "cpu         %.1f s on %d cores (%.0f%% busy); largest block %d txs\n", r.CPUSeconds, r.CPUCores, 100*r.CPUSeconds/(r.Elapsed.Seconds()*float64(r.CPUCores)), r.MaxBlockTxs)
				fmt.Fprintf(w, "method      %s\n", r.Method)
			})
		},
	}
	f := transfers.Flags()
	f.IntVar(&o.Accounts, "accounts", 2000, "funded sender accounts")
	f.IntVar(&o.PerAcct, "per-account", 25, "transfers per account")
	f.DurationVar(&o.BlockTime, "block-time", time.Second, "block time")
	f.IntVar(&o.Submitters, "submitters", 4, "submitting goroutines")
	cmd.AddCommand(transfers)
	return cmd
}

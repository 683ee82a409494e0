package cli

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/bench"
	"github.com/aitbc/aitbc/internal/bench/saturate"
)

func newBenchExchangeCmd(g *Globals) *cobra.Command {
	var o bench.ExchangeOptions
	var sat saturateFlags
	var profile string
	cmd := &cobra.Command{
		Use:   "exchange",
		Short: "Exchange orders cleared per second on a fresh single-validator node",
		Long: `Creates a temporary single-validator chain whose genesis funds half the
traders with AITBC and half with btc, pre-signs crossing orders of 1 AITBC,
submits them to the node's mempool and reports orders in committed blocks
divided by the time from the first submission until the book is empty (every
order cleared by the per-block batch auctions). Beside it: the rate orders
were admitted to the mempool (and offered, with --rate), the ed25519 batch
verification rate of the same orders measured in the same run (what this
machine could admit at that moment if checking an order cost nothing else),
and CPU seconds per 1,000 orders, which other work on a shared machine
disturbs least. docs/PERFORMANCE.md has figures.

--rate paces the submitters to that many orders per second (open loop).
--saturate steps the offered rate up: a fresh chain per step, --step-seconds
of orders offered at --rate-start, then --rate-factor times more each step,
until a step clears less than 90% of what it offered (not counting the last
block's wait) or refuses any; it prints offered beside cleared for every step.`,
		Example: `  aitbc bench exchange
  aitbc bench exchange --accounts 2000 --per-account 10 --block-time 500ms --output json
  aitbc bench exchange --block-time 300ms --saturate --rate-start 2000 --steps 4 --step-seconds 8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.PerAcct > 200 {
				return usagef("--per-account at most 200 (the chain's open orders per account)")
			}
			if o.Rate < 0 {
				return usagef("--rate must not be negative")
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
			if sat.on {
				sr, err := bench.ExchangeSaturation(cmd.Context(), o, sat.options(), sat.stepSeconds)
				if errors.Is(err, saturate.ErrBadOptions) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				return g.Print(sr, func(w io.Writer) {
					fmt.Fprintf(w, "%-16s  %-16s  %-16s  %-16s  %-8s  %s\n", "offered orders/s", "cleared orders/s", "steady orders/s", "admitted orders/s", "kept up", "load avg")
					for _, s := range sr.Steps {
						fmt.Fprintf(w, "%-16.0f  %-16.0f  %-16.0f  %-16.0f  %-8v  %.1f\n", s.Offered, s.Committed, s.Steady, s.Admitted, s.Kept, s.Load)
					}
					fmt.Fprintf(w, "sustained   %.0f orders/s offered and kept up with; peak %.0f cleared orders/s\n", sr.Sustained, sr.Peak)
					fmt.Fprintf(w, "limit       %.0f ed25519 signatures/s batch-verified on %d cores (first step)\n", sr.VerifyRate, runtime.GOMAXPROCS(0))
					fmt.Fprintf(w, "method      %s\n", sr.Method)
				})
			}
			r, err := bench.Exchange(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) {
				fmt.Fprintf(w, "cleared %d orders (%d trades) in %d blocks, %.2fs; %d left open, %d refused\n", r.Committed, r.Trades, r.Blocks, r.Elapsed.Seconds(), r.StillOpen, r.Rejected)
				offered := "as fast as submitted"
				if r.Offered > 0 {
					offered = fmt.Sprintf("%.0f offered", r.Offered)
				}
				fmt.Fprintf(w, "throughput  %.0f orders cleared/s (%s, %.0f/s admitted to the mempool); largest block %d txs\n", r.OrdersPerSec, offered, r.Admitted, r.MaxBlockTxs)
				if r.VerifyRate > 0 {
					fmt.Fprintf(w, "limit       %.0f ed25519 signatures/s batch-verified on %d cores in this run: cleared %.0f%%, admitted %.0f%% of it\n",
						r.VerifyRate, r.CPUCores, 100*r.OrdersPerSec/r.VerifyRate, 100*r.Admitted/r.VerifyRate)
				}
				fmt.Fprintf(w, "cpu         %.1f s on %d cores, %.2f s per 1,000 orders; load average %.1f\n", r.CPUSeconds, r.CPUCores, r.CPUPer1000, r.LoadAverage)
				fmt.Fprintf(w, "method      %s\n", r.Method)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Accounts, "accounts", 1000, "traders (half sell, half buy)")
	f.IntVar(&o.PerAcct, "per-account", 20, "orders per trader (at most 200)")
	f.DurationVar(&o.BlockTime, "block-time", time.Second, "block time")
	f.IntVar(&o.Submitters, "submitters", 64, "submitting goroutines (concurrent submissions are verified in batches)")
	f.Float64Var(&o.Rate, "rate", 0, "offered orders per second, paced open loop (0: as fast as the submitters go)")
	sat.register(f, 2000)
	f.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the whole run to this file (for performance work)")
	_ = f.MarkHidden("cpuprofile")
	return cmd
}

package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/bench"
)

// newWebBenchCmd is `aitbc bench web`.
func newWebBenchCmd(g *Globals) *cobra.Command {
	var o bench.WebOptions
	cmd := &cobra.Command{
		Use:   "web",
		Short: "The web pages' latency under many viewers, and the time from commit to an open explorer",
		Long: `Starts a temporary devnet with the web pages, gives it a transfer and a
settled job to show, then loads each page with --viewers concurrent viewers
each loading it once a second (--requests times), and reports p50/p95/p99
per page, then the pages per second with the viewers loading back to back; then times
--transfers transfers from their block's timestamp to their row arriving on an
open explorer's live feed, and how many blocks the head had moved on by then.`,
		Example: `  # 200 viewers per page, 10 requests each
  aitbc bench web

  # a lighter run with 1 s blocks, as JSON
  aitbc bench web --viewers 50 --requests 5 --block-time 1s --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !g.JSON() {
				o.Progress = g.Stderr()
			}
			r, err := bench.Web(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) {
				for _, p := range r.Pages {
					fmt.Fprintf(w, "%-48s p95 %7.2f ms  p50 %7.2f ms  p99 %7.2f ms   back to back %5.0f req/s (p95 %.0f ms)\n", p.Page,
						msOf(p.Latency.P95), msOf(p.Latency.P50), msOf(p.Latency.P99), p.SaturationRPS, msOf(p.SaturationLatency.P95))
				}
				fmt.Fprintf(w, "commit to page   %s; the head at most %d block(s) past the transfer's when it arrived\n", r.CommitToPage, r.MaxBlocksLate)
				fmt.Fprintf(w, "method           %s\n", r.Method)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Viewers, "viewers", 200, "concurrent viewers per page")
	f.IntVar(&o.Requests, "requests", 10, "requests per viewer per page")
	f.DurationVar(&o.BlockTime, "block-time", 2*time.Second, "the devnet's block time")
	f.IntVar(&o.Transfers, "transfers", 10, "transfers timed from commit to an open explorer")
	return cmd
}

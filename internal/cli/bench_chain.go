package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/bench"
)

// defaultMixWeights is --weights' default, the same as
// bench.DefaultMixWeights.
const defaultMixWeights = "transfer=60,bid=10,jobs=10,order=10,heartbeat=10"

// newBenchChainCmd is `aitbc bench chain --mix`.
func newBenchChainCmd(g *Globals) *cobra.Command {
	var o bench.MixOptions
	var mix bool
	var weights string
	cmd := &cobra.Command{
		Use:   "chain",
		Short: "Committed operations per second per kind under a mixed load on a fresh single-validator node",
		Long: `With --mix: creates a temporary single-validator chain whose genesis funds
--accounts signers per kind, registers a listing, miners, agents and
coordinator deposits (not timed), then offers --rate transactions per second
for --duration, open loop, interleaved in the proportions of --weights:

  transfer   bank/send of 1 AITBC
  bid        market/bid on the listing (deposit held)
  jobs       jobs/batch of 10 create_for, then 10 assigns, then 10
             settlements against miner-signed receipts (4 coordinators)
  order      exchange/place of 1 AITBC, sells and buys that cross
  heartbeat  agents/heartbeat of a registered agent

For each kind it reports offered/s, committed/s (committed with code 0, over
the time from the first submission until the mempool is empty) and those
refused at admission or failed in a block, counted by error code; beside
them the ed25519 batch verification rate measured in the same run, and
whether the chain's audit holds afterwards.`,
		Example: `  aitbc bench chain --mix
  aitbc bench chain --mix --rate 4000 --duration 20s --block-time 2s --output json
  aitbc bench chain --mix --weights transfer=20,bid=20,jobs=20,order=20,heartbeat=20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !mix {
				return usagef("bench chain measures a mixed load: give --mix")
			}
			w, err := parseMixWeights(weights)
			if err != nil {
				return usageError{err}
			}
			o.Weights = w
			if !g.JSON() {
				o.Progress = g.Stderr()
			}
			r, err := bench.Mix(cmd.Context(), o)
			if errors.Is(err, bench.ErrBadMixOptions) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) { printMix(w, r) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&mix, "mix", false, "offer the mixed load (required)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long load is offered")
	f.Float64Var(&o.Rate, "rate", 2000, "offered transactions per second, all kinds together (open loop)")
	f.StringVar(&weights, "weights", defaultMixWeights, "relative share of each kind: transfer, bid, jobs, order, heartbeat (omitted kinds: 0)")
	f.IntVar(&o.Accounts, "accounts", 200, fmt.Sprintf("signing accounts per kind (at most %d)", bench.MaxMixAccounts))
	f.DurationVar(&o.BlockTime, "block-time", time.Second, "block time")
	f.IntVar(&o.Submitters, "submitters", 64, "submitting goroutines")
	return cmd
}

// parseMixWeights parses "transfer=60,bid=10,...".
func parseMixWeights(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("--weights: %q is not kind=number", part)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("--weights: %s given twice", k)
		}
		out[k] = n
	}
	return out, nil
}

func printMix(w io.Writer, r bench.MixResult) {
	fmt.Fprintf(w, "%-10s  %8s  %9s  %11s  %12s  %8s  %s\n", "kind", "offered", "committed", "offered/s", "committed/s", "refused", "refusal codes")
	row := func(k bench.MixKind) {
		codes := make([]string, 0, len(k.RefusedCodes))
		for c, n := range k.RefusedCodes {
			codes = append(codes, fmt.Sprintf("%s %d", c, n))
		}
		sort.Strings(codes)
		fmt.Fprintf(w, "%-10s  %8d  %9d  %11.0f  %12.0f  %8d  %s\n", k.Kind, k.Offered, k.Committed, k.OfferedPerS, k.CommittedPS, k.Refused, strings.Join(codes, ", "))
	}
	for _, k := range r.Kinds {
		row(k)
	}
	row(r.Total)
	fmt.Fprintf(w, "elapsed     %.2f s, %d blocks; cpu %.1f s on %d cores; audit ok %v\n", r.Elapsed.Seconds(), r.Blocks, r.CPUSeconds, r.CPUCores, r.AuditOK)
	if r.VerifyRate > 0 {
		fmt.Fprintf(w, "limit       %.0f ed25519 signatures/s batch-verified on %d cores in this run: committed %.0f%% of it\n", r.VerifyRate, r.CPUCores, 100*r.Total.CommittedPS/r.VerifyRate)
	}
	fmt.Fprintf(w, "method      %s\n", r.Method)
}

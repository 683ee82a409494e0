package testnet

import (
	"context"
	"fmt"
	"math"

	"github.com/aitbc/aitbc/internal/bench/saturate"
)

// BenchSaturation is a search for the rate a local network keeps up with.
type BenchSaturation struct {
	saturate.Result
	Method string `json:"method"`
}

// BenchSaturate steps the offered rate up (s.Start, times s.Factor each
// step), each step a fresh network running Bench with stepSeconds of
// transfers paced open loop, until committed falls below saturate.Keep of
// offered. o.PerAcct and o.Rate are set per step; o.Dir must be empty.
func BenchSaturate(ctx context.Context, o BenchOptions, s saturate.Options, stepSeconds float64) (BenchSaturation, error) {
	var out BenchSaturation
	if err := o.defaults(); err != nil {
		return out, err
	}
	if stepSeconds <= 0 {
		return out, fmt.Errorf("%w: step of %.1f s", saturate.ErrBadOptions, stepSeconds)
	}
	if o.Dir != "" {
		return out, fmt.Errorf("%w: each step needs a fresh network: no directory to keep", saturate.ErrBadOptions)
	}
	r, err := saturate.Find(ctx, s, func(ctx context.Context, rate float64) (saturate.Step, error) {
		so := o
		so.Rate = rate
		so.PerAcct = max(1, int(math.Ceil(rate*stepSeconds/float64(o.Accounts))))
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "step: offering %.0f tx/s for %.0f s (%d transfers)...\n", rate, stepSeconds, so.PerAcct*o.Accounts)
		}
		br, err := Bench(ctx, so)
		if err != nil {
			return saturate.Step{}, err
		}
		st := saturate.Step{Committed: br.TPS, Steady: saturate.SteadyRate(br.Committed, br.Elapsed, br.SubmitElapsed, o.BlockTime),
			Admitted: br.SubmitTPS, Rejected: br.Rejected, CPU: br.NodeCPU, Load: saturate.LoadAverage()}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "step: offered %.0f, committed %.0f tx/s (load average %.1f)\n", rate, st.Committed, st.Load)
		}
		return st, nil
	})
	out.Result = r
	out.Method = fmt.Sprintf("each step a fresh network of %d validator processes (as `aitbc testnet bench`), %d accounts, %.0f s of transfers "+
		"offered open loop at the step's rate, %d per request, block time %s; the rate starts at %.0f tx/s and grows %.2fx per step until a step "+
		"commits less than %.0f%% of what it offered in its steady state (committed / (time to the last commit less one block interval)) or refuses any; CPU is the node processes'",
		o.Validators, o.Accounts, stepSeconds, o.Batch, o.BlockTime, s.Start, s.Factor, 100*saturate.Keep)
	return out, err
}

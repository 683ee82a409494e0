package bench

import (
	"context"
	"fmt"
	"math"

	"github.com/aitbc/aitbc/internal/bench/saturate"
)

// SaturationResult is a search for the rate one validator keeps up with.
type SaturationResult struct {
	saturate.Result
	// VerifyRate is the ed25519 batch verification rate measured in the
	// first step (see TransferResult.VerifyRate).
	VerifyRate float64 `json:"batch_verify_per_s"`
	Method     string  `json:"method"`
}

// TransfersSaturation steps the offered rate up (s.Start, times s.Factor
// each step) on a fresh validator each step, offering stepSeconds of
// transfers paced open loop, until committed falls below saturate.Keep of
// offered. o.PerAcct is derived from the rate; o.Rate is ignored.
func TransfersSaturation(ctx context.Context, o TransferOptions, s saturate.Options, stepSeconds float64) (SaturationResult, error) {
	o.defaults()
	var out SaturationResult
	if stepSeconds <= 0 {
		return out, fmt.Errorf("%w: step of %.1f s", saturate.ErrBadOptions, stepSeconds)
	}
	r, err := saturate.Find(ctx, s, func(ctx context.Context, rate float64) (saturate.Step, error) {
		so := o
		so.Rate = rate
		so.PerAcct = max(1, int(math.Ceil(rate*stepSeconds/float64(o.Accounts))))
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "step: offering %.0f tx/s for %.0f s (%d transfers)...\n", rate, stepSeconds, so.PerAcct*o.Accounts)
		}
		tr, err := Transfers(ctx, so)
		if err != nil {
			return saturate.Step{}, err
		}
		if out.VerifyRate == 0 {
			out.VerifyRate = tr.VerifyRate
		}
		st := saturate.Step{Committed: tr.TPS, Steady: saturate.SteadyRate(tr.Committed, tr.Elapsed, tr.SubmitElapsed, o.BlockTime),
			Admitted: tr.SubmitTPS, Rejected: tr.Failed, CPU: tr.CPUSeconds, Load: saturate.LoadAverage()}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "step: offered %.0f, committed %.0f tx/s (load average %.1f)\n", rate, st.Committed, st.Load)
		}
		return st, nil
	})
	out.Result = r
	out.Method = fmt.Sprintf("each step a fresh single-validator chain (as `aitbc bench transfers`), %d accounts, %.0f s of transfers offered "+
		"open loop at the step's rate by %d goroutines, block time %s; the rate starts at %.0f tx/s and grows %.2fx per step until a step commits "+
		"less than %.0f%% of what it offered in its steady state (transfers / (time from the first submission until the last is committed, "+
		"less one block interval)) or refuses any",
		o.Accounts, stepSeconds, o.Submitters, o.BlockTime, s.Start, s.Factor, 100*saturate.Keep)
	return out, err
}

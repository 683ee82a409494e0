package bench

import (
	"context"
	"fmt"
	"math"

	"github.com/aitbc/aitbc/internal/bench/saturate"
)

// ExchangeSaturationResult is a search for the order rate one validator
// clears as fast as it is offered.
type ExchangeSaturationResult struct {
	saturate.Result
	// VerifyRate is the batch verification rate measured in the first
	// step (ExchangeResult.VerifyRate).
	VerifyRate float64 `json:"batch_verify_per_s"`
	Method     string  `json:"method"`
}

// maxPerAcct is the chain's default bound on an account's open orders: in
// the mempool's view nothing clears (auctions run only in blocks), so a
// trader's orders of one step must fit under it.
const maxPerAcct = 200

// ExchangeSaturation steps the offered order rate up (s.Start, times
// s.Factor each step), each step a fresh validator offered stepSeconds of
// crossing orders paced open loop, until one clears less than
// saturate.Keep of what it offered (steady state) or refuses any.
// o.PerAcct follows from the rate (and o.Accounts grows when a trader
// would need more than 200 orders); o.Rate is ignored.
func ExchangeSaturation(ctx context.Context, o ExchangeOptions, s saturate.Options, stepSeconds float64) (ExchangeSaturationResult, error) {
	o.defaults()
	var out ExchangeSaturationResult
	if stepSeconds <= 0 {
		return out, fmt.Errorf("%w: step of %.1f s", saturate.ErrBadOptions, stepSeconds)
	}
	r, err := saturate.Find(ctx, s, func(ctx context.Context, rate float64) (saturate.Step, error) {
		so := o
		so.Rate = rate
		total := int(math.Ceil(rate * stepSeconds))
		so.Accounts = max(o.Accounts, 2*int(math.Ceil(float64(total)/(2*maxPerAcct))))
		so.PerAcct = max(1, int(math.Ceil(float64(total)/float64(so.Accounts))))
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "step: offering %.0f orders/s for %.0f s (%d orders)...\n", rate, stepSeconds, so.PerAcct*so.Accounts)
		}
		er, err := Exchange(ctx, so)
		if err != nil {
			return saturate.Step{}, err
		}
		if out.VerifyRate == 0 {
			out.VerifyRate = er.VerifyRate
		}
		st := saturate.Step{Committed: er.OrdersPerSec, Steady: saturate.SteadyRate(er.Committed, er.Elapsed, er.SubmitElapsed, o.BlockTime),
			Admitted: er.Admitted, Rejected: er.Rejected, CPU: er.CPUSeconds, Load: er.LoadAverage}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "step: offered %.0f, cleared %.0f orders/s (%.2f CPU-s per 1,000; load average %.1f)\n", rate, st.Committed, er.CPUPer1000, st.Load)
		}
		return st, nil
	})
	out.Result = r
	out.Method = fmt.Sprintf("each step a fresh single-validator chain (as `aitbc bench exchange`), at least %d traders, %.0f s of crossing orders "+
		"of 1 AITBC offered open loop at the step's rate by %d goroutines, block time %s; the rate starts at %.0f orders/s and grows %.2fx per "+
		"step until a step clears less than %.0f%% of what it offered in its steady state (orders / (time from the first submission until "+
		"the book is empty, less one block interval)) or refuses any",
		o.Accounts, stepSeconds, o.Submitters, o.BlockTime, s.Start, s.Factor, 100*saturate.Keep)
	return out, err
}

// Package saturate finds the load at which a system stops keeping up: it
// offers a rising rate, step by step, until what is committed falls short
// of what is offered. Used by `aitbc bench transfers --saturate` and
// `aitbc testnet bench --saturate`; it knows nothing of chains, only rates.
package saturate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Keep is the share of the offered rate a step must commit, in its steady
// state (Step.Steady), to count as kept up with.
const Keep = 0.9

// Step is one offered rate and what came of it.
type Step struct {
	Offered   float64 `json:"offered_tps"`
	Committed float64 `json:"committed_tps"` // committed / time from the first submission to the last commit
	// Steady is Committed without the last block's wait: committed / (that
	// time less one block interval, and no less than the time offering
	// took). The last transactions offered wait up to an interval for their
	// block, which at 2 s blocks and 8 s steps is a fifth of the step: a
	// chain that keeps up would otherwise fail Keep. A chain that falls
	// behind builds a backlog that one interval does not hide. 0: use
	// Committed.
	Steady   float64 `json:"steady_committed_tps,omitempty"`
	Admitted float64 `json:"admitted_tps"` // accepted into the mempool(s)
	Rejected int     `json:"rejected"`
	Kept     bool    `json:"kept_up"`
	CPU      float64 `json:"cpu_seconds,omitempty"`
	Load     float64 `json:"load_average,omitempty"` // 1-minute load average when the step ended (Linux), other work on the machine
}

// Result is every step, and the figures read from them.
type Result struct {
	Steps []Step `json:"steps"`
	// Sustained is the highest offered rate that was kept up with (0: not
	// even the first).
	Sustained float64 `json:"sustained_tps"`
	// Peak is the highest committed rate of any step.
	Peak float64 `json:"peak_committed_tps"`
}

// Options configure a search.
type Options struct {
	Start    float64 // first offered rate, transactions per second
	Factor   float64 // each next rate is the last times Factor (> 1)
	MaxSteps int     // stop after this many steps even if every one kept up
}

// ErrBadOptions is returned for a start rate, factor or step count that
// cannot make a search.
var ErrBadOptions = errors.New("saturate: bad options")

// Run is one step: offer rate and report what was committed.
type Run func(ctx context.Context, rate float64) (Step, error)

// Find offers o.Start, o.Start*o.Factor, ... until a step commits (in its
// steady state) less than Keep of what it offered (that step is the last), or o.MaxSteps
// have run. A step's error ends the search with the steps so far.
func Find(ctx context.Context, o Options, run Run) (Result, error) {
	var res Result
	if o.Start <= 0 || o.Factor <= 1 || o.MaxSteps < 1 {
		return res, fmt.Errorf("%w: start %.0f tx/s, factor %.2f, %d steps (want start > 0, factor > 1, steps >= 1)", ErrBadOptions, o.Start, o.Factor, o.MaxSteps)
	}
	rate := o.Start
	for range o.MaxSteps {
		s, err := run(ctx, rate)
		if err != nil {
			return res, fmt.Errorf("saturate: at %.0f tx/s: %w", rate, err)
		}
		s.Offered = rate
		steady := s.Steady
		if steady == 0 {
			steady = s.Committed
		}
		s.Kept = s.Rejected == 0 && steady >= Keep*rate
		res.Steps = append(res.Steps, s)
		res.Peak = max(res.Peak, s.Committed)
		if !s.Kept {
			break
		}
		res.Sustained = rate
		rate *= o.Factor
	}
	return res, nil
}

// LoadAverage returns the machine's 1-minute load average (Linux; 0
// elsewhere or when unreadable): printed beside figures taken on a shared
// machine.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return 0
	}
	return l
}

// SteadyRate is Step.Steady: n transactions committed elapsed after the
// first was offered, offering having taken offering, with blocks every
// interval.
func SteadyRate(n int, elapsed, offering, interval time.Duration) float64 {
	d := max(elapsed-interval, offering)
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/bench"
	"github.com/aitbc/aitbc/internal/bench/saturate"
)

// TestExchangeBenchClearsEveryOrder: a small run clears every order it
// submits: none left open, a trade for each pair.
func TestExchangeBenchClearsEveryOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := bench.Exchange(ctx, bench.ExchangeOptions{Accounts: 20, PerAcct: 5, BlockTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Orders != 100 || r.Committed != 100 || r.StillOpen != 0 || r.Trades < 50 || r.OrdersPerSec <= 0 {
		t.Fatalf("result %+v", r)
	}
}

// TestExchangeBenchReportsOfferedAdmittedAndLimit: a paced run reports
// what was offered beside what was admitted and cleared, the same run's
// batch-verification limit and CPU per 1,000 orders; a saturation search
// of one step reports that step's offered rate.
func TestExchangeBenchReportsOfferedAdmittedAndLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := bench.Exchange(ctx, bench.ExchangeOptions{Accounts: 20, PerAcct: 5, BlockTime: 200 * time.Millisecond, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	if r.Committed != 100 || r.StillOpen != 0 || r.Rejected != 0 || r.Offered != 200 || r.Admitted <= 0 ||
		r.VerifyRate <= 0 || r.CPUPer1000 <= 0 || r.SubmitElapsed <= 0 {
		t.Fatalf("result %+v", r)
	}
	sr, err := bench.ExchangeSaturation(ctx, bench.ExchangeOptions{Accounts: 20, BlockTime: 200 * time.Millisecond},
		saturate.Options{Start: 40, Factor: 2, MaxSteps: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Steps) != 1 || sr.Steps[0].Offered != 40 || sr.Steps[0].Committed <= 0 || sr.Steps[0].Rejected != 0 || sr.VerifyRate <= 0 {
		t.Fatalf("saturation %+v", sr)
	}
}

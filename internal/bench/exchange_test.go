package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/bench"
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

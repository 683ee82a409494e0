package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/bench"
)

// TestMarketSmall runs the marketplace benchmark at a small size: every
// bid, acceptance and settlement must be committed and the invariants
// hold (no TPS assertion; timing belongs to the benchmark).
func TestMarketSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	r, err := bench.Market(context.Background(), bench.MarketOptions{Providers: 5, Customers: 60, Burst: 20, BlockTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Phases) != 3 || r.Committed != 180 || r.Burst.Committed != 20 {
		t.Fatalf("committed %d (phases %+v), burst %d", r.Committed, r.Phases, r.Burst.Committed)
	}
}

// BenchmarkMarket reports committed marketplace transactions per second
// on one validator. Run: go test -run '^$' -bench Market -benchtime 1x ./internal/bench
func BenchmarkMarket(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := bench.Market(context.Background(), bench.MarketOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.TPS, "committed-tx/s")
		b.ReportMetric(r.Burst.Elapsed.Seconds(), "burst-s")
	}
}

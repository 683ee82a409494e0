package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/bench"
)

// TestTransfersSmall runs the benchmark at a small size: every transfer
// must be committed (no TPS assertion; timing belongs to the benchmark).
func TestTransfersSmall(t *testing.T) {
	r, err := bench.Transfers(context.Background(), bench.TransferOptions{Accounts: 50, PerAcct: 4, BlockTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Committed != r.Txs || r.Failed != 0 {
		t.Fatalf("committed %d of %d", r.Committed, r.Txs)
	}
	if r.VerifyRate <= 0 {
		t.Fatalf("no batch verification rate beside the figure: %+v", r)
	}
}

// TestTransfersPacedSmall: an open-loop run at a paced rate commits every
// transfer and reports the rate it offered.
func TestTransfersPacedSmall(t *testing.T) {
	r, err := bench.Transfers(context.Background(), bench.TransferOptions{Accounts: 50, PerAcct: 4, BlockTime: 100 * time.Millisecond, Rate: 400, Submitters: 16})
	if err != nil {
		t.Fatal(err)
	}
	if r.Committed != r.Txs || r.Offered != 400 {
		t.Fatalf("committed %d of %d, offered %.0f", r.Committed, r.Txs, r.Offered)
	}
}

// BenchmarkTransfers reports committed transfers per second on one
// validator. Run: go test -run '^$' -bench Transfers -benchtime 1x ./internal/bench
func BenchmarkTransfers(b *testing.B) {
	for i := 0; i < b.N; i++ {
		r, err := bench.Transfers(context.Background(), bench.TransferOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.TPS, "committed-tx/s")
		b.ReportMetric(float64(r.Blocks), "blocks")
		b.ReportMetric(r.CPUSeconds, "cpu-s")
	}
}

package fault

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/testnet"
)

// BenchmarkLocalnetFourValidators measures committed transfers per second
// on four validator processes on loopback, with pre-signed transfers
// submitted over HTTP round-robin (by account) to every node's REST API.
// One run per iteration; run it with -benchtime 1x:
//
//	go test ./test/fault -run '^$' -bench Localnet -benchtime 1x
func BenchmarkLocalnetFourValidators(b *testing.B) {
	if aitbcBin == "" {
		b.Skip("no aitbc binary")
	}
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		r, err := testnet.Bench(ctx, testnet.BenchOptions{Binary: aitbcBin, Validators: 4, Dir: b.TempDir()})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.TPS, "committed-tx/s")
		b.ReportMetric(float64(r.Blocks), "blocks")
		b.Logf("%d of %d transfers committed in %.2fs: %.0f committed tx/s (HTTP admission %.0f tx/s), largest block %d; %s",
			r.Committed, r.Txs, r.Elapsed.Seconds(), r.TPS, r.SubmitTPS, r.MaxBlockTxs, r.Method)
	}
}

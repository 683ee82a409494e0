package coordinator

import (
	"slices"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

// BenchmarkSubmitToFirstToken measures the coordinator's own overhead on a
// job's first token: submission (deposit read, SQLite write), placement,
// the payment gate and the stream, against a fake chain with
// release_delay and a miner that answers at once. Reported: the median,
// as first-token-µs.
func BenchmarkSubmitToFirstToken(b *testing.B) {
	h := newHarness(b, releaseDelay)
	h.fund(1_000_000 * coin.Unit)
	m := h.addMiner(coin.Unit)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		j := h.submit(JobRequest{Model: testModel, Prompt: "It was", MaxTokens: 8})
		sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
		if err != nil {
			b.Fatal(err)
		}
		mj := m.nextJob()
		m.tokens(mj, "tok")
		if e := recvToken(b, sub.Events); e.Text != "tok" {
			b.Fatalf("token %+v", e)
		}
		lat = append(lat, time.Since(t0))
		sub.Cancel()
		m.finish(mj, "tok", 1) // frees the miner's slot
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "first-token-µs")
}

// BenchmarkSubmitAtDepth: the coordinator's own cost of accepting a
// deposit-paid job while b.N jobs already wait (no miner connected; fake
// chain, in-memory SQLite). A submission must not cost more the deeper the
// queue: reservations are summed as they come and go, and a model nobody
// can serve is not walked on every dispatch pass.
func BenchmarkSubmitAtDepth(b *testing.B) {
	h := newHarness(b, releaseDelay)
	h.fund(1_000_000 * coin.Unit)
	_, addr := newKey(b)
	h.chain.mu.Lock()
	h.chain.miners = append(h.chain.miners, ChainMiner{Address: addr, Models: []string{testModel}, PricePer1k: coin.Unit, Stake: 100 * coin.Unit, Status: "active"})
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	req := JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 16}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.s.Submit(h.ctx, h.tenant, req); err != nil {
			b.Fatal(err)
		}
	}
}

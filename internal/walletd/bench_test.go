package walletd_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/walletd"
)

// BenchmarkSignUnlocked measures signing and encoding one transfer with an
// unlocked wallet, without a node round trip (nonce, chain id, fee given).
func BenchmarkSignUnlocked(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	w, err := e.svc.Create(ctx, "bench", "pw")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.svc.Unlock(ctx, "bench", "pw", time.Hour); err != nil {
		b.Fatal(err)
	}
	msg := bank.NewSendMsg(w.Address, coin.Unit)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := uint64(i)
		if _, err := e.svc.Sign(ctx, "bench", "", msg, walletd.SignOptions{Nonce: &n, ChainID: testChain, Fee: testMinFee}); err != nil {
			b.Fatal(err)
		}
	}
}

package bench

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// verifySample bounds the transactions VerifyRate cycles through: enough
// distinct signatures and keys that caches do not flatter the figure.
const verifySample = 8192

// VerifyRate measures the physical limit of admission on this machine: how
// many of raws' ed25519 signatures are verified per second in batches of
// 64 (the node's batch size) on every CPU, with expanded keys cached as a
// node caches them; the signed digest of each transaction is recomputed per
// check, as CheckTx does. It runs for about d. Transactions that do not
// decode are skipped.
func VerifyRate(raws [][]byte, d time.Duration) float64 {
	txs := make([]*tx.Tx, 0, min(len(raws), verifySample))
	for _, raw := range raws[:min(len(raws), verifySample)] {
		if t, err := tx.Decode(raw); err == nil {
			txs = append(txs, t)
		}
	}
	const batch = 64
	if len(txs) < batch {
		return 0
	}
	v := tx.NewVerifier(len(txs))
	tx.VerifyAll(v, txs) // expand every key once, as a node's cache would
	var done atomic.Int64
	workers := runtime.GOMAXPROCS(0)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * batch; time.Now().Before(deadline); i += workers * batch {
				lo := i % (len(txs) - batch + 1)
				tx.VerifyAll(v, txs[lo:lo+batch])
				done.Add(batch)
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds()
}

package exchange

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestQuoteAgreesWithBigIntegers: Quote and quoteCeil (128-bit arithmetic
// in registers) give what exact big-integer arithmetic gives, the
// quotient's low 64 bits and whether it fits, over random and extreme
// amounts and prices, overflowing ones included.
func TestQuoteAgreesWithBigIntegers(t *testing.T) {
	want := func(a, p uint64, ceil bool) (uint64, bool) {
		q := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(p))
		if ceil {
			q.Add(q, big.NewInt(999_999_999))
		}
		q.Quo(q, big.NewInt(1_000_000_000))
		low := new(big.Int).And(q, new(big.Int).SetUint64(math.MaxUint64))
		return low.Uint64(), q.IsUint64()
	}
	edges := []uint64{0, 1, 999, 1000, 999_999_999, 1_000_000_000, 1_000_000_001, 1 << 32, 1 << 50, math.MaxUint64 / 1_000_000_000,
		math.MaxUint64/1_000_000_000 + 1, math.MaxUint64 - 1, math.MaxUint64}
	r := rand.New(rand.NewPCG(7, 11))
	var pairs [][2]uint64
	for _, a := range edges {
		for _, p := range edges {
			pairs = append(pairs, [2]uint64{a, p})
		}
	}
	for i := 0; i < 20_000; i++ {
		pairs = append(pairs, [2]uint64{r.Uint64() >> r.UintN(64), r.Uint64() >> r.UintN(64)})
	}
	for _, pr := range pairs {
		a, p := pr[0], pr[1]
		q, ok := Quote(a, p)
		if wq, wok := want(a, p, false); q != wq || ok != wok {
			t.Fatalf("Quote(%d, %d) = %d, %v; want %d, %v", a, p, q, ok, wq, wok)
		}
		q, ok = quoteCeil(a, p)
		if wq, wok := want(a, p, true); q != wq || ok != wok {
			t.Fatalf("quoteCeil(%d, %d) = %d, %v; want %d, %v", a, p, q, ok, wq, wok)
		}
	}
}

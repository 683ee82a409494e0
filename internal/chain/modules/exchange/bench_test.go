package exchange_test

import (
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/exchange"
)

// BenchmarkPlaceAndClear: orders placed and cleared per block, in the
// module alone (no signatures, no consensus): what the chain's own
// exchange work costs per order.
func BenchmarkPlaceAndClear(b *testing.B) {
	w := newWorld(b, nil)
	const traders = 1000
	for i := 0; i < traders; i++ {
		w.fund(address.Address{byte(i), byte(i >> 8), 1}, 1_000_000*aitbc, 1_000_000_000)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := address.Address{byte(i % traders), byte((i % traders) >> 8), 1}
		step := uint64(i*7%100) * 100
		side, price := exchange.Sell, ref-step
		if i%2 == 1 {
			side, price = exchange.Buy, ref+step
		}
		if _, err := w.k.Place(w.kv, w.h, a, exchange.MsgPlace{Side: side, Price: price, Amount: aitbc}); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			w.endBlock()
		}
	}
}

package exchange_test

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/state"
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

// chainBench lays state out as the app does: a committed store, one cache
// per block over it, one child cache per transaction, written into the
// block's cache when it succeeds; the block's writes are committed after
// EndBlock. Costs measured here include the state layers' work (lookups
// that fall through to Pebble, the block cache's prefix walks), which a
// single ever-growing cache would hide.
type chainBench struct {
	b       *testing.B
	st      *state.Store
	bank    *bank.Keeper
	k       *exchange.Keeper
	h       int64
	traders []address.Address
}

func newChainBench(b *testing.B, traders int) *chainBench {
	st, err := state.OpenInMemory()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	bk := bank.NewKeeper()
	bk.RegisterDenom(bank.Denom{Name: "btc", Decimals: 8, Minters: []string{"test"}})
	k := exchange.NewKeeper(bk)
	bk.AddModuleAccounts(k.Accounts()...)
	c := &chainBench{b: b, st: st, bank: bk, k: k, h: 1}
	kv := state.NewCache(st)
	if err := k.InitGenesis(&module.Context{KV: kv}, nil); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < traders; i++ {
		a := address.Address{byte(i), byte(i >> 8), 1}
		c.traders = append(c.traders, a)
		if err := bk.Mint(kv, a, 1_000_000*aitbc); err != nil {
			b.Fatal(err)
		}
		if err := bk.MintDenom(kv, "test", a, "btc", 1_000_000_000); err != nil {
			b.Fatal(err)
		}
	}
	c.commit(kv)
	return c
}

func (c *chainBench) commit(kv *state.Cache) {
	if err := c.st.Commit(c.h, time.Unix(1_700_000_000+c.h, 0), []byte{1}, "", kv.Sorted()); err != nil {
		c.b.Fatal(err)
	}
	c.h++
}

// block places n crossing orders of 1 AITBC (trader i sells if i is even,
// buys if odd, over 100 price steps, as `aitbc bench exchange` does) and
// returns the block's cache for EndBlock.
func (c *chainBench) block(n, from int) *state.Cache {
	kv := state.NewCache(c.st)
	for i := from; i < from+n; i++ {
		t := i % len(c.traders)
		step := uint64((t*7+i/len(c.traders)*13)%100) * 100
		side, price := exchange.Sell, ref-step
		if t%2 == 1 {
			side, price = exchange.Buy, ref+step
		}
		tx := kv.Child()
		if _, err := c.k.Place(tx, c.h, c.traders[t], exchange.MsgPlace{Side: side, Price: price, Amount: aitbc}); err != nil {
			c.b.Fatal(err)
		}
		tx.Write()
	}
	return kv
}

func (c *chainBench) endBlock(kv *state.Cache) {
	if err := c.k.EndBlock(&module.Context{KV: kv, Height: c.h, Time: time.Unix(1_700_000_000+c.h, 0)}); err != nil {
		c.b.Fatal(err)
	}
}

// BenchmarkPlaceOrder: one order placed (DeliverTx's module work, in its
// own child cache) in blocks of 2,000, each block cleared and committed
// outside the timer. ns/op is the module's cost of admitting one order.
func BenchmarkPlaceOrder(b *testing.B) {
	c := newChainBench(b, 1000)
	const perBlock = 2000
	b.ReportAllocs()
	var cpu time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += perBlock {
		n := min(perBlock, b.N-done)
		c0 := cpuTime(b)
		kv := c.block(n, done)
		cpu += cpuTime(b) - c0
		b.StopTimer()
		c.endBlock(kv)
		c.commit(kv)
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkAuctionBlock: EndBlock of a block of 2,000 (and 10,000)
// crossing orders, all of which fill: the auction, the settlement of every
// fill, the trade records and the closing of the filled orders. ns/order
// and cpu-ns/order are the figures to read (on a shared machine, the CPU
// time: the process's user and system time, GC included).
func BenchmarkAuctionBlock(b *testing.B) {
	for _, n := range []int{2000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			c := newChainBench(b, 1000)
			b.ReportAllocs()
			var total, cpu time.Duration
			for i := 0; i < b.N; i++ {
				kv := c.block(n, i*n)
				start, c0 := time.Now(), cpuTime(b)
				c.endBlock(kv)
				total += time.Since(start)
				cpu += cpuTime(b) - c0
				c.commit(kv)
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*n), "ns/order")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/order")
		})
	}
}

// cpuTime is the process's CPU time so far: on a machine shared with other
// work, wall time measures the neighbours as much as the code.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

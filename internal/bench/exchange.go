package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/bench/saturate"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
)

// ExchangeOptions configure `aitbc bench exchange`.
type ExchangeOptions struct {
	Accounts   int           // traders, half selling and half buying (1000)
	PerAcct    int           // orders per trader (20; at most the chain's 200 open orders per account)
	BlockTime  time.Duration // 1s
	Submitters int           // 64: concurrent submissions are verified in batches, as concurrent API requests are
	Rate       float64       // offered orders per second, paced open loop; 0: as fast as the submitters go
	Progress   io.Writer
}

// ExchangeResult is what a run measured.
type ExchangeResult struct {
	Orders       int           `json:"orders"`
	Committed    int           `json:"committed"`
	Trades       uint64        `json:"trades"`
	StillOpen    int           `json:"still_open"`
	Blocks       int64         `json:"blocks"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	OrdersPerSec float64       `json:"orders_cleared_per_sec"`
	// Offered is the paced rate (0: unpaced); Admitted the orders accepted
	// into the mempool per second of submitting, and Rejected those it
	// refused for good.
	Offered       float64       `json:"offered_per_sec,omitempty"`
	Admitted      float64       `json:"admitted_per_sec"`
	SubmitElapsed time.Duration `json:"submit_elapsed_ns"`
	Rejected      int           `json:"rejected"`
	// VerifyRate is the ed25519 batch verification rate of these orders'
	// signatures on every core, measured in this run just before
	// submission (as `bench transfers` measures it): the most orders this
	// machine could admit at that moment if checking them cost nothing
	// else, so OrdersPerSec / VerifyRate is the exchange's share of it.
	VerifyRate  float64 `json:"batch_verify_per_s"`
	MaxBlockTxs int     `json:"max_block_txs"`
	CPUSeconds  float64 `json:"cpu_seconds"`
	// CPUPer1000 is the process's CPU seconds (validator and submitters,
	// GC included; signing before the timer is not) per 1,000 orders
	// cleared: the figure that other work on a shared machine disturbs
	// least.
	CPUPer1000  float64       `json:"cpu_seconds_per_1000_orders"`
	LoadAverage float64       `json:"load_average,omitempty"` // 1-minute load average at the end: other work on the machine
	CPUCores    int           `json:"cpu_cores"`
	BlockTime   time.Duration `json:"block_time_ns"`
	Method      string        `json:"method"`
}

func (o *ExchangeOptions) defaults() {
	if o.Accounts < 2 {
		o.Accounts = 1000
	}
	o.Accounts -= o.Accounts % 2
	if o.PerAcct <= 0 {
		o.PerAcct = 20
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if o.Submitters <= 0 {
		o.Submitters = 64
	}
}

// Exchange runs the benchmark: a fresh single-validator chain whose
// genesis gives half the traders AITBC and the other half btc (a bank
// genesis section; nothing on a real chain is funded this way); each
// trader signs PerAcct orders of 1 AITBC, sellers priced at or below the
// reference and buyers at or above it, so every order crosses; they are
// submitted to the node's mempool and the chain clears them block by
// block. Orders cleared per second = orders filled (none left open, each
// fill a trade) / time from the first submission until the last order's
// block is committed.
func Exchange(ctx context.Context, o ExchangeOptions) (ExchangeResult, error) {
	o.defaults()
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	res := ExchangeResult{BlockTime: o.BlockTime, CPUCores: runtime.GOMAXPROCS(0)}
	home, err := os.MkdirTemp("", "aitbc-bench-exchange-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(home)
	const chainID = "aitbc-bench"
	keys := make([]ed25519.PrivateKey, o.Accounts)
	addrs := make([]address.Address, o.Accounts)
	spec := system.ChainSpec{ChainID: chainID}
	var g bank.GenesisState
	for i := range keys {
		keys[i] = testnet.BenchKey(i)
		addrs[i] = address.FromPubKey(keys[i].Public().(ed25519.PublicKey))
		spec.Accounts = append(spec.Accounts, system.GenesisAccount{Address: addrs[i], Balance: 100_000 * coin.Unit})
		if i%2 == 1 { // buyers
			g.Balances = append(g.Balances, bank.GenesisBalance{Address: addrs[i], Denom: chainex.QuoteDenom, Amount: 100_000_000})
		}
	}
	raw, err := json.Marshal(g)
	if err != nil {
		return res, err
	}
	spec.Modules = map[string]json.RawMessage{"bank": raw}
	if _, err := system.InitChain(home, spec); err != nil {
		return res, err
	}
	minFee := app.DefaultParams().MinFee

	say("signing %d orders from %d traders...", o.Accounts*o.PerAcct, o.Accounts)
	const ref = 1_000_000 // msat per AITBC
	raws := make([][]byte, o.Accounts*o.PerAcct)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(raws); i += runtime.GOMAXPROCS(0) {
				acct, nonce := i%o.Accounts, i/o.Accounts
				// Spread over 100 price steps of 0.01%, all crossing.
				step := uint64((acct*7 + nonce*13) % 100)
				side, price := chainex.Sell, ref-step*100
				if acct%2 == 1 {
					side, price = chainex.Buy, ref+step*100
				}
				t := &tx.Tx{ChainID: chainID, Nonce: uint64(nonce), Fee: minFee, Msg: chainex.NewPlaceMsg(side, false, price, uint64(coin.Unit), 0)}
				t.Sign(keys[acct])
				raws[i], _ = t.Encode()
			}
		}(w)
	}
	wg.Wait()
	res.Orders = len(raws)
	say("measuring ed25519 batch verification on %d cores...", runtime.GOMAXPROCS(0))
	res.VerifyRate = VerifyRate(raws, time.Second)

	p2p, err := freeAddr()
	if err != nil {
		return res, err
	}
	sys := system.New(nil)
	defer sys.Close()
	sn, err := sys.StartNode(ctx, system.NodeConfig{Home: home, BlockTime: o.BlockTime, P2PListen: p2p, DisablePEX: true})
	if err != nil {
		return res, err
	}
	n := sn.Chain()
	if err := n.WaitHeight(ctx, 2); err != nil {
		return res, err
	}
	startHeight, _ := n.App().Height()

	res.Offered = o.Rate
	say("submitting with %d goroutines (block time %s)...", o.Submitters, o.BlockTime)
	cpu0 := cpuSeconds()
	start := time.Now()
	var next, rejected atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < o.Submitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(raws) {
					return
				}
				if o.Rate > 0 {
					// Open loop: order i leaves at its scheduled time,
					// whatever happened to the ones before it.
					time.Sleep(time.Until(start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))))
				}
				for attempt := 0; ; attempt++ {
					_, err := n.Submit(ctx, raws[i])
					if err == nil {
						break
					}
					if attempt < 400 && (isGap(err) || isFull(err) || errorsIs(err, chainex.ErrBlockFull)) {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					rejected.Add(1)
					firstErr.CompareAndSwap(nil, err)
					break
				}
			}
		}()
	}
	wg.Wait()
	res.SubmitElapsed = time.Since(start)
	res.Rejected = int(rejected.Load())
	res.Admitted = float64(len(raws)-res.Rejected) / res.SubmitElapsed.Seconds()
	say("submitted in %s (%.0f orders/s into the mempool)", res.SubmitElapsed.Round(time.Millisecond), res.Admitted)
	if e := firstErr.Load(); e != nil {
		say("%d rejected; first: %v", rejected.Load(), e)
	}

	// Every trader's last nonce committed (or, when some were refused, the
	// mempool drained), then the book is empty: every order was cleared.
	deadline := time.After(10 * time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		all := true
		for _, a := range []address.Address{addrs[o.Accounts-1], addrs[o.Accounts-2]} {
			acc, err := n.Account(a)
			if err != nil {
				return res, err
			}
			all = all && (acc.Nonce >= uint64(o.PerAcct) || res.Rejected > 0)
		}
		if all && n.Comet().Mempool().Size() == 0 {
			err := n.App().Committed(func(q module.Query) error {
				var err error
				res.StillOpen, err = chainex.OpenOrderCount(q.State)
				return err
			})
			if err != nil {
				return res, err
			}
			done = res.StillOpen == 0
			if done {
				break
			}
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline:
			return res, fmt.Errorf("bench: orders not all cleared after 10 minutes (%d open)", res.StillOpen)
		case <-tick.C:
		}
	}
	res.Elapsed = time.Since(start)
	res.CPUSeconds = cpuSeconds() - cpu0
	endHeight, _ := n.App().Height()
	res.Blocks = endHeight - startHeight
	for h := startHeight + 1; h <= endHeight; h++ {
		if blk := n.Comet().BlockStore().LoadBlock(h); blk != nil {
			res.Committed += len(blk.Txs)
			res.MaxBlockTxs = max(res.MaxBlockTxs, len(blk.Txs))
		}
	}
	_ = n.App().Committed(func(q module.Query) error {
		var err error
		res.Trades, err = chainex.TradeCount(q.State)
		return err
	})
	res.OrdersPerSec = float64(res.Committed) / res.Elapsed.Seconds()
	if res.Committed > 0 {
		res.CPUPer1000 = 1000 * res.CPUSeconds / float64(res.Committed)
	}
	res.LoadAverage = saturate.LoadAverage()
	paced := "as fast as they go"
	if o.Rate > 0 {
		paced = fmt.Sprintf("paced to %.0f orders/s offered (open loop)", o.Rate)
	}
	res.Method = fmt.Sprintf("%d pre-signed exchange/place orders of 1 AITBC from %d traders (%d each; half sell AITBC at or below 0.00001 BTC, "+
		"half buy with genesis btc at or above it, so all cross), submitted in-process to the mempool of one validator by %d goroutines %s and "+
		"cleared by the per-block batch auction; orders cleared per second = orders in committed blocks / time from first submission until "+
		"the book is empty; block time %s; GOMAXPROCS %d", res.Orders, o.Accounts, o.PerAcct, o.Submitters, paced, o.BlockTime, res.CPUCores)
	return res, nil
}

// Package bench measures the system end to end. Transfers builds a fresh
// single-validator node (through internal/system, like every command) in a
// temporary home with many funded accounts, pre-signs transfers, submits
// them to the node's mempool and reports committed transactions per
// second; Jobs measures the coordinator on a temporary devnet. Used by
// `aitbc bench transfers|jobs` and by the Go benchmarks in this package.
package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/node"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
)

// TransferOptions configure a run.
type TransferOptions struct {
	Accounts   int           // funded sender accounts
	PerAcct    int           // transfers per account (consecutive nonces)
	BlockTime  time.Duration // CometBFT timeout_commit
	Submitters int           // goroutines submitting
	Rate       float64       // offered transfers per second (open loop); 0: as fast as the submitters go
	Home       string        // empty: a temporary directory, removed after
	Progress   io.Writer     // optional progress lines
}

// TransferResult is what a run measured.
type TransferResult struct {
	Txs       int           `json:"txs"`
	Committed int           `json:"committed"`
	Failed    int           `json:"failed"`
	Blocks    int64         `json:"blocks"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	TPS       float64       `json:"tps"`
	SubmitTPS float64       `json:"submit_tps"`
	// SubmitElapsed is how long submitting took (all admitted).
	SubmitElapsed time.Duration `json:"submit_elapsed_ns"`
	SignElapsed   time.Duration `json:"sign_elapsed_ns"`
	CPUSeconds    float64       `json:"cpu_seconds"`
	CPUCores      int           `json:"cpu_cores"`
	BlockTime     time.Duration `json:"block_time_ns"`
	MaxBlockTxs   int           `json:"max_block_txs"`
	Offered       float64       `json:"offered_tps,omitempty"` // the paced rate; 0: unpaced
	// VerifyRate is the ed25519 batch verification rate of these
	// transactions on this machine, measured in the same run just before
	// submission (VerifyRate): the limit of admission, and of the chain.
	VerifyRate float64 `json:"batch_verify_per_s"`
	// Recheck is what the rechecks after each block did during the run:
	// transactions whose checks ran again, and those whose verdict was
	// kept because nothing they read had changed.
	Recheck app.RecheckStats `json:"recheck"`
	Method  string           `json:"method"`
}

func (o *TransferOptions) defaults() {
	if o.Accounts <= 0 {
		o.Accounts = 2000
	}
	if o.PerAcct <= 0 {
		o.PerAcct = 25
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if o.Submitters <= 0 {
		// As many as concurrent API requests would be: the node checks
		// concurrent submissions' signatures in batches (node.sigCombiner).
		o.Submitters = 64
	}
}

func freeAddr() (string, error) {
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", p), nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// Transfers runs the benchmark.
func Transfers(ctx context.Context, o TransferOptions) (TransferResult, error) {
	o.defaults()
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	res := TransferResult{BlockTime: o.BlockTime, CPUCores: runtime.GOMAXPROCS(0), Offered: o.Rate}
	home := o.Home
	if home == "" {
		d, err := os.MkdirTemp("", "aitbc-bench-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		home = d
	}
	const chainID = "aitbc-bench"
	keys := make([]ed25519.PrivateKey, o.Accounts)
	spec := system.ChainSpec{ChainID: chainID}
	for i := range keys {
		keys[i] = testnet.BenchKey(i)
		spec.Accounts = append(spec.Accounts, system.GenesisAccount{Address: address.FromPubKey(keys[i].Public().(ed25519.PublicKey)), Balance: 1_000_000 * coin.Unit})
	}
	if _, err := system.InitChain(home, spec); err != nil {
		return res, err
	}
	minFee := app.DefaultParams().MinFee // InitChain's genesis has the default parameters

	say("signing %d transfers from %d accounts...", o.Accounts*o.PerAcct, o.Accounts)
	signStart := time.Now()
	// Round-robin order: nonce n of every account, then n+1, so the
	// mempool never holds a nonce before its predecessor.
	raws := make([][]byte, o.Accounts*o.PerAcct)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(raws); i += runtime.GOMAXPROCS(0) {
				acct, nonce := i%o.Accounts, i/o.Accounts
				to := address.FromPubKey(keys[(acct+1)%o.Accounts].Public().(ed25519.PublicKey))
				t := &tx.Tx{ChainID: chainID, Nonce: uint64(nonce), Fee: minFee, Msg: bank.NewSendMsg(to, coin.Unit)}
				t.Sign(keys[acct])
				raws[i], _ = t.Encode()
			}
		}(w)
	}
	wg.Wait()
	res.SignElapsed = time.Since(signStart)
	res.Txs = len(raws)
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
	// The benchmark measures the chain itself: it submits to the node's
	// mempool in-process and reads its block store, past the REST API.
	n := sn.Chain()
	if err := n.WaitHeight(ctx, 2); err != nil {
		return res, err
	}
	startHeight, _ := n.App().Height()
	rc0 := n.App().RecheckStats()

	say("submitting with %d goroutines (block time %s)...", o.Submitters, o.BlockTime)
	cpu0 := cpuSeconds()
	start := time.Now()
	var next, rejected atomic.Int64
	var firstErr atomic.Value
	// Submitters take transactions in order, so a sender's nonces arrive
	// nearly in order; a nonce that arrives early is retried.
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
					// Open loop: transfer i leaves at its scheduled time,
					// whatever happened to the ones before it.
					time.Sleep(time.Until(start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))))
				}
				for attempt := 0; ; attempt++ {
					_, err := n.Submit(ctx, raws[i])
					if err == nil {
						break
					}
					if attempt < 200 && (isGap(err) || isFull(err)) {
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
	submitted := time.Since(start)
	res.SubmitElapsed = submitted
	res.SubmitTPS = float64(len(raws)) / submitted.Seconds()
	say("submitted in %s (%.0f tx/s accepted into the mempool), %d rejected", submitted.Round(time.Millisecond), res.SubmitTPS, rejected.Load())
	if e := firstErr.Load(); e != nil {
		say("first rejection: %v", e)
	}

	// Wait until every sender's nonce reached PerAcct, i.e. all committed.
	lastKey := address.FromPubKey(keys[o.Accounts-1].Public().(ed25519.PublicKey))
	deadline := time.After(10 * time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		acc, err := n.Account(lastKey)
		if err != nil {
			return res, err
		}
		h, _ := n.App().Height()
		if acc.Nonce >= uint64(o.PerAcct) && n.Comet().Mempool().Size() == 0 {
			res.Blocks = h - startHeight
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-deadline:
			return res, fmt.Errorf("bench: not all transfers committed after 10 minutes")
		case <-tick.C:
		}
	}
	res.Elapsed = time.Since(start)
	res.CPUSeconds = cpuSeconds() - cpu0
	rc1 := n.App().RecheckStats()
	res.Recheck = app.RecheckStats{Executed: rc1.Executed - rc0.Executed, Kept: rc1.Kept - rc0.Kept}

	// Count what the blocks really hold.
	endHeight, _ := n.App().Height()
	for h := startHeight + 1; h <= endHeight; h++ {
		blk := n.Comet().BlockStore().LoadBlock(h)
		if blk == nil {
			continue
		}
		if len(blk.Txs) > res.MaxBlockTxs {
			res.MaxBlockTxs = len(blk.Txs)
		}
		res.Committed += len(blk.Txs)
	}
	res.Failed = res.Txs - res.Committed
	res.TPS = float64(res.Committed) / res.Elapsed.Seconds()
	paced := "as fast as they go"
	if o.Rate > 0 {
		paced = fmt.Sprintf("paced to %.0f tx/s offered (open loop)", o.Rate)
	}
	res.Method = fmt.Sprintf("%d pre-signed ed25519 transfers from %d genesis accounts (%d each, consecutive nonces), submitted in-process to the "+
		"mempool of one validator (CheckTx) by %d goroutines, %s; TPS = transactions in committed blocks / time from first submission until the last "+
		"is committed (app height); block time %s; GOMAXPROCS %d", res.Txs, o.Accounts, o.PerAcct, o.Submitters, paced, o.BlockTime, res.CPUCores)
	return res, nil
}

func isGap(err error) bool  { return errorsIs(err, tx.ErrNonceGap) }
func isFull(err error) bool { return errorsIs(err, node.ErrMempoolFull) }

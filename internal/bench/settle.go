package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
)

// SettleOptions configure the batched-settlement run.
type SettleOptions struct {
	Jobs         int           // paid jobs through create_for, assign and settle (20,000)
	Coordinators int           // coordinators sending batches in parallel (4)
	Miners       int           // registered miners signing receipts (8)
	Batch        int           // messages per jobs/batch (jobs.MaxBatch of the coordinator's writer, 150)
	BlockTime    time.Duration // CometBFT timeout_commit (1 s)
	Progress     io.Writer
}

func (o *SettleOptions) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = 20_000
	}
	if o.Coordinators <= 0 {
		o.Coordinators = 4
	}
	if o.Miners <= 0 {
		o.Miners = 8
	}
	if o.Batch <= 0 {
		o.Batch = 150
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
}

// SettleResult is what the run measured.
type SettleResult struct {
	Jobs          int           `json:"jobs"`
	Settled       int           `json:"settled"`
	Txs           int           `json:"txs"`
	Blocks        int64         `json:"blocks"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	JobsPerSecond float64       `json:"paid_jobs_per_second"`
	CPUSeconds    float64       `json:"cpu_seconds"`
	Method        string        `json:"method"`
}

// Settlements measures paid jobs per second on one validator with the
// coordinator's batches: every job is created from a deposit, assigned and
// settled against its miner's signed receipt, in jobs/batch transactions
// of o.Batch messages (the chain checks each batch's receipts as one batch
// of signatures). The transactions and receipts are signed before the
// clock starts, as a coordinator has its receipts from its miners; the
// figure is jobs settled on chain / time from the first submission until
// the last job is settled.
func Settlements(ctx context.Context, o SettleOptions) (SettleResult, error) {
	o.defaults()
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	res := SettleResult{Jobs: o.Jobs}
	home, err := os.MkdirTemp("", "aitbc-bench-settle-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(home)
	const chainID = "aitbc-bench-settle"
	key := func(i int) (ed25519.PrivateKey, address.Address) {
		k := testnet.BenchKey(i)
		return k, address.FromPubKey(k.Public().(ed25519.PublicKey))
	}
	// Keys: coordinators 0..C-1, their customers C..2C-1, miners 2C...
	C, M := o.Coordinators, o.Miners
	spec := system.ChainSpec{ChainID: chainID}
	for i := range 2*C + M {
		_, a := key(i)
		spec.Accounts = append(spec.Accounts, system.GenesisAccount{Address: a, Balance: 1_000_000 * coin.Unit})
	}
	if _, err := system.InitChain(home, spec); err != nil {
		return res, err
	}
	minFee := app.DefaultParams().MinFee
	sign := func(k ed25519.PrivateKey, nonce uint64, msg tx.Msg) []byte {
		t := &tx.Tx{ChainID: chainID, Nonce: nonce, Fee: minFee, Msg: msg}
		t.Sign(k)
		b, _ := t.Encode()
		return b
	}

	// Setup transactions: miners register, customers deposit.
	const pricePer1k = coin.Unit
	const tokens = 16
	const maxPrice = coin.Unit / 10
	var setup [][]byte
	for m := range M {
		k, _ := key(2*C + m)
		msg, err := miners.NewRegisterMsg(miners.Capabilities{Models: []string{"tolstoy-1m"}, GPU: "cpu", PricePer1k: pricePer1k}, 100*coin.Unit)
		if err != nil {
			return res, err
		}
		setup = append(setup, sign(k, 0, msg))
	}
	perCoord := (o.Jobs + C - 1) / C
	for c := range C {
		k, _ := key(C + c)
		_, coord := key(c)
		setup = append(setup, sign(k, 0, jobs.NewDepositMsg(coord, coin.Amount(perCoord+1)*maxPrice)))
	}

	say("signing %d jobs' create_for, assign and receipts in batches of %d...", o.Jobs, o.Batch)
	prompt := sha256.Sum256([]byte("Chapter"))
	result := sha256.Sum256([]byte("It was"))
	// batches[c] are coordinator c's transactions in nonce order: for each
	// group of o.Batch jobs, a batch of creates, one of assigns, one of
	// settlements.
	batches := make([][][]byte, C)
	var wg sync.WaitGroup
	for c := range C {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			ck, _ := key(c)
			_, cust := key(C + c)
			n := min(perCoord, o.Jobs-c*perCoord)
			var nonce uint64
			for start := 0; start < n; start += o.Batch {
				var creates, assigns, settles []tx.Msg
				for j := start; j < min(n, start+o.Batch); j++ {
					id := make([]byte, jobs.IDLen)
					binary.BigEndian.PutUint32(id, uint32(c))
					binary.BigEndian.PutUint32(id[4:], uint32(j))
					mk, ma := key(2*C + (c*perCoord+j)%M)
					creates = append(creates, jobs.NewCreateForMsg(jobs.Spec{ID: id, Model: "tolstoy-1m", PromptHash: prompt[:], MaxTokens: tokens,
						MaxPrice: maxPrice, TTLSeconds: 3600}, cust))
					assigns = append(assigns, jobs.NewAssignMsg(id, ma))
					r := jobs.Receipt{JobID: id, ChainID: chainID, Miner: ma[:], Customer: cust[:], Model: "tolstoy-1m", PromptHash: prompt[:],
						ResultHash: result[:], TokensIn: 2, TokensOut: tokens, StartMs: 1, EndMs: 2, Price: jobs.PriceFor(tokens, pricePer1k)}
					r.Sign(mk)
					settles = append(settles, jobs.NewSettleMsg(r))
				}
				for _, group := range [][]tx.Msg{creates, assigns, settles} {
					batches[c] = append(batches[c], sign(ck, nonce, jobs.NewBatchMsg(group)))
					nonce++
				}
			}
		}(c)
	}
	wg.Wait()
	for _, b := range batches {
		res.Txs += len(b)
	}

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
	for _, raw := range setup {
		if _, err := n.Submit(ctx, raw); err != nil {
			return res, fmt.Errorf("bench: setup transaction: %w", err)
		}
	}
	// Wait for the setup to commit: the last customer's nonce.
	_, lastCust := key(2*C - 1)
	if err := waitNonce(ctx, n.Account, lastCust, 1); err != nil {
		return res, err
	}
	for n.Comet().Mempool().Size() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if h, _ := n.App().Height(); n.WaitHeight(ctx, h+1) != nil {
		return res, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	startHeight, _ := n.App().Height()

	say("submitting %d batch transactions from %d coordinators (block time %s)...", res.Txs, C, o.BlockTime)
	cpu0 := cpuSeconds()
	start := time.Now()
	errc := make(chan error, C)
	for c := range C {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for _, raw := range batches[c] {
				for attempt := 0; ; attempt++ {
					_, err := n.Submit(ctx, raw)
					if err == nil {
						break
					}
					if attempt < 2000 && (isGap(err) || isFull(err)) {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					errc <- fmt.Errorf("bench: coordinator %d: %w", c, err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return res, err
	}
	for c := range C {
		_, a := key(c)
		if err := waitNonce(ctx, n.Account, a, uint64(len(batches[c]))); err != nil {
			return res, err
		}
	}
	// The account's nonce counts the mempool: wait for it to drain.
	for n.Comet().Mempool().Size() > 0 {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	res.Elapsed = time.Since(start)
	res.CPUSeconds = cpuSeconds() - cpu0
	h, _ := n.App().Height()
	res.Blocks = h - startHeight

	// Count the settled jobs on chain.
	q := jobs.NewKeeper(nil, nil)
	err = n.App().Committed(func(qs module.Query) error {
		for c := range C {
			for j := range min(perCoord, o.Jobs-c*perCoord) {
				id := make([]byte, jobs.IDLen)
				binary.BigEndian.PutUint32(id, uint32(c))
				binary.BigEndian.PutUint32(id[4:], uint32(j))
				jb, err := q.Get(qs.State, id)
				if err != nil {
					return err
				}
				if jb != nil && jb.Status == jobs.StatusSettled {
					res.Settled++
				} else if os.Getenv("AITBC_BENCH_DEBUG") != "" {
					st := "missing"
					if jb != nil {
						st = jobs.StatusName(jb.Status)
					}
					fmt.Fprintf(os.Stderr, "job c%d j%d: %s\n", c, j, st)
				}
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.JobsPerSecond = float64(res.Settled) / res.Elapsed.Seconds()
	res.Method = fmt.Sprintf("%d paid jobs (create_for from a deposit, assign, settle against a miner-signed receipt of %d tokens) from %d coordinators to %d miners, "+
		"in %d jobs/batch transactions of up to %d messages, pre-signed and submitted in-process to the mempool of one validator; "+
		"jobs/s = jobs settled on chain / time from the first submission until every coordinator's last batch is committed; block time %s; GOMAXPROCS %d",
		o.Jobs, tokens, C, M, res.Txs, o.Batch, o.BlockTime, runtime.GOMAXPROCS(0))
	say("  %d of %d jobs settled in %.2f s over %d blocks: %.0f paid jobs/s (%.1f CPU-seconds)", res.Settled, o.Jobs, res.Elapsed.Seconds(), res.Blocks, res.JobsPerSecond, res.CPUSeconds)
	return res, nil
}

// waitNonce waits until account a's committed nonce reaches want.
func waitNonce(ctx context.Context, account func(address.Address) (rpc.Account, error), a address.Address, want uint64) error {
	deadline := time.After(10 * time.Minute)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		acc, err := account(a)
		if err != nil {
			return err
		}
		if acc.Nonce >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("bench: %s's transactions not committed after 10 minutes", a)
		case <-tick.C:
		}
	}
}

package bench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/node"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
)

// MarketOptions configure a marketplace run.
type MarketOptions struct {
	Providers  int           // providers, one listing each
	Customers  int           // customers, one bid, accept and settlement each
	BlockTime  time.Duration // CometBFT timeout_commit
	Submitters int           // goroutines submitting
	Burst      int           // the seed's concurrent bids, timed on their own (100)
	Home       string        // empty: a temporary directory, removed after
	Progress   io.Writer
}

func (o *MarketOptions) defaults() {
	if o.Providers <= 0 {
		o.Providers = 50
	}
	if o.Customers <= 0 {
		o.Customers = 3000
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if o.Submitters <= 0 {
		o.Submitters = 4
	}
	if o.Burst <= 0 {
		o.Burst = 100
	}
}

// MarketPhase is one kind of transaction's measurement.
type MarketPhase struct {
	Kind      string        `json:"kind"` // bid, accept, settle, burst
	Txs       int           `json:"txs"`
	Committed int           `json:"committed"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	TPS       float64       `json:"tps"`
}

// MarketResult is what a run measured.
type MarketResult struct {
	Phases     []MarketPhase `json:"phases"`
	Committed  int           `json:"committed"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	TPS        float64       `json:"tps"` // bids, accepts and settlements together
	Burst      MarketPhase   `json:"burst"`
	CPUSeconds float64       `json:"cpu_seconds"`
	CPUCores   int           `json:"cpu_cores"`
	BlockTime  time.Duration `json:"block_time_ns"`
	Method     string        `json:"method"`
}

// Market measures committed marketplace transactions per second on one
// validator: Customers bids (a deposit each), their acceptance by the
// Providers (the payment locked) and a settle-payment each, every phase
// pre-signed and submitted to the node's mempool, timed from the first
// submission until the last is committed; then Burst customers bid at
// once, as seed 001's "100 concurrent bids".
func Market(ctx context.Context, o MarketOptions) (MarketResult, error) {
	o.defaults()
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	res := MarketResult{BlockTime: o.BlockTime, CPUCores: runtime.GOMAXPROCS(0)}
	home := o.Home
	if home == "" {
		d, err := os.MkdirTemp("", "aitbc-bench-market-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		home = d
	}
	const chainID = "aitbc-bench"
	n := o.Providers + o.Customers + o.Burst
	keys := make([]ed25519.PrivateKey, n)
	addrs := make([]address.Address, n)
	spec := system.ChainSpec{ChainID: chainID}
	for i := range keys {
		keys[i] = testnet.BenchKey(i)
		addrs[i] = address.FromPubKey(keys[i].Public().(ed25519.PublicKey))
		spec.Accounts = append(spec.Accounts, system.GenesisAccount{Address: addrs[i], Balance: 1_000_000 * coin.Unit})
	}
	if _, err := system.InitChain(home, spec); err != nil {
		return res, err
	}
	minFee := app.DefaultParams().MinFee
	nonces := make([]uint64, n)
	sign := func(i int, msg tx.Msg) []byte {
		t := &tx.Tx{ChainID: chainID, Nonce: nonces[i], Fee: minFee, Msg: msg}
		nonces[i]++
		t.Sign(keys[i])
		raw, _ := t.Encode()
		return raw
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
	nd := sn.Chain()
	if err := nd.WaitHeight(ctx, 2); err != nil {
		return res, err
	}
	before := map[string]int{}
	// run submits raws (signer[i] signs raws[i]) and waits until every
	// signer's committed nonce reaches want[signer].
	run := func(kind string, raws [][]byte, signers []int) (MarketPhase, error) {
		ph := MarketPhase{Kind: kind, Txs: len(raws)}
		start := time.Now()
		if err := submitAll(ctx, nd, raws, o.Submitters); err != nil {
			return ph, err
		}
		want := map[int]uint64{}
		for _, s := range signers {
			want[s] = nonces[s]
		}
		// Every signer's transaction is in (mempool view of nonces), and
		// the mempool is empty: CometBFT drops transactions from it after
		// their block is committed.
		deadline := time.Now().Add(10 * time.Minute)
		for {
			done := nd.Comet().Mempool().Size() == 0
			for s, w := range want {
				if !done {
					break
				}
				acc, err := nd.Account(addrs[s])
				if err != nil {
					return ph, err
				}
				done = acc.Nonce >= w
			}
			if done {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return ph, fmt.Errorf("bench: %s not committed in time", kind)
			}
			time.Sleep(5 * time.Millisecond)
		}
		ph.Elapsed = time.Since(start)
		// Count what succeeded, from committed state.
		var err error
		if ph.Committed, err = count(nd, kind); err != nil {
			return ph, err
		}
		ph.Committed -= before[kind]
		before[kind] += ph.Committed
		ph.TPS = float64(ph.Committed) / ph.Elapsed.Seconds()
		say("%-7s %6d txs committed in %6.2fs: %.0f tx/s", kind, ph.Committed, ph.Elapsed.Seconds(), ph.TPS)
		return ph, nil
	}
	prov := func(c int) int { return c % o.Providers }
	cust := func(c int) int { return o.Providers + c }

	// Listings (not timed).
	var raws [][]byte
	var signers []int
	for p := 0; p < o.Providers; p++ {
		raws = append(raws, sign(p, market.NewCreateMsg(market.ListingSpec{ID: fmt.Sprintf("bench-%d", p), Name: "bench", Type: market.TypeAIInference, Price: coin.Unit})))
		signers = append(signers, p)
	}
	if _, err := run("list", raws, signers); err != nil {
		return res, err
	}
	cpu0 := cpuSeconds()
	// Bids: 3 AITBC for 3 jobs each.
	raws, signers = nil, nil
	for c := 0; c < o.Customers; c++ {
		raws = append(raws, sign(cust(c), market.NewBidMsg(fmt.Sprintf("bench-%d", prov(c)), coin.Unit, 3, false)))
		signers = append(signers, cust(c))
	}
	ph, err := run("bid", raws, signers)
	if err != nil {
		return res, err
	}
	res.Phases = append(res.Phases, ph)
	bidOf, err := bidsByCustomer(nd)
	if err != nil {
		return res, err
	}
	// Accepts, by each bid's provider (consecutive nonces per provider).
	raws, signers = nil, nil
	for c := 0; c < o.Customers; c++ {
		id, ok := bidOf[addrs[cust(c)]]
		if !ok {
			return res, fmt.Errorf("bench: customer %d's bid not found", c)
		}
		raws = append(raws, sign(prov(c), market.NewAcceptMsg(id)))
		signers = append(signers, prov(c))
	}
	if ph, err = run("accept", raws, signers); err != nil {
		return res, err
	}
	res.Phases = append(res.Phases, ph)
	// Settlements: each customer pays 2 of its 3 AITBC.
	raws, signers = nil, nil
	for c := 0; c < o.Customers; c++ {
		raws = append(raws, sign(cust(c), market.NewSettleMsg(bidOf[addrs[cust(c)]], 2*coin.Unit)))
		signers = append(signers, cust(c))
	}
	if ph, err = run("settle", raws, signers); err != nil {
		return res, err
	}
	res.Phases = append(res.Phases, ph)
	res.CPUSeconds = cpuSeconds() - cpu0
	for _, p := range res.Phases {
		res.Committed += p.Committed
		res.Elapsed += p.Elapsed
	}
	res.TPS = float64(res.Committed) / res.Elapsed.Seconds()
	// The seed's burst: Burst new customers bid on one service at once.
	raws, signers = nil, nil
	for b := 0; b < o.Burst; b++ {
		i := o.Providers + o.Customers + b
		raws = append(raws, sign(i, market.NewBidMsg("bench-0", 2*coin.Unit, 1, false)))
		signers = append(signers, i)
	}
	before["burst"] = before["bid"]
	if res.Burst, err = run("burst", raws, signers); err != nil {
		return res, err
	}
	if au := nd.App().Audit(); !au.OK {
		return res, fmt.Errorf("bench: the chain's invariants fail after the run: %w", au.Err())
	}
	res.Method = fmt.Sprintf("one validator, block time %s, GOMAXPROCS %d; %d providers with one listing each; %d customers each bid (deposit held), "+
		"have the bid accepted by its provider (payment locked in market.escrow) and settle-payment; each phase pre-signed and submitted in-process "+
		"to the mempool by %d goroutines, timed from the first submission until all are admitted and the mempool is empty (their blocks committed); committed = the "+
		"records counted in committed state; TPS = the three phases' transactions / the sum of their times; burst = %d bids from new customers submitted at once",
		o.BlockTime, res.CPUCores, o.Providers, o.Customers, o.Submitters, o.Burst)
	return res, nil
}

// submitAll submits raws in order from several goroutines, retrying a
// nonce that arrives early or a full mempool.
func submitAll(ctx context.Context, nd *node.Node, raws [][]byte, workers int) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(raws) {
					return
				}
				for attempt := 0; ; attempt++ {
					_, err := nd.Submit(ctx, raws[i])
					if err == nil {
						break
					}
					if attempt < 400 && (isGap(err) || isFull(err)) {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					firstErr.CompareAndSwap(nil, err)
					break
				}
			}
		}()
	}
	wg.Wait()
	if e, _ := firstErr.Load().(error); e != nil {
		return fmt.Errorf("bench: a transaction was refused: %w", e)
	}
	return nil
}

// benchReq is a query without parameters.
type benchReq struct{}

func (benchReq) PathValue(string) string { return "" }
func (benchReq) Param(string) string     { return "" }

// query runs one of the market module's list routes on committed state.
func query(nd *node.Node, path string) (any, error) {
	a := nd.App()
	for _, m := range a.Modules() {
		k, ok := m.(*market.Keeper)
		if !ok {
			continue
		}
		for _, rt := range k.Routes() {
			if rt.Path != path {
				continue
			}
			var out any
			err := a.Committed(func(q module.Query) error {
				var err error
				out, err = rt.Handle(q, benchReq{})
				return err
			})
			return out, err
		}
	}
	return nil, errors.New("bench: the chain has no market route " + path)
}

// count counts the records a phase makes: listings, bids (burst too),
// agreements (accept), payouts (settle).
func count(nd *node.Node, kind string) (int, error) {
	path := map[string]string{"list": "/api/v1/market/services", "bid": "/api/v1/market/bids", "burst": "/api/v1/market/bids",
		"accept": "/api/v1/market/agreements", "settle": "/api/v1/market/payouts"}[kind]
	out, err := query(nd, path)
	if err != nil {
		return 0, err
	}
	switch x := out.(type) {
	case market.ServiceList:
		return len(x.Services), nil
	case market.BidList:
		return len(x.Bids), nil
	case market.AgreementList:
		return len(x.Agreements), nil
	case market.PayoutList:
		return len(x.Payouts), nil
	}
	return 0, fmt.Errorf("bench: unexpected %T", out)
}

// bidsByCustomer maps each customer to its bid.
func bidsByCustomer(nd *node.Node) (map[address.Address]string, error) {
	out, err := query(nd, "/api/v1/market/bids")
	if err != nil {
		return nil, err
	}
	m := map[address.Address]string{}
	for _, b := range out.(market.BidList).Bids {
		m[b.Customer] = b.ID
	}
	return m, nil
}

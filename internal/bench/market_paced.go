package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
)

// PacedOptions configure a paced marketplace run.
type PacedOptions struct {
	Duration  time.Duration // how long bids are offered
	Rate      int           // bids per second offered
	BlockTime time.Duration
}

// PacedResult is what a paced run measured.
type PacedResult struct {
	Offered    int           `json:"offered"`
	Committed  int           `json:"committed"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	TPS        float64       `json:"committed_tps"`
	LatencyP50 time.Duration `json:"latency_p50_ns"` // submission until its block is committed
	LatencyP95 time.Duration `json:"latency_p95_ns"`
	LatencyMax time.Duration `json:"latency_max_ns"`
	Method     string        `json:"method"`
}

// MarketPaced offers bids at a steady rate for a duration on a temporary
// single-validator chain (each from its own customer, on 10 listings) and
// measures how many were committed and how long each waited from its
// submission to the block that holds it.
func MarketPaced(ctx context.Context, o PacedOptions) (PacedResult, error) {
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	n := int(o.Duration.Seconds() * float64(o.Rate))
	res := PacedResult{Offered: n}
	if n <= 0 || n > 300_000 {
		return res, fmt.Errorf("bench: %d bids offered; 1-300000", n)
	}
	home, err := os.MkdirTemp("", "aitbc-bench-paced-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(home)
	const chainID, providers = "aitbc-bench", 10
	keys := make([]ed25519.PrivateKey, providers+n)
	spec := system.ChainSpec{ChainID: chainID}
	for i := range keys {
		keys[i] = testnet.BenchKey(i)
		spec.Accounts = append(spec.Accounts, system.GenesisAccount{Address: address.FromPubKey(keys[i].Public().(ed25519.PublicKey)), Balance: 1000 * coin.Unit})
	}
	if _, err := system.InitChain(home, spec); err != nil {
		return res, err
	}
	minFee := app.DefaultParams().MinFee
	sign := func(i int, msg tx.Msg) []byte {
		t := &tx.Tx{ChainID: chainID, Fee: minFee, Msg: msg} // each signer signs once: nonce 0
		t.Sign(keys[i])
		raw, _ := t.Encode()
		return raw
	}
	var lists [][]byte
	for p := 0; p < providers; p++ {
		lists = append(lists, sign(p, market.NewCreateMsg(market.ListingSpec{ID: fmt.Sprintf("paced-%d", p), Name: "paced", Type: market.TypeAIInference, Price: coin.Unit})))
	}
	bids := make([][]byte, n)
	for c := range bids {
		bids[c] = sign(providers+c, market.NewBidMsg(fmt.Sprintf("paced-%d", c%providers), 2*coin.Unit, 1, false))
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
	if err := submitAll(ctx, nd, lists, 1); err != nil {
		return res, err
	}
	for nd.Comet().Mempool().Size() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	start, _ := nd.App().Height()
	// When each height is first seen committed.
	var seenMu sync.Mutex
	seen := map[int64]time.Time{}
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for watch.Err() == nil {
			h, _ := nd.App().Height()
			seenMu.Lock()
			if _, ok := seen[h]; !ok {
				seen[h] = time.Now()
			}
			seenMu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	sent := map[string]time.Time{}
	t0 := time.Now()
	every := time.Second / time.Duration(o.Rate)
	for i, raw := range bids {
		if d := time.Until(t0.Add(time.Duration(i) * every)); d > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(d):
			}
		}
		h := sha256.Sum256(raw)
		sent[hex.EncodeToString(h[:])] = time.Now()
		if _, err := nd.Submit(ctx, raw); err != nil {
			return res, fmt.Errorf("bench: bid %d refused: %w", i, err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for nd.Comet().Mempool().Size() > 0 {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("bench: bids still waiting after 5 minutes")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.Elapsed = time.Since(t0)
	time.Sleep(10 * time.Millisecond) // the watcher sees the last height
	stopWatch()
	end, _ := nd.App().Height()
	seenMu.Lock()
	defer seenMu.Unlock()
	var lat []time.Duration
	for h := start + 1; h <= end; h++ {
		blk := nd.Comet().BlockStore().LoadBlock(h)
		if blk == nil {
			continue
		}
		for _, x := range blk.Txs {
			hh := sha256.Sum256(x)
			at, ok := sent[hex.EncodeToString(hh[:])]
			if c, seenOK := seen[h]; ok && seenOK {
				lat = append(lat, c.Sub(at))
			}
		}
	}
	c, err := count(nd, "bid")
	if err != nil {
		return res, err
	}
	res.Committed = c
	res.TPS = float64(c) / res.Elapsed.Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		res.LatencyP50, res.LatencyP95, res.LatencyMax = lat[len(lat)/2], lat[len(lat)*95/100], lat[len(lat)-1]
	}
	res.Method = fmt.Sprintf("temporary single-validator chain, block time %s: %d bids offered at %d/s for %s, each from its own customer, "+
		"submitted in-process; committed = bids in committed state; latency = from a bid's submission until the app commits its block (polled every 2 ms)",
		o.BlockTime, n, o.Rate, o.Duration)
	return res, nil
}

package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/node"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
)

// The kinds of operation in the mix, in report order.
const (
	MixTransfer  = "transfer"  // bank/send
	MixBid       = "bid"       // market/bid on a listing
	MixJobs      = "jobs"      // jobs/batch: create_for, assign or settle of MixJobBatch jobs
	MixOrder     = "order"     // exchange/place, crossing
	MixHeartbeat = "heartbeat" // agents/heartbeat
)

// MixKinds lists the kinds in report order.
var MixKinds = []string{MixTransfer, MixBid, MixJobs, MixOrder, MixHeartbeat}

// MixJobBatch is the jobs per jobs/batch transaction in the mix: a
// coordinator's batches are creates, then assigns, then settlements of
// the same jobs.
const MixJobBatch = 10

// Bounds on a run, so that a typo does not sign millions of transactions.
const (
	MaxMixTxs      = 2_000_000
	MaxMixAccounts = 10_000
)

// ErrBadMixOptions is a mix option out of its bounds.
var ErrBadMixOptions = errors.New("bench: bad mix options")

// MixOptions configure `aitbc bench chain --mix`.
type MixOptions struct {
	Duration   time.Duration  // how long load is offered (10 s)
	Rate       float64        // offered transactions per second, all kinds (2000)
	Weights    map[string]int // relative share of each kind (default 60/10/10/10/10)
	Accounts   int            // signing accounts per kind (200); jobs use 4 coordinators
	BlockTime  time.Duration  // 1 s
	Submitters int            // 64
	Progress   io.Writer
}

// MixKind is one kind's figures.
type MixKind struct {
	Kind         string         `json:"kind"`
	Offered      int            `json:"offered"`
	Committed    int            `json:"committed"`
	Refused      int            `json:"refused"`                 // at admission or failed in a block
	RefusedCodes map[string]int `json:"refused_codes,omitempty"` // by error code name
	OfferedPerS  float64        `json:"offered_per_s"`
	CommittedPS  float64        `json:"committed_per_s"`
}

// MixResult is what a run measured.
type MixResult struct {
	Kinds      []MixKind     `json:"kinds"`
	Total      MixKind       `json:"total"`
	Elapsed    time.Duration `json:"elapsed_ns"` // first submission until the last commit
	Blocks     int64         `json:"blocks"`
	VerifyRate float64       `json:"batch_verify_per_s"`
	AuditOK    bool          `json:"audit_ok"`
	CPUSeconds float64       `json:"cpu_seconds"`
	CPUCores   int           `json:"cpu_cores"`
	BlockTime  time.Duration `json:"block_time_ns"`
	Method     string        `json:"method"`
}

// DefaultMixWeights are the proportions of a run without --weights.
func DefaultMixWeights() map[string]int {
	return map[string]int{MixTransfer: 60, MixBid: 10, MixJobs: 10, MixOrder: 10, MixHeartbeat: 10}
}

func (o *MixOptions) check() error {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Rate <= 0 {
		o.Rate = 2000
	}
	if o.Weights == nil {
		o.Weights = DefaultMixWeights()
	}
	if o.Accounts <= 0 {
		o.Accounts = 200
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if o.Submitters <= 0 {
		o.Submitters = 64
	}
	sum := 0
	for k, w := range o.Weights {
		if !isMixKind(k) || w < 0 {
			return fmt.Errorf("%w: weight %s=%d (kinds: transfer, bid, jobs, order, heartbeat; weights >= 0)", ErrBadMixOptions, k, w)
		}
		sum += w
	}
	if sum == 0 {
		return fmt.Errorf("%w: every weight is 0", ErrBadMixOptions)
	}
	if n := o.Rate * o.Duration.Seconds(); n > MaxMixTxs {
		return fmt.Errorf("%w: %.0f transactions (rate x duration) is over %d", ErrBadMixOptions, n, MaxMixTxs)
	}
	if o.Accounts > MaxMixAccounts {
		return fmt.Errorf("%w: %d accounts per kind is over %d", ErrBadMixOptions, o.Accounts, MaxMixAccounts)
	}
	return nil
}

func isMixKind(k string) bool {
	for _, m := range MixKinds {
		if m == k {
			return true
		}
	}
	return false
}

// mixSchedule spreads n slots over the kinds in proportion to weights,
// interleaved (smooth weighted round robin), so every second of the run
// offers the same mix.
func mixSchedule(n int, weights map[string]int) []string {
	sum := 0
	for _, k := range MixKinds {
		sum += weights[k]
	}
	cur := map[string]int{}
	out := make([]string, n)
	for i := range out {
		best := ""
		for _, k := range MixKinds {
			if weights[k] == 0 {
				continue
			}
			cur[k] += weights[k]
			if best == "" || cur[k] > cur[best] {
				best = k
			}
		}
		cur[best] -= sum
		out[i] = best
	}
	return out
}

type mixTx struct {
	kind string
	raw  []byte
	hash string
}

// Mix runs the mixed load: a fresh single-validator chain whose genesis
// funds every signer; a setup phase (not timed) registers listings,
// miners, agents and coordinator deposits; then Rate x Duration
// pre-signed transactions of the kinds in Weights are offered open loop at
// Rate, and each one's fate is read back from the node: committed, failed
// in its block, or refused at admission, with the error code.
func Mix(ctx context.Context, o MixOptions) (MixResult, error) {
	if err := o.check(); err != nil {
		return MixResult{}, err
	}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	res := MixResult{BlockTime: o.BlockTime, CPUCores: runtime.GOMAXPROCS(0)}
	home, err := os.MkdirTemp("", "aitbc-bench-mix-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(home)
	const chainID = "aitbc-bench-mix"
	const coords, nMiners = 4, 4
	A := o.Accounts
	// Key ranges: each kind's signers, then providers, coordinators, their
	// customers and miners.
	base := map[string]int{MixTransfer: 0, MixBid: A, MixOrder: 2 * A, MixHeartbeat: 3 * A}
	prov0, coord0, cust0, miner0 := 4*A, 4*A+1, 4*A+1+coords, 4*A+1+2*coords
	total := miner0 + nMiners
	keys := make([]ed25519.PrivateKey, total)
	addrs := make([]address.Address, total)
	spec := system.ChainSpec{ChainID: chainID}
	var g bank.GenesisState
	var genesisBTC uint64
	for i := range keys {
		keys[i] = testnet.BenchKey(i)
		addrs[i] = address.FromPubKey(keys[i].Public().(ed25519.PublicKey))
		spec.Accounts = append(spec.Accounts, system.GenesisAccount{Address: addrs[i], Balance: 1_000_000 * coin.Unit})
		if i >= base[MixOrder] && i < base[MixOrder]+A && i%2 == 1 { // the buying half of the traders
			g.Balances = append(g.Balances, bank.GenesisBalance{Address: addrs[i], Denom: chainex.QuoteDenom, Amount: 1_000_000_000})
			genesisBTC += 1_000_000_000
		}
	}
	gb, err := json.Marshal(g)
	if err != nil {
		return res, err
	}
	spec.Modules = map[string]json.RawMessage{"bank": gb}
	if _, err := system.InitChain(home, spec); err != nil {
		return res, err
	}
	minFee := app.DefaultParams().MinFee
	nonces := make([]uint64, total)
	sign := func(i int, msg tx.Msg) []byte {
		t := &tx.Tx{ChainID: chainID, Nonce: nonces[i], Fee: minFee, Msg: msg}
		nonces[i]++
		t.Sign(keys[i])
		raw, _ := t.Encode()
		return raw
	}

	// The schedule, and how many job batches each coordinator sends.
	n := int(o.Rate * o.Duration.Seconds())
	sched := mixSchedule(n, o.Weights)
	jobBatches := seqCount(sched, MixJobs)
	const pricePer1k = coin.Unit
	const tokens = 16
	const maxPrice = coin.Unit / 10
	jobsPerCoord := (jobBatches/coords/3 + 1) * MixJobBatch

	// Setup: a listing, miners, agents, the coordinators' deposits.
	var setup [][]byte
	// Listings enough that no service reaches its limit of open bids
	// (bids stay open: the mix does not accept them).
	listings := seqCount(sched, MixBid)/max(1, int(market.DefaultParams().MaxOpenBids)/2) + 1
	for l := range listings {
		setup = append(setup, sign(prov0, market.NewCreateMsg(market.ListingSpec{ID: fmt.Sprintf("mix-%d", l), Name: "mix", Type: market.TypeAIInference, Price: coin.Unit})))
	}
	for m := range nMiners {
		msg, err := miners.NewRegisterMsg(miners.Capabilities{Models: []string{"tolstoy-1m"}, GPU: "cpu", PricePer1k: pricePer1k}, 100*coin.Unit)
		if err != nil {
			return res, err
		}
		setup = append(setup, sign(miner0+m, msg))
	}
	modelHash := fmt.Sprintf("%x", sha256.Sum256([]byte("mix")))
	for a := range A {
		setup = append(setup, sign(base[MixHeartbeat]+a, agents.NewRegisterMsg(fmt.Sprintf("mix-%d", a), modelHash, []string{"inference"}, nil)))
	}
	for c := range coords {
		setup = append(setup, sign(cust0+c, jobs.NewDepositMsg(addrs[coord0+c], coin.Amount(jobsPerCoord+1)*maxPrice)))
	}

	say("signing %d transactions (%s)...", n, weightsString(o.Weights))
	prompt := sha256.Sum256([]byte("Chapter"))
	result := sha256.Sum256([]byte("It was"))
	// Each coordinator's batches cycle create, assign, settle over its
	// next MixJobBatch jobs.
	type coordState struct{ step, next int }
	cs := make([]coordState, coords)
	jobID := func(c, j int) []byte {
		id := make([]byte, jobs.IDLen)
		binary.BigEndian.PutUint32(id, uint32(c))
		binary.BigEndian.PutUint32(id[4:], uint32(j))
		return id
	}
	jobsBatch := func(c int) tx.Msg {
		st := &cs[c]
		var msgs []tx.Msg
		for j := st.next; j < st.next+MixJobBatch; j++ {
			id := jobID(c, j)
			mi := miner0 + j%nMiners
			switch st.step {
			case 0:
				msgs = append(msgs, jobs.NewCreateForMsg(jobs.Spec{ID: id, Model: "tolstoy-1m", PromptHash: prompt[:], MaxTokens: tokens,
					MaxPrice: maxPrice, TTLSeconds: 3600}, addrs[cust0+c]))
			case 1:
				msgs = append(msgs, jobs.NewAssignMsg(id, addrs[mi]))
			default:
				r := jobs.Receipt{JobID: id, ChainID: chainID, Miner: addrs[mi][:], Customer: addrs[cust0+c][:], Model: "tolstoy-1m", PromptHash: prompt[:],
					ResultHash: result[:], TokensIn: 2, TokensOut: tokens, StartMs: 1, EndMs: 2, Price: jobs.PriceFor(tokens, pricePer1k)}
				r.Sign(keys[mi])
				msgs = append(msgs, jobs.NewSettleMsg(r))
			}
		}
		if st.step++; st.step == 3 {
			st.step, st.next = 0, st.next+MixJobBatch
		}
		return jobs.NewBatchMsg(msgs)
	}
	const ref = 1_000_000 // msat per AITBC
	seq := map[string]int{}
	txs := make([]mixTx, n)
	for i, k := range sched {
		s := seq[k]
		seq[k]++
		var raw []byte
		switch k {
		case MixTransfer:
			a := s % A
			raw = sign(base[k]+a, bank.NewSendMsg(addrs[base[k]+(a+1)%A], coin.Unit))
		case MixBid:
			raw = sign(base[k]+s%A, market.NewBidMsg(fmt.Sprintf("mix-%d", s%listings), coin.Unit, 1, false))
		case MixOrder:
			// Sellers and buyers alternate, priced to cross.
			a := s % A
			step := uint64(s % 100)
			side, price := chainex.Sell, ref-step*100
			if a%2 == 1 {
				side, price = chainex.Buy, ref+step*100
			}
			raw = sign(base[k]+a, chainex.NewPlaceMsg(side, false, price, uint64(coin.Unit), 0))
		case MixHeartbeat:
			raw = sign(base[k]+s%A, agents.NewHeartbeatMsg())
		case MixJobs:
			c := s % coords
			raw = sign(coord0+c, jobsBatch(c))
		}
		txs[i] = mixTx{kind: k, raw: raw, hash: tx.HashString(tx.Hash(raw))}
	}
	raws := make([][]byte, n)
	for i := range txs {
		raws[i] = txs[i].raw
	}
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
	nd := sn.Chain()
	if err := nd.WaitHeight(ctx, 2); err != nil {
		return res, err
	}
	if err := submitAll(ctx, nd, setup, 4); err != nil {
		return res, fmt.Errorf("bench: setup: %w", err)
	}
	if err := waitDrained(ctx, nd); err != nil {
		return res, err
	}
	for _, raw := range setup {
		if r, err := nd.Tx(tx.HashString(tx.Hash(raw))); err != nil || r.Status != "committed" {
			return res, fmt.Errorf("bench: a setup transaction did not commit: %s %v", r.Error, err)
		}
	}
	startHeight, _ := nd.App().Height()

	say("offering %.0f tx/s for %s with %d goroutines (block time %s)...", o.Rate, o.Duration, o.Submitters, o.BlockTime)
	cpu0 := cpuSeconds()
	start := time.Now()
	refusedAt := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.Submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				// Open loop: transaction i leaves at its scheduled time.
				time.Sleep(time.Until(start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))))
				for attempt := 0; ; attempt++ {
					_, err := nd.Submit(ctx, txs[i].raw)
					if err == nil {
						break
					}
					// A nonce that overtook its predecessor, or a full
					// mempool or exchange block, is retried as a client would.
					if attempt < 200 && (isGap(err) || isFull(err) || errors.Is(err, chainex.ErrBlockFull)) {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					refusedAt[i] = err
					break
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := waitDrained(ctx, nd); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	res.CPUSeconds = cpuSeconds() - cpu0
	h, _ := nd.App().Height()
	res.Blocks = h - startHeight

	// Every result, one block at a time (looking each transaction up by
	// hash would load its whole block once per transaction).
	inBlocks := map[string]rpc.Transaction{}
	for height := startHeight + 1; height <= h; height++ {
		bt, err := nd.BlockTransactions(height, 0, math.MaxInt32)
		if err != nil {
			return res, err
		}
		for _, t := range bt.Transactions {
			inBlocks[t.Hash] = t
		}
	}
	byKind := map[string]*MixKind{}
	for _, k := range MixKinds {
		byKind[k] = &MixKind{Kind: k, RefusedCodes: map[string]int{}}
	}
	for i, t := range txs {
		m := byKind[t.kind]
		m.Offered++
		if err := refusedAt[i]; err != nil {
			m.Refused++
			m.RefusedCodes[codeName(err)]++
			continue
		}
		r, ok := inBlocks[t.hash]
		switch {
		case !ok:
			m.Refused++
			m.RefusedCodes["not_in_a_block"]++
		case r.Status == "committed":
			m.Committed++
		default: // failed in its block, or still pending
			m.Refused++
			name := r.Status
			if e := errs.Lookup(r.Codespace, r.Code); e != nil {
				name = e.Name
			}
			m.RefusedCodes[name]++
		}
	}
	res.Total = MixKind{Kind: "total", RefusedCodes: map[string]int{}}
	for _, k := range MixKinds {
		m := byKind[k]
		if m.Offered == 0 {
			continue
		}
		m.OfferedPerS = float64(m.Offered) / o.Duration.Seconds()
		m.CommittedPS = float64(m.Committed) / res.Elapsed.Seconds()
		res.Total.Offered += m.Offered
		res.Total.Committed += m.Committed
		res.Total.Refused += m.Refused
		for c, v := range m.RefusedCodes {
			res.Total.RefusedCodes[c] += v
		}
		res.Kinds = append(res.Kinds, *m)
	}
	res.Total.OfferedPerS = float64(res.Total.Offered) / o.Duration.Seconds()
	res.Total.CommittedPS = float64(res.Total.Committed) / res.Elapsed.Seconds()
	au := nd.App().Audit()
	auditErr := mixAudit(au, genesisBTC)
	res.AuditOK = auditErr == nil
	res.Method = fmt.Sprintf("one validator, block time %s, GOMAXPROCS %d; %d pre-signed transactions (%s) from %d genesis-funded accounts per kind "+
		"(jobs: %d coordinators, jobs/batch of %d create_for, assign or settle against miner-signed receipts), interleaved in proportion and "+
		"offered open loop at %.0f tx/s for %s to the node's mempool in-process by %d goroutines (a nonce gap or full mempool retried up to 200 "+
		"times every 5 ms); after setup (listing, miners, agents, deposits; not timed); offered/s = offered / duration; committed/s = transactions "+
		"committed with code 0 / time from the first submission until the mempool is empty; refused = refused at admission or failed in a block, by code",
		o.BlockTime, res.CPUCores, n, weightsString(o.Weights), A, coords, MixJobBatch, o.Rate, o.Duration, o.Submitters)
	if auditErr != nil {
		return res, fmt.Errorf("bench: the chain's invariants fail after the mix: %w", auditErr)
	}
	return res, nil
}

// mixAudit checks the chain's audit after a run. The traders' btc comes
// from the bank genesis section, not from bridge deposits (nothing on a
// real chain is funded this way), so bridge/supply finds a supply the
// bridge did not mint: that one invariant must instead show the genesis
// btc exactly, nothing minted or withdrawn — btc conserved through every
// trade. Every other invariant must hold.
func mixAudit(au module.Audit, genesisBTC uint64) error {
	for _, inv := range au.Invariants {
		if inv.OK {
			continue
		}
		if inv.Name == "bridge/supply" && inv.Figures["supply_sat"] == strconv.FormatUint(genesisBTC, 10) &&
			inv.Figures["minted_sat"] == "0" && inv.Figures["withdrawn_sat"] == "0" {
			continue
		}
		return fmt.Errorf("%w at height %d: %s: %s", module.ErrInvariant, au.Height, inv.Name, inv.Detail)
	}
	return nil
}

// waitDrained waits until the mempool is empty and one more block is
// committed after that, so every admitted transaction has its result.
func waitDrained(ctx context.Context, nd *node.Node) error {
	deadline := time.Now().Add(10 * time.Minute)
	for nd.Comet().Mempool().Size() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: the mempool did not drain in 10 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	h, _ := nd.App().Height()
	return nd.WaitHeight(ctx, h+1)
}

// seqCount counts kind's slots in sched.
func seqCount(sched []string, kind string) int {
	n := 0
	for _, k := range sched {
		if k == kind {
			n++
		}
	}
	return n
}

func weightsString(w map[string]int) string {
	var parts []string
	for _, k := range MixKinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, w[k]))
	}
	return strings.Join(parts, ", ")
}

// codeName is the registered code name of an admission error, or what it
// is when it is not a chain error.
func codeName(err error) string {
	var e *errs.Error
	switch {
	case errors.As(err, &e):
		return e.Name
	case isFull(err):
		return "mempool_full"
	}
	return "other"
}

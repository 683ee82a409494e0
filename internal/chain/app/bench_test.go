package app_test

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// BenchmarkBlockOfTransfers measures one validator's application work per
// transfer, without CometBFT: each block's transfers are admitted by
// CheckTx (signatures checked beforehand in batches, as the REST API and
// the gossip path do), proposed, executed and committed, while as many
// again wait in the mempool and are rechecked after the block.
//
//	go test -run '^$' -bench BlockOfTransfers -benchmem ./internal/chain/app
func BenchmarkBlockOfTransfers(b *testing.B) { benchmarkBlockOfTransfers(b) }

// BenchmarkBlockOfTransfersFullRecheck is the same with every recheck
// running the checks again (app.WithFullRecheck), the reference for what
// keeping verdicts saves.
func BenchmarkBlockOfTransfersFullRecheck(b *testing.B) {
	benchmarkBlockOfTransfers(b, app.WithFullRecheck())
}

// BenchmarkCheckTxOfTransfers is admission alone: CheckTx of transfers
// whose signatures were checked beforehand, 2,000 per round, no block.
// Under callgrind the instruction count of a run is repeatable whatever
// the machine's load; the difference between this benchmark and
// BenchmarkCheckTxOfTransfersNone (the same run without the CheckTx
// calls) is what the CheckTx calls cost:
//
//	go test -c -o /tmp/app.test ./internal/chain/app
//	GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//	  /tmp/app.test -test.run '^$' -test.bench 'CheckTxOfTransfers$' -test.benchtime 3x
func BenchmarkCheckTxOfTransfers(b *testing.B) { benchmarkCheckTxOfTransfers(b, true) }

// BenchmarkCheckTxOfTransfersFullRecheck is the same without the recheck
// bookkeeping (app.WithFullRecheck): what recording a check's keys costs
// admission.
func BenchmarkCheckTxOfTransfersFullRecheck(b *testing.B) {
	benchmarkCheckTxOfTransfers(b, true, app.WithFullRecheck())
}

// BenchmarkCheckTxOfTransfersNone does everything the two above do but
// the CheckTx calls: with callgrind, the instruction count to subtract
// from theirs (whole-program counts: callgrind's per-function inclusive
// counts are unreliable for Go, whose goroutine stacks move).
func BenchmarkCheckTxOfTransfersNone(b *testing.B) {
	benchmarkCheckTxOfTransfers(b, false)
}

func benchmarkCheckTxOfTransfers(b *testing.B, check bool, opts ...app.Option) {
	ctx := context.Background()
	a, round, _ := newBenchApp(b, opts...)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		raws := round(uint64(i))
		a.PreVerifyBatch(raws)
		b.StartTimer()
		if !check {
			continue
		}
		for _, raw := range raws {
			r, err := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw})
			if err != nil || r.Code != abci.CodeTypeOK {
				b.Fatalf("CheckTx: %v %s", err, r.Log)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchAccounts), "ns/CheckTx")
}

const benchAccounts = 2000

// newBenchApp is an app with benchAccounts funded accounts at genesis, and
// round(n), which signs one transfer with nonce n from each of them, and
// the first account's address (a proposer).
func newBenchApp(b *testing.B, opts ...app.Option) (*app.App, func(nonce uint64) [][]byte, address.Address) {
	const accounts = benchAccounts
	ctx := context.Background()
	st, err := state.OpenInMemory()
	if err != nil {
		b.Fatal(err)
	}
	a, err := app.New(st, chainID, nil, opts...)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]ed25519.PrivateKey, accounts)
	addrs := make([]address.Address, accounts)
	g := app.Genesis{Params: app.DefaultParams()}
	for i := range keys {
		seed := make([]byte, 32)
		binary.BigEndian.PutUint64(seed, uint64(i)+1)
		keys[i] = ed25519.NewKeyFromSeed(seed)
		addrs[i] = address.FromPubKey(keys[i].Public().(ed25519.PublicKey))
		g.Accounts = append(g.Accounts, app.GenesisAccount{Address: addrs[i], Balance: 1_000_000 * coin.Unit})
	}
	gb, _ := json.Marshal(g)
	if _, err := a.InitChain(ctx, &abci.RequestInitChain{ChainId: chainID, AppStateBytes: gb}); err != nil {
		b.Fatal(err)
	}
	round := func(nonce uint64) [][]byte {
		out := make([][]byte, accounts)
		for i := range out {
			x := &tx.Tx{ChainID: chainID, Nonce: nonce, Fee: g.Params.MinFee, Msg: bank.NewSendMsg(addrs[(i+1)%accounts], coin.Unit)}
			x.Sign(keys[i])
			out[i], _ = x.Encode()
		}
		return out
	}
	b.Cleanup(func() { st.Close() })
	return a, round, addrs[0]
}

func benchmarkBlockOfTransfers(b *testing.B, opts ...app.Option) {
	const accounts = benchAccounts
	ctx := context.Background()
	a, round, proposer := newBenchApp(b, opts...)
	check := func(raws [][]byte, typ abci.CheckTxType) {
		for _, raw := range raws {
			r, err := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw, Type: typ})
			if err != nil || r.Code != abci.CodeTypeOK {
				b.Fatalf("CheckTx: %v %s", err, r.Log)
			}
		}
	}
	height := int64(0)
	next := round(0)
	a.PreVerifyBatch(next)
	check(next, abci.CheckTxType_New)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		waiting := round(uint64(i + 1))
		b.StartTimer()
		a.PreVerifyBatch(waiting)
		check(waiting, abci.CheckTxType_New)
		p, err := a.PrepareProposal(ctx, &abci.RequestPrepareProposal{Txs: next, MaxTxBytes: 1 << 30})
		if err != nil || len(p.Txs) != accounts {
			b.Fatalf("proposal: %d txs, %v", len(p.Txs), err)
		}
		height++
		res, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: height, Time: time.Unix(1_700_000_000+height, 0), Txs: p.Txs, ProposerAddress: proposer[:]})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res.TxResults {
			if r.Code != abci.CodeTypeOK {
				b.Fatalf("transfer failed in block: %s", r.Log)
			}
		}
		if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
			b.Fatal(err)
		}
		check(waiting, abci.CheckTxType_Recheck)
		next = waiting
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*accounts), "µs/transfer")
	rs := a.RecheckStats()
	b.ReportMetric(float64(rs.Kept)/float64(rs.Kept+rs.Executed), "kept/recheck")
}

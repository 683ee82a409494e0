package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
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

// TestConcurrentSubmissionsAreCheckedInOneBatch: submissions that arrive
// while a batch is being checked are checked together in the next one, by
// one of them, and each caller gets its own verdict.
func TestConcurrentSubmissionsAreCheckedInOneBatch(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	first := true
	c := newSigCombiner(func(raws [][]byte) []error {
		mu.Lock()
		sizes = append(sizes, len(raws))
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-release // hold the first batch until the others have queued
		}
		errs := make([]error, len(raws))
		for i, r := range raws {
			if r[0]%2 == 1 {
				errs[i] = fmt.Errorf("odd %d", r[0])
			}
		}
		return errs
	})
	const others = 20
	verdicts := make([]error, others+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); verdicts[0] = c.check([]byte{100}) }()
	waitPending := func(n int) {
		for {
			c.mu.Lock()
			busy, got := c.busy, len(c.pending)
			c.mu.Unlock()
			if busy && got == n {
				return
			}
			runtime.Gosched()
		}
	}
	waitPending(0) // the first caller is checking its batch
	for i := 1; i <= others; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); verdicts[i] = c.check([]byte{byte(i)}) }()
	}
	waitPending(others)
	close(release)
	wg.Wait()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != others {
		t.Fatalf("batch sizes %v, want [1 %d]", sizes, others)
	}
	for i, err := range verdicts {
		b := byte(i)
		if i == 0 {
			b = 100
		}
		if (err != nil) != (b%2 == 1) {
			t.Fatalf("caller %d got verdict %v", i, err)
		}
	}
	if c.busy || len(c.pending) != 0 {
		t.Fatalf("combiner left busy=%v with %d pending", c.busy, len(c.pending))
	}
}

// TestCombinedBatchesAreBoundedAndEveryCallerAnswered: a burst larger than
// a batch is split, every caller returns, and no batch exceeds max.
func TestCombinedBatchesAreBoundedAndEveryCallerAnswered(t *testing.T) {
	var mu sync.Mutex
	largest := 0
	c := newSigCombiner(func(raws [][]byte) []error {
		mu.Lock()
		largest = max(largest, len(raws))
		mu.Unlock()
		return make([]error, len(raws))
	})
	c.max = 8
	var wg sync.WaitGroup
	var failed sync.Map
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.check([]byte{byte(i)}); err != nil {
				failed.Store(i, err)
			}
		}()
	}
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Fatalf("caller %v: %v", k, v); return false })
	if largest > 8 {
		t.Fatalf("a batch of %d, max 8", largest)
	}
}

// TestOneBadSignatureRefusesOnlyItself: concurrent submissions through the
// real application, one of every seven forged: the forged ones are refused
// with ErrBadSignature and every good one is accepted, however the batches
// formed.
func TestOneBadSignatureRefusesOnlyItself(t *testing.T) {
	const chain = "aitbc-combine-test"
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := app.New(st, chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := app.Genesis{Params: app.DefaultParams()}
	gb, _ := json.Marshal(g)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chain, AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	c := newSigCombiner(func(raws [][]byte) []error { return preVerifyParallel(a, raws) })
	const n = 300
	raws := make([][]byte, n)
	for i := range raws {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i % 40)}, 32))
		x := &tx.Tx{ChainID: chain, Nonce: uint64(i), Fee: g.Params.MinFee, Msg: bank.NewSendMsg(address.Address{9}, coin.Unit)}
		x.Sign(k)
		if i%7 == 3 {
			x.Sig[i%64] ^= 0x10
		}
		raws[i], _ = x.Encode()
	}
	got := make([]error, n)
	var wg sync.WaitGroup
	for i := range raws {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = c.check(raws[i]) }()
	}
	wg.Wait()
	for i, err := range got {
		if i%7 == 3 {
			if !errors.Is(err, tx.ErrBadSignature) {
				t.Fatalf("forged transaction %d: %v, want ErrBadSignature", i, err)
			}
		} else if err != nil {
			t.Fatalf("good transaction %d refused: %v", i, err)
		}
	}
	// And a forged one alone, then a good one alone (the batch of one).
	if err := c.check(raws[3]); !errors.Is(err, tx.ErrBadSignature) {
		t.Fatalf("forged transaction alone: %v", err)
	}
	if err := c.check([]byte{0xff, 1}); err == nil {
		t.Fatal("garbage accepted")
	}
}

// TestCheckWaitsForSubmissionsInFlight: with three submissions in flight, the
// first to arrive waits for the other two and checks all three in one
// batch; a lone submission (one in flight) does not wait at all (with an
// hour's gather, a wait would hang the test).
func TestCheckWaitsForSubmissionsInFlight(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	c := newSigCombiner(func(raws [][]byte) []error {
		mu.Lock()
		sizes = append(sizes, len(raws))
		mu.Unlock()
		return make([]error, len(raws))
	})
	c.gather = time.Hour
	c.active.Store(3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.check([]byte{byte(i)}) }()
	}
	wg.Wait()
	if len(sizes) != 1 || sizes[0] != 3 {
		t.Fatalf("batch sizes %v, want one batch of 3", sizes)
	}
	c.active.Store(1)
	if err := c.check([]byte{9}); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 2 || sizes[1] != 1 {
		t.Fatalf("batch sizes %v, want a lone batch of 1 last", sizes)
	}
}

// TestACheckThatPanicsFailsItsBatchOnly: a panic while checking a batch
// answers that batch with an error and leaves the combiner free, so the
// next submission is checked (before, it would have waited forever).
func TestACheckThatPanicsFailsItsBatchOnly(t *testing.T) {
	calls := 0
	c := newSigCombiner(func(raws [][]byte) []error {
		calls++
		if calls == 1 {
			panic("decoder bug")
		}
		return make([]error, len(raws))
	})
	if err := c.check([]byte{1}); !errors.Is(err, errCheckFailed) {
		t.Fatalf("first check: %v, want errCheckFailed", err)
	}
	if err := c.check([]byte{2}); err != nil {
		t.Fatalf("second check: %v", err)
	}
}

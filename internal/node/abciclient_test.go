package node

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
)

// rendezvousApp's CheckTx returns only once `want` calls are inside it at
// the same time (or after a long wait, reporting that they never were).
type rendezvousApp struct {
	abci.BaseApplication
	want     int
	mu       sync.Mutex
	inside   int
	all      chan struct{}
	together atomic.Bool
}

func (a *rendezvousApp) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	a.mu.Lock()
	a.inside++
	if a.inside == a.want {
		close(a.all)
	}
	a.mu.Unlock()
	select {
	case <-a.all:
		a.together.Store(true)
	case <-time.After(20 * time.Second):
	}
	return &abci.ResponseCheckTx{Code: uint32(len(req.Tx))}, nil
}

// TestCheckTxCallsRunConcurrently: the mempool connection's CheckTx calls
// reach the app together (CometBFT's local client would hold each until
// the one before it returned, and the app would never see them together),
// and each ReqRes carries its own response, for the global callback and
// for a callback set after the call, as CListMempool sets it.
func TestCheckTxCallsRunConcurrently(t *testing.T) {
	const n = 8
	a := &rendezvousApp{want: n, all: make(chan struct{})}
	c, err := concurrentCheckTxCreator{a}.NewABCIClient()
	if err != nil {
		t.Fatal(err)
	}
	var globalMu sync.Mutex
	global := map[int]uint32{}
	c.SetResponseCallback(func(req *abci.Request, res *abci.Response) {
		globalMu.Lock()
		global[len(req.GetCheckTx().Tx)] = res.GetCheckTx().Code
		globalMu.Unlock()
	})
	var wg sync.WaitGroup
	got := make([]uint32, n)
	calls := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr, err := c.CheckTxAsync(context.Background(), &abci.RequestCheckTx{Tx: make([]byte, i+1)})
			if err != nil {
				t.Error(err)
				return
			}
			rr.SetCallback(func(res *abci.Response) { got[i] = res.GetCheckTx().Code; calls[i]++ })
			rr.Wait()
		}()
	}
	wg.Wait()
	if !a.together.Load() {
		t.Fatalf("the app never had %d CheckTx calls at once: they were serialised", n)
	}
	for i := range n {
		if got[i] != uint32(i+1) || calls[i] != 1 {
			t.Errorf("call %d: callback got code %d %d times, want %d once", i, got[i], calls[i], i+1)
		}
		if global[i+1] != uint32(i+1) {
			t.Errorf("call %d: global callback got code %d, want %d", i, global[i+1], i+1)
		}
	}
	var _ abcicli.Client = c
}

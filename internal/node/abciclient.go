package node

import (
	"context"
	"sync/atomic"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/proxy"
)

// concurrentCheckTxCreator is CometBFT's connection-synchronised local
// client creator (proxy.NewConnSyncLocalClientCreator) with one change:
// CheckTx and CheckTxAsync call the app without the connection's mutex.
//
// Why: that mutex made every mempool admission wait for the one before it
// for the whole of CheckTx (hashing, signature verdict lookups, the
// response's conversion) although the app serialises only the part that
// must be (app.App.CheckTx holds checkMu around the checks against the
// mempool's view). Measured (docs/PERFORMANCE.md), submitters spent more
// time queued on that mutex than anywhere but the signature batch.
//
// What CometBFT v0.38's CListMempool assumes, and why it still holds:
//   - A recheck never runs beside a new CheckTx: the mempool takes its
//     update lock for writing around Update (and so around the recheck
//     pass) and for reading around CheckTx, whatever the client does.
//   - The mempool adds a transaction in the ReqRes callback, which it sets
//     after CheckTxAsync returns, outside any client lock, with the
//     local client as with this one; so two transactions of one sender
//     checked back to back could already be listed in the opposite order,
//     and the app copes (PrepareProposal restores nonce order, a recheck
//     parks a nonce that comes early: app.checkLocked).
//   - The global callback (SetResponseCallback) only acts on rechecks,
//     which run one at a time (above).
//
// Every other ABCI call keeps the per-connection mutex.
type concurrentCheckTxCreator struct {
	app abci.Application
}

var _ proxy.ClientCreator = concurrentCheckTxCreator{}

func (c concurrentCheckTxCreator) NewABCIClient() (abcicli.Client, error) {
	return &concurrentCheckTxClient{Client: abcicli.NewLocalClient(nil, c.app), app: c.app}, nil
}

// concurrentCheckTxClient is a local ABCI client whose CheckTx calls run
// concurrently (see concurrentCheckTxCreator).
type concurrentCheckTxClient struct {
	abcicli.Client // the locked local client, for everything else
	app            abci.Application
	cb             atomic.Pointer[abcicli.Callback]
}

func (c *concurrentCheckTxClient) SetResponseCallback(cb abcicli.Callback) {
	c.cb.Store(&cb)
	c.Client.SetResponseCallback(cb)
}

func (c *concurrentCheckTxClient) CheckTx(ctx context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	return c.app.CheckTx(ctx, req)
}

// CheckTxAsync runs CheckTx now, like the local client: the returned
// ReqRes is complete, and a callback set on it later runs at once.
func (c *concurrentCheckTxClient) CheckTxAsync(ctx context.Context, req *abci.RequestCheckTx) (*abcicli.ReqRes, error) {
	res, err := c.app.CheckTx(ctx, req)
	if err != nil {
		return nil, err
	}
	rq, rs := abci.ToRequestCheckTx(req), abci.ToResponseCheckTx(res)
	if cb := c.cb.Load(); cb != nil {
		(*cb)(rq, rs)
	}
	rr := abcicli.NewReqRes(rq)
	rr.Response = rs
	rr.InvokeCallback() // none set yet: marks it invoked, so SetCallback calls at once
	rr.Done()
	return rr, nil
}

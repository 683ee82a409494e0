package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/rpc"
)

// feed follows the chain's head and keeps the newest blocks and
// transactions in memory: the explorer's lists and charts are served from
// here, and every new block and transaction is pushed to the open pages
// (server-sent events). One poller serves every viewer, so the node's load
// does not grow with the audience.
type feed struct {
	node  Node
	log   *slog.Logger
	every time.Duration
	keep  int // blocks kept: the charts' window

	mu     sync.RWMutex
	blocks []BlockRow // oldest first
	txs    []TxRow    // oldest first, at most keepTxs
	jobs   []jobEvent // assignments and settlements in the window
	height int64
	events []feedEvent // the newest, for a page that reconnects
	subs   map[chan feedEvent]struct{}
	closed bool
}

// keepTxs is how many of the newest transactions the feed keeps in full.
const keepTxs = 500

// maxFeedTxsPerBlock bounds what the feed reads of one block: the lists
// show the newest few and a block of thousands of transfers (a benchmark)
// would cost the node more than the pages are worth. Counts per block come
// from the header and stay exact.
const maxFeedTxsPerBlock = 1000

// feedEvent is one server-sent event, marshalled once for every viewer.
type feedEvent struct {
	ID   int64 // block height: a reconnecting page asks for what followed
	Name string
	Data []byte
}

func newFeed(node Node, every time.Duration, keep int, log *slog.Logger) *feed {
	return &feed{node: node, every: every, keep: keep, log: log, subs: map[chan feedEvent]struct{}{}}
}

// run polls the head until ctx ends, then closes every subscription.
func (f *feed) run(ctx context.Context) error {
	defer f.close()
	t := time.NewTicker(f.every)
	defer t.Stop()
	backfilled := false
	for {
		head, err := f.node.Head(ctx)
		if err == nil {
			if !backfilled {
				f.backfill(ctx, head.Height)
				backfilled = true
			}
			f.catchUp(ctx, head.Height)
		} else if ctx.Err() == nil {
			f.log.Debug("web: head", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// backfill loads the window before the first head seen, so that the
// charts start full; blocks then arrive one by one through catchUp.
func (f *feed) backfill(ctx context.Context, head int64) {
	from := max(head-int64(f.keep)+1, 1)
	f.mu.Lock()
	f.height = from - 1
	f.mu.Unlock()
	f.catchUpQuiet(ctx, head, false)
}

func (f *feed) catchUp(ctx context.Context, head int64) { f.catchUpQuiet(ctx, head, true) }

func (f *feed) catchUpQuiet(ctx context.Context, head int64, publish bool) {
	for {
		f.mu.RLock()
		next := f.height + 1
		f.mu.RUnlock()
		if next > head || ctx.Err() != nil {
			return
		}
		b, err := f.node.Block(ctx, next)
		if err != nil && !publish && IsNotFound(err) {
			// Pruned below the window's start: begin where the node does.
			f.mu.Lock()
			f.height = next
			f.mu.Unlock()
			continue
		}
		if err != nil {
			f.log.Debug("web: block", "height", next, "err", err)
			return
		}
		var txs []TxRow
		for off := 0; off < b.NumTxs && off < maxFeedTxsPerBlock; off += rpc.MaxBlockTxsPage {
			page, err := f.node.BlockTransactions(ctx, next, off, rpc.MaxBlockTxsPage)
			if err != nil {
				f.log.Debug("web: block transactions", "height", next, "err", err)
				return
			}
			for _, t := range page.Transactions {
				txs = append(txs, txRow(t))
			}
			if len(page.Transactions) == 0 {
				break
			}
		}
		f.add(b, txs, publish)
	}
}

// add records a block and its transactions and pushes them to viewers.
func (f *feed) add(b rpc.Block, txs []TxRow, publish bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var prev *BlockRow
	if n := len(f.blocks); n > 0 {
		prev = &f.blocks[n-1]
	}
	row := blockRow(b, prev)
	f.blocks = append(f.blocks, row)
	if len(f.blocks) > f.keep {
		f.blocks = append(f.blocks[:0:0], f.blocks[len(f.blocks)-f.keep:]...)
	}
	f.txs = append(f.txs, txs...)
	if len(f.txs) > keepTxs {
		f.txs = append(f.txs[:0:0], f.txs[len(f.txs)-keepTxs:]...)
	}
	for _, t := range txs {
		if t.job != nil {
			f.jobs = append(f.jobs, *t.job)
		}
	}
	if len(f.blocks) > 0 {
		oldest := f.blocks[0].Time
		i := 0
		for i < len(f.jobs) && f.jobs[i].Time.Before(oldest) {
			i++
		}
		if i > 0 {
			f.jobs = append(f.jobs[:0:0], f.jobs[i:]...)
		}
	}
	f.height = b.Height
	if !publish {
		return
	}
	f.publishLocked(feedEvent{ID: b.Height, Name: "block", Data: mustJSON(row)})
	// The newest transactions of a block, oldest first, so the page ends
	// up with the newest on top; a huge block sends only its last ones.
	start := max(len(txs)-maxLiveTxs, 0)
	for _, t := range txs[start:] {
		f.publishLocked(feedEvent{ID: b.Height, Name: "tx", Data: mustJSON(t)})
	}
}

// maxLiveTxs is how many of a block's transactions are pushed to pages,
// which show the newest 20.
const maxLiveTxs = 20

// keepEvents is how many recent events a reconnecting page can replay.
const keepEvents = 200

func (f *feed) publishLocked(e feedEvent) {
	f.events = append(f.events, e)
	if len(f.events) > keepEvents {
		f.events = append(f.events[:0:0], f.events[len(f.events)-keepEvents:]...)
	}
	for ch := range f.subs {
		select {
		case ch <- e:
		default:
			// A viewer that does not keep up is let go; its browser
			// reconnects and replays from its last event id.
			delete(f.subs, ch)
			close(ch)
		}
	}
}

// subscribe returns a channel of events after height since (0: only new
// ones) and a function to stop. The channel closes when the feed stops or
// drops the subscriber.
func (f *feed) subscribe(since int64) (<-chan feedEvent, func()) {
	ch := make(chan feedEvent, 256)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch, func() {}
	}
	if since > 0 {
		for _, e := range f.events {
			if e.ID > since && len(ch) < cap(ch)-1 {
				ch <- e
			}
		}
	}
	f.subs[ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}
}

func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch := range f.subs {
		close(ch)
	}
	f.subs = map[chan feedEvent]struct{}{}
}

// latest returns up to n of the newest blocks and transactions, newest
// first, and the height the feed has reached (0 before the first block).
func (f *feed) latest(nBlocks, nTxs int) ([]BlockRow, []TxRow, int64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	bs := make([]BlockRow, 0, nBlocks)
	for i := len(f.blocks) - 1; i >= 0 && len(bs) < nBlocks; i-- {
		bs = append(bs, f.blocks[i])
	}
	ts := make([]TxRow, 0, nTxs)
	for i := len(f.txs) - 1; i >= 0 && len(ts) < nTxs; i-- {
		ts = append(ts, f.txs[i])
	}
	return bs, ts, f.height
}

// window returns copies of the kept blocks and job events, oldest first.
func (f *feed) window() ([]BlockRow, []jobEvent) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return append([]BlockRow(nil), f.blocks...), append([]jobEvent(nil), f.jobs...)
}

// kept returns the block at height if the feed holds it.
func (f *feed) kept(height int64) (BlockRow, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if n := len(f.blocks); n > 0 {
		i := int(height - f.blocks[0].Height)
		if i >= 0 && i < n && f.blocks[i].Height == height {
			return f.blocks[i], true
		}
	}
	return BlockRow{}, false
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("web: marshal %T: %v", v, err)) // plain rows always marshal
	}
	return b
}

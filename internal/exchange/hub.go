package exchange

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/chain/module"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
)

// Feed limits.
const (
	maxSubscribers = 1000
	subscriberBuf  = 16 // updates queued per subscriber; a slower one is dropped
	feedDepth      = 20
)

// Update is one WebSocket message: the book after a block, or the trades
// of new blocks (newest first).
type Update struct {
	Type   string              `json:"type"` // "book" | "trades"
	Height int64               `json:"height"`
	Book   *chainex.BookView   `json:"book,omitempty"`
	Trades []chainex.TradeView `json:"trades,omitempty"`
}

// hub polls the node and fans updates out to WebSocket subscribers. The
// poll runs once for all subscribers; each subscriber has its own queue
// and writer, and the lock is never held across I/O.
type hub struct {
	node module.Getter
	poll time.Duration
	log  *slog.Logger

	mu     sync.Mutex
	subs   map[chan Update]struct{}
	last   *Update // the latest book, sent to a new subscriber first
	closed bool
}

func newHub(node module.Getter, poll time.Duration, log *slog.Logger) *hub {
	return &hub{node: node, poll: poll, log: log, subs: map[chan Update]struct{}{}}
}

func (h *hub) run(ctx context.Context) {
	t := time.NewTicker(h.poll)
	defer t.Stop()
	var height int64 = -1
	var lastTrade uint64
	primed := false // the trades before the feed's first read are history, not news
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		book, err := chainex.QueryBook(ctx, h.node, feedDepth)
		if err != nil || book.Height == height {
			continue
		}
		tv, err := chainex.QueryTrades(ctx, h.node, chainex.MaxTradesShown)
		if err != nil {
			continue
		}
		height = book.Height
		var fresh []chainex.TradeView
		for _, tr := range tv.Trades {
			if tr.Seq <= lastTrade {
				break
			}
			fresh = append(fresh, tr)
		}
		if len(tv.Trades) > 0 {
			lastTrade = tv.Trades[0].Seq
		}
		// The trades are read before the book goes out, so a subscriber
		// that has seen a book is told of every trade after it.
		h.publish(Update{Type: "book", Height: book.Height, Book: &book}, true)
		if primed && len(fresh) > 0 {
			h.publish(Update{Type: "trades", Height: tv.Height, Trades: fresh}, false)
		}
		primed = true
	}
}

func (h *hub) publish(u Update, isBook bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if isBook {
		h.last = &u
	}
	for ch := range h.subs {
		select {
		case ch <- u:
		default: // too slow: drop it; its writer closes the socket
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) subscribe() (chan Update, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.subs) >= maxSubscribers {
		return nil, false
	}
	ch := make(chan Update, subscriberBuf)
	if h.last != nil {
		ch <- *h.last
	}
	h.subs[ch] = struct{}{}
	return ch, true
}

func (h *hub) unsubscribe(ch chan Update) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// serve is GET /api/exchange/ws: the book after every block and the new
// trades, as JSON messages (Update). The client sends nothing.
func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	ch, ok := h.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "5")
		status, code := statusOf(ErrBusy)
		http.Error(w, code, status)
		return
	}
	defer h.unsubscribe(ch)
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(512)
	ctx := c.CloseRead(r.Context()) // the client only listens; a message from it closes the socket
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-ch:
			if !ok {
				c.Close(websocket.StatusTryAgainLater, "too slow or shutting down")
				return
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := wsjson.Write(wctx, c, u)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

package coordinator

import (
	"strings"
	"sync"
)

// Event is something that happened to a job, as streams deliver it.
type Event struct {
	Type   string `json:"type"` // token, status, done
	Text   string `json:"text,omitempty"`
	Seq    int    `json:"seq,omitempty"`
	Status string `json:"status,omitempty"`
	Miner  string `json:"miner,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Event types.
const (
	EventToken  = "token"
	EventStatus = "status"
	EventDone   = "done"
)

// hub fans a job's events out to its subscribers and keeps the text so far,
// so a late subscriber starts with everything already produced.
type hub struct {
	mu     sync.Mutex
	text   strings.Builder
	seq    int
	closed bool
	last   Event
	subs   map[chan Event]struct{}
}

func newHub() *hub { return &hub{subs: map[chan Event]struct{}{}} }

// subscribe returns the text so far, a channel of later events, and a
// cancel function. The channel is closed after the done event.
func (h *hub) subscribe() (string, <-chan Event, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan Event, 256)
	if h.closed {
		ch <- h.last
		close(ch)
		return h.text.String(), ch, func() {}
	}
	h.subs[ch] = struct{}{}
	return h.text.String(), ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// reset forgets the text of a failed attempt; subscribers are told.
func (h *hub) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.text.Reset()
	h.seq = 0
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if e.Type == EventToken {
		h.text.WriteString(e.Text)
		h.seq++
		e.Seq = h.seq
	}
	for ch := range h.subs {
		select {
		case ch <- e:
		default: // a subscriber that cannot keep up loses tokens, never blocks the job
		}
	}
	if e.Type == EventDone {
		h.closed, h.last = true, e
		for ch := range h.subs {
			close(ch)
		}
		h.subs = nil
	}
}

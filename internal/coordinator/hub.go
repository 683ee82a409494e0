package coordinator

import (
	"strings"
	"sync"
)

// Event is something that happened to a job, as streams deliver it.
//
// A stream never loses an event: tokens of an attempt arrive in order with
// Seq 1, 2, 3 ... When a job is requeued, a status event "requeued" says
// that the text so far is void; the next tokens belong to a new attempt
// (Attempt) and start again at Seq 1.
type Event struct {
	Type    string `json:"type"` // token, status, done
	Text    string `json:"text,omitempty"`
	Seq     int    `json:"seq,omitempty"`     // token: its number within the attempt, from 1; the text-so-far event: the last included
	Attempt int    `json:"attempt,omitempty"` // the attempt a token or status belongs to ("requeued": the attempt that follows)
	Status  string `json:"status,omitempty"`
	Miner   string `json:"miner,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    string `json:"code,omitempty"` // done: the failure's stable code, e.g. payment_not_confirmed
}

// Event types.
const (
	EventToken  = "token"
	EventStatus = "status"
	EventDone   = "done"
)

// StatusRequeued is the status event that restarts a job's stream.
const StatusRequeued = "requeued"

// hub is a job's stream: an ordered log of its events that subscribers
// read at their own pace, each from its own position, so a slow reader
// falls behind but never misses anything. The payment gate sits here: an
// event is visible only once released; a token published while the job's
// payment is not yet good for it is held, and so is everything after it,
// until the coordinator releases or discards the held part.
type hub struct {
	mu        sync.Mutex
	log       []Event
	visible   int  // log[:visible] may be read
	attempt   int  // the attempt tokens belong to now
	seq       int  // tokens of the current attempt, released or held
	attemptAt int  // index in log of the current attempt's first event
	closed    bool // the done event is in the log
	notify    chan struct{}
	readers   int // follow goroutines running
}

// followed reports whether anyone follows the stream now.
func (h *hub) followed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.readers > 0
}

func newHub(attempt int) *hub {
	return &hub{attempt: attempt, notify: make(chan struct{})}
}

// wakeLocked tells waiting readers that the visible log grew.
func (h *hub) wakeLocked() {
	close(h.notify)
	h.notify = make(chan struct{})
}

func (h *hub) appendLocked(e Event, release bool) {
	h.log = append(h.log, e)
	if release && h.visible == len(h.log)-1 { // nothing held before it
		h.visible = len(h.log)
		h.wakeLocked()
	}
}

// token publishes the next token of the current attempt, released or
// held. It reports whether it is the attempt's first.
func (h *hub) token(text string, release bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.seq++
	h.appendLocked(Event{Type: EventToken, Text: text, Seq: h.seq, Attempt: h.attempt}, release)
	return h.seq == 1
}

// tokens is how many tokens the current attempt has published.
func (h *hub) tokens() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq
}

// status publishes a status event; it waits behind held tokens.
func (h *hub) status(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.appendLocked(e, true)
	}
}

// release makes everything held visible.
func (h *hub) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.visible < len(h.log) {
		h.visible = len(h.log)
		h.wakeLocked()
	}
}

// discardLocked drops what is held: it will never be shown.
func (h *hub) discardLocked() { h.log = h.log[:h.visible] }

// discard drops what is held.
func (h *hub) discard() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.discardLocked()
}

// restart voids the current attempt: held tokens are dropped, and the
// "requeued" event e tells readers to start over with attempt e.Attempt.
func (h *hub) restart(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.discardLocked()
	h.attempt, h.seq = e.Attempt, 0
	h.appendLocked(e, true)
	h.attemptAt = len(h.log)
}

// done drops what is held, publishes the final event and closes the log.
func (h *hub) done(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.discardLocked()
	h.appendLocked(e, true)
	h.closed = true
}

// snapshot returns the current attempt's visible text, its last token's
// seq, the attempt, and the log position after them.
func (h *hub) snapshot() (text string, seq, attempt, pos int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	start := min(h.attemptAt, h.visible)
	for _, e := range h.log[start:h.visible] {
		if e.Type == EventToken {
			b.WriteString(e.Text)
			seq = e.Seq
		}
	}
	return b.String(), seq, h.attempt, h.visible
}

// since returns the visible events from pos on, a channel closed when more
// become visible, and whether the log is complete.
func (h *hub) since(pos int) ([]Event, <-chan struct{}, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pos > h.visible { // cannot happen: positions only come from this hub
		pos = h.visible
	}
	return h.log[pos:h.visible:h.visible], h.notify, h.closed
}

// follow streams the events from pos on into a channel until the done
// event or cancel. Each subscriber has its own goroutine, which blocks
// only on its own reader: a slow reader delays nobody and loses nothing.
func (h *hub) follow(pos int) (<-chan Event, func()) { return h.subscribe(pos, true) }

// subscribe is follow; a subscriber that is not a customer (the relay to
// other coordinators, relay.go) does not count as one in followed.
func (h *hub) subscribe(pos int, customer bool) (<-chan Event, func()) {
	out := make(chan Event, 16)
	stop := make(chan struct{})
	var once sync.Once
	if customer {
		h.mu.Lock()
		h.readers++
		h.mu.Unlock()
	}
	go func() {
		defer func() {
			if customer {
				h.mu.Lock()
				h.readers--
				h.mu.Unlock()
			}
		}()
		defer close(out)
		for {
			evs, more, closed := h.since(pos)
			for _, e := range evs {
				select {
				case out <- e:
					pos++
				case <-stop:
					return
				}
			}
			if len(evs) > 0 {
				continue
			}
			if closed {
				return
			}
			select {
			case <-more:
			case <-stop:
				return
			}
		}
	}()
	return out, func() { once.Do(func() { close(stop) }) }
}

package state

import "sync"

// hotSet is an in-memory copy of some committed state values, kept exactly
// equal to Pebble's: Commit updates every key its block wrote, and a value
// read from Pebble is kept only if no commit happened since the read began
// (otherwise it may be the value from before that commit).
type hotSet struct {
	mu   sync.RWMutex
	gen  uint64 // commits so far
	max  int
	vals map[string][]byte // nil: the key is absent
}

func newHotSet(max int) *hotSet { return &hotSet{max: max, vals: make(map[string][]byte)} }

// get returns a copy of key's value and whether it is known; when it is
// not, gen is what fill needs.
func (h *hotSet) get(key []byte) (v []byte, ok bool, gen uint64) {
	h.mu.RLock()
	v, ok = h.vals[string(key)]
	gen = h.gen
	h.mu.RUnlock()
	if ok && v != nil {
		v = append([]byte(nil), v...) // callers own what Get returns
	}
	return v, ok, gen
}

// fill keeps v, read from Pebble when the generation was gen.
func (h *hotSet) fill(key, v []byte, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gen != gen {
		return
	}
	h.makeRoom(1)
	h.vals[string(key)] = append([]byte(nil), v...) // nil stays nil: absent
}

// commit records a committed block's writes to state keys.
func (h *hotSet) commit(writes []KV) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	for _, w := range writes {
		if !IsHashed(w.Key) {
			continue
		}
		h.makeRoom(1)
		// Like Store.get, an empty value reads as absent (nil).
		h.vals[string(w.Key)] = append([]byte(nil), w.Value...)
	}
}

// makeRoom forgets an arbitrary half when n more would not fit: cheaper
// than tracking recency, and the keys in use come straight back.
func (h *hotSet) makeRoom(n int) {
	if len(h.vals)+n <= h.max {
		return
	}
	drop := len(h.vals) / 2
	for k := range h.vals {
		if drop == 0 {
			break
		}
		delete(h.vals, k)
		drop--
	}
}

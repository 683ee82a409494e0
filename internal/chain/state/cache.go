package state

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Cache buffers writes over a parent Reader. Reads see the cache's own
// writes first. A child cache (for one transaction) is merged into its
// parent with Write, or dropped to discard everything it wrote.
// A Cache is not safe for concurrent use.
type Cache struct {
	parent Reader
	writes map[string][]byte // nil value: deleted
	up     *Cache            // parent as a Cache, for Write
}

// NewCache returns an empty cache over parent.
func NewCache(parent Reader) *Cache {
	c := &Cache{parent: parent, writes: make(map[string][]byte)}
	if pc, ok := parent.(*Cache); ok {
		c.up = pc
	}
	return c
}

// Child returns a cache layered on c.
func (c *Cache) Child() *Cache { return NewCache(c) }

// Get implements Reader.
func (c *Cache) Get(key []byte) ([]byte, error) {
	if v, ok := c.writes[string(key)]; ok {
		return v, nil
	}
	return c.parent.Get(key)
}

// Set records a write. The cache keeps value; the caller must not modify it.
func (c *Cache) Set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	c.writes[string(key)] = value
}

// Delete records a deletion.
func (c *Cache) Delete(key []byte) { c.writes[string(key)] = nil }

// Write merges c's writes into its parent cache and empties c.
func (c *Cache) Write() {
	if c.up == nil {
		panic("state: Write on a cache whose parent is not a Cache")
	}
	for k, v := range c.writes {
		c.up.writes[k] = v
	}
	clear(c.writes)
}

// Iterate implements View over the cache's writes layered on its parent's
// keys (the parent must be a View): a key written here shadows the
// parent's, a deleted one is skipped. It costs a sort of the cache's own
// writes under prefix, so it is meant for queries and invariants, not for
// every transaction.
func (c *Cache) Iterate(prefix []byte, reverse bool, fn func(key, value []byte) bool) error {
	pv, ok := c.parent.(View)
	if !ok {
		return fmt.Errorf("state: iterate: parent %T cannot iterate", c.parent)
	}
	var own []string
	for k := range c.writes {
		if strings.HasPrefix(k, string(prefix)) {
			own = append(own, k)
		}
	}
	sort.Strings(own)
	if reverse {
		slices.Reverse(own)
	}
	before := func(a, b string) bool { // a comes before b in walk order
		if reverse {
			return a > b
		}
		return a < b
	}
	i, stopped := 0, false
	emitOwn := func() bool { // emits own[i]; false when fn asked to stop
		k := own[i]
		i++
		if v := c.writes[k]; v != nil {
			return fn([]byte(k), v)
		}
		return true
	}
	err := pv.Iterate(prefix, reverse, func(key, value []byte) bool {
		for i < len(own) && before(own[i], string(key)) {
			if !emitOwn() {
				stopped = true
				return false
			}
		}
		if i < len(own) && own[i] == string(key) {
			if !emitOwn() {
				stopped = true
				return false
			}
			return true
		}
		if !fn(key, value) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil || stopped {
		return err
	}
	for i < len(own) {
		if !emitOwn() {
			return nil
		}
	}
	return nil
}

// Len is the number of keys written.
func (c *Cache) Len() int { return len(c.writes) }

// Sorted returns the writes ordered by key.
func (c *Cache) Sorted() []KV {
	out := make([]KV, 0, len(c.writes))
	for k, v := range c.writes {
		out = append(out, KV{Key: []byte(k), Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i].Key) < string(out[j].Key) })
	return out
}

// ChainHash folds a block's sorted writes into the previous app hash:
// sha256(prev || height || for each hashed key: len,key,flag,len,value).
// It depends only on the block's effects, never on map order or timing,
// so every honest node computes the same value.
func ChainHash(prev []byte, height int64, sorted []KV) []byte {
	h := sha256.New()
	var buf [8]byte
	h.Write(prev)
	binary.BigEndian.PutUint64(buf[:], uint64(height))
	h.Write(buf[:])
	for _, kv := range sorted {
		if !IsHashed(kv.Key) {
			continue
		}
		binary.BigEndian.PutUint64(buf[:], uint64(len(kv.Key)))
		h.Write(buf[:])
		h.Write(kv.Key)
		if kv.Value == nil {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		binary.BigEndian.PutUint64(buf[:], uint64(len(kv.Value)))
		h.Write(buf[:])
		h.Write(kv.Value)
	}
	return h.Sum(nil)
}

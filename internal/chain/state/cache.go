package state

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
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

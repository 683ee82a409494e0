package app

import (
	"sync"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// txCache remembers decoded transactions whose signature this node has
// verified and which the mempool holds, keyed by hash. Bounded: when full,
// new entries are not cached and are simply verified again in the block.
type txCache struct {
	mu  sync.RWMutex
	max int
	m   map[[32]byte]*tx.Tx
}

func newTxCache(max int) *txCache { return &txCache{max: max, m: make(map[[32]byte]*tx.Tx)} }

func (c *txCache) get(h [32]byte) *tx.Tx {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[h]
}

func (c *txCache) put(h [32]byte, t *tx.Tx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) < c.max {
		c.m[h] = t
	}
}

func (c *txCache) remove(h [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, h)
}

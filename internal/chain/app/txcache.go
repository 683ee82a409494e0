package app

import (
	"sync"

	"github.com/aitbc/aitbc/internal/chain/tx"
)

// txCache maps transaction hashes to decoded transactions whose signature
// this node has verified. Bounded: when full, a cache that must not forget
// (the mempool's set: IsPending reads it) stops taking new entries, which
// are then simply verified again in their block; one that may (signatures
// checked ahead of CheckTx) forgets an arbitrary half.
type txCache struct {
	mu     sync.RWMutex
	max    int
	forget bool
	m      map[[32]byte]*tx.Tx
}

func newTxCache(max int, forget bool) *txCache {
	return &txCache{max: max, forget: forget, m: make(map[[32]byte]*tx.Tx)}
}

func (c *txCache) get(h [32]byte) *tx.Tx {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[h]
}

// take removes and returns h's entry.
func (c *txCache) take(h [32]byte) *tx.Tx {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.m[h]
	delete(c.m, h)
	return t
}

func (c *txCache) put(h [32]byte, t *tx.Tx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		if !c.forget {
			return
		}
		n := len(c.m) / 2
		for k := range c.m {
			if n == 0 {
				break
			}
			delete(c.m, k)
			n--
		}
	}
	c.m[h] = t
}

func (c *txCache) remove(h [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, h)
}

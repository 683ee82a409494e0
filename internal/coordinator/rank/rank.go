// Package rank orders endpoints by their measured round trips: the one
// ranking that clients choosing a coordinator (coordinator.Picker) and
// miners ordering their coordinators (internal/miner) share. It imports
// nothing of AITBC, so both can use it (the miner cannot import the
// coordinator package).
package rank

import (
	"cmp"
	"slices"
	"time"
)

// Order returns the indexes of n probed endpoints in ranked order: those
// that answered (ok[i]) by round trip rtt[i], fastest first, then those
// that did not, in the given order. Ties keep the given order. With
// nearEnough, round trips up to nearEnough(fastest) count as equal to the
// fastest and so keep the given order too (miners given rotated lists
// spread over equally near coordinators; noise does not reorder them).
func Order(rtt []time.Duration, ok []bool, nearEnough func(fastest time.Duration) time.Duration) []int {
	idx := make([]int, len(rtt))
	for i := range idx {
		idx[i] = i
	}
	band := time.Duration(-1) // round trips up to band count as the fastest's
	if nearEnough != nil {
		for i, d := range rtt {
			if ok[i] && (band < 0 || d < band) {
				band = d
			}
		}
		if band >= 0 {
			band = nearEnough(band)
		}
	}
	key := func(i int) time.Duration {
		if rtt[i] <= band {
			return 0
		}
		return rtt[i]
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case ok[a] != ok[b]:
			if ok[a] {
				return -1
			}
			return 1
		case !ok[a]:
			return 0
		}
		return cmp.Compare(key(a), key(b))
	})
	return idx
}

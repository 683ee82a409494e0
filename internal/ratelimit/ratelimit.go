// Package ratelimit holds token-bucket rate limiters keyed by a string
// (an API key's hash, a client address): each key may make Burst requests
// at once and Rate more per second after that. A refused request learns
// how long to wait (for a Retry-After header).
//
// The memory a Limiter holds is bounded: a bucket that has refilled
// completely is the same as no bucket, so idle keys are forgotten, and
// past MaxKeys the least recently used keys are dropped (they come back
// with a full bucket, which only errs on the side of the client).
//
// Imported by internal/httpx (per-client limits of every server) and by
// the services that limit per API key (the coordinator).
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys bounds the keys a Limiter remembers when Config.MaxKeys
// is 0.
const DefaultMaxKeys = 100_000

// Config configures a Limiter.
type Config struct {
	Rate    float64          // tokens added per second; 0 or less: no limit
	Burst   int              // bucket size; 0: max(1, Rate)
	MaxKeys int              // keys remembered at most; 0: DefaultMaxKeys
	Now     func() time.Time // nil: time.Now
}

// Limiter is a set of token buckets, one per key. It is safe for
// concurrent use. A nil *Limiter allows everything.
type Limiter struct {
	rate    float64
	burst   float64
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

// New returns a Limiter, or nil (no limit) when cfg.Rate is not positive.
func New(cfg Config) *Limiter {
	if cfg.Rate <= 0 {
		return nil
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(math.Ceil(cfg.Rate)))
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{rate: cfg.Rate, burst: float64(cfg.Burst), maxKeys: cfg.MaxKeys, now: cfg.Now, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket. When the bucket is empty it
// returns false and how long until a token is there.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.evictLocked(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, max(wait, time.Millisecond)
}

// RetryAfterSeconds is d rounded up to whole seconds, at least 1: the
// value of a Retry-After header.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Len is the number of keys remembered.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
	}
	b.at = now
}

// evictLocked forgets full buckets (they hold no information), then, if
// the map is still full, the tenth of the buckets touched longest ago.
func (l *Limiter) evictLocked(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxKeys {
		return
	}
	// Still full: every bucket is in use. Drop the oldest tenth, found by
	// a cut-off time, so that eviction costs O(n) once per n/10 new keys.
	n := max(1, l.maxKeys/10)
	var oldest []time.Time
	for _, b := range l.buckets {
		oldest = append(oldest, b.at)
	}
	cut := nthSmallest(oldest, n-1)
	for k, b := range l.buckets {
		if !b.at.After(cut) && n > 0 {
			delete(l.buckets, k)
			n--
		}
	}
}

// nthSmallest returns the k-th smallest time (0-based) by quickselect.
func nthSmallest(ts []time.Time, k int) time.Time {
	lo, hi := 0, len(ts)-1
	for lo < hi {
		p := ts[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for ts[i].Before(p) {
				i++
			}
			for p.Before(ts[j]) {
				j--
			}
			if i <= j {
				ts[i], ts[j] = ts[j], ts[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return ts[k]
		}
	}
	return ts[k]
}

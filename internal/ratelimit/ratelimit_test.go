package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/ratelimit"
)

// clock is a manual clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestBurstThenRate(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := ratelimit.New(ratelimit.Config{Rate: 2, Burst: 5, Now: c.now})
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok {
		t.Fatal("sixth request allowed past a burst of 5")
	}
	if wait != 500*time.Millisecond {
		t.Fatalf("retry after %v, want 500ms at 2/s", wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key is limited by the first one's bucket")
	}
	c.advance(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("refused after the wait it was told")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("allowed twice after half a second at 2/s")
	}
}

func TestNilAndZeroRateAllowEverything(t *testing.T) {
	var l *ratelimit.Limiter
	if ok, _ := l.Allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
	if ratelimit.New(ratelimit.Config{}) != nil {
		t.Fatal("a zero rate should give no limiter")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := ratelimit.New(ratelimit.Config{Rate: 1, Burst: 1, MaxKeys: 100, Now: c.now})
	for i := 0; i < 10_000; i++ {
		l.Allow(fmt.Sprint("client-", i)) // every bucket left empty: none is idle
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("%d keys remembered, limit 100", n)
	}
	// Idle keys refill and are forgotten first.
	c.advance(time.Hour)
	l.Allow("new")
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys after every other bucket refilled, want 1", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {90 * time.Second, 90}} {
		if got := ratelimit.RetryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

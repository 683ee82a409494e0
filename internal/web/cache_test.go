package web

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoServesStaleWhileOneRefreshRuns(t *testing.T) {
	var m memo[int]
	m.setTTL(20 * time.Millisecond)
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(context.Context) (int, error) {
		n := calls.Add(1)
		if n > 1 {
			<-release // the refresh is slow
		}
		return int(n), nil
	}
	if v, err := m.get(context.Background(), fetch); v != 1 || err != nil {
		t.Fatalf("first get: %d %v", v, err)
	}
	time.Sleep(30 * time.Millisecond)
	// Expired: every viewer gets the old value at once, and one refresh starts.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := m.get(context.Background(), fetch); v != 1 || err != nil {
				t.Errorf("stale get: %d %v", v, err)
			}
		}()
	}
	wg.Wait()
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, _ := m.get(context.Background(), fetch)
		if v == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refresh never landed: %d", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := calls.Load(); n != 2 && n != 3 { // the first, the refresh (and maybe one after it expired again)
		t.Errorf("%d fetches, want 2 or 3", n)
	}
}

func TestMemoKeepsOldValueWhenRefreshFails(t *testing.T) {
	var m memo[int]
	m.setTTL(time.Millisecond)
	ok := true
	var mu sync.Mutex
	fetch := func(context.Context) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			return 0, errors.New("node down")
		}
		return 7, nil
	}
	if _, err := m.get(context.Background(), fetch); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	ok = false
	mu.Unlock()
	for range 20 {
		time.Sleep(2 * time.Millisecond)
		if v, err := m.get(context.Background(), fetch); v != 7 || err != nil {
			t.Fatalf("after a failed refresh: %d %v", v, err)
		}
	}
	// With no value yet, a failure is the caller's.
	var empty memo[int]
	if _, err := empty.get(context.Background(), fetch); err == nil {
		t.Fatal("first fetch failing returned no error")
	}
}

func TestHeightCacheReadsOncePerKeyAndHeight(t *testing.T) {
	c := heightCache[int]{max: 2}
	var calls atomic.Int32
	fetch := func(context.Context) (int, error) {
		time.Sleep(10 * time.Millisecond)
		return int(calls.Add(1)), nil
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.get(context.Background(), "a", 5, fetch); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("100 viewers at one height: %d reads", n)
	}
	if v, _ := c.get(context.Background(), "a", 6, fetch); v != 2 {
		t.Errorf("a new height read again: %d", v)
	}
	if v, _ := c.get(context.Background(), "a", 6, fetch); v != 2 {
		t.Errorf("same height: %d", v)
	}
	// An error is not kept.
	bad := func(context.Context) (int, error) { return 0, errors.New("no") }
	if _, err := c.get(context.Background(), "b", 6, bad); err == nil {
		t.Fatal("error lost")
	}
	if v, err := c.get(context.Background(), "b", 6, fetch); err != nil || v != 3 {
		t.Errorf("after an error: %d %v", v, err)
	}
	// Bounded.
	for _, k := range []string{"c", "d", "e"} {
		_, _ = c.get(context.Background(), k, 6, fetch)
	}
	if len(c.m) > 2 {
		t.Errorf("%d entries, max 2", len(c.m))
	}
}

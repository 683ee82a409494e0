package swarm

import (
	"sync"
	"testing"
	"time"
)

// TestObserveCountsServedForwards: a miner's oracle reporter counts its
// span work through ServerConfig.Observe — each request that ran, with
// its rows; a refused request is not counted.
func TestObserveCountsServedForwards(t *testing.T) {
	dim := tolstoy(t).Config().Dim
	var mu sync.Mutex
	var calls, rows int
	_, hs := spanServer(t, 2, 4, ServerConfig{Threads: 1, Observe: func(n int, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		rows += n
		if took < 0 {
			t.Errorf("negative duration %v", took)
		}
	}})
	req := ForwardRequest{Session: "s1", Model: model, First: 2, Last: 4, Pos: 0, Rows: 3, Dim: dim, Hidden: EncodeFloats(make([]float32, 3*dim))}
	if _, err := post(t, hs.URL, req); err != nil {
		t.Fatal(err)
	}
	req.Pos, req.Rows, req.Hidden = 3, 1, EncodeFloats(make([]float32, dim))
	if _, err := post(t, hs.URL, req); err != nil {
		t.Fatal(err)
	}
	bad := req
	bad.Dim = dim + 1
	if _, err := post(t, hs.URL, bad); err == nil {
		t.Fatal("a request of the wrong dim was served")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 || rows != 4 {
		t.Fatalf("observed %d requests of %d rows, want 2 of 4 (the refused one not counted)", calls, rows)
	}
}

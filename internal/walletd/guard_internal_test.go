package walletd

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// Finding 6: parallel password checks are bounded: with one scrypt slot
// and a queue of two, a fourth check while three are in is refused at
// once with ErrBusy (503 busy, Retry-After) instead of a fourth scrypt
// run in memory; when the slot frees, checks run again.
func TestParallelPasswordChecksAreBounded(t *testing.T) {
	g := newPasswordGuard(GuardConfig{KDFConcurrency: 1, KDFQueue: 2, KDFWait: time.Minute}, time.Now)
	release := make(chan struct{})
	running := make(chan struct{}, 3)
	done := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			done <- g.check("w", func() error { running <- struct{}{}; <-release; return nil })
		}()
	}
	<-running // one runs, two wait
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		w := g.waiting
		g.mu.Unlock()
		if w == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d checks waiting, want 2", w)
		}
		time.Sleep(time.Millisecond)
	}
	ran := false
	err := g.check("w", func() error { ran = true; return nil })
	var re *RetryError
	if !errors.Is(err, ErrBusy) || !errors.As(err, &re) || re.RetryAfter() <= 0 || ran {
		t.Fatalf("fourth check: %v (ran %v), want ErrBusy with a retry time, not run", err, ran)
	}
	if status, code := HTTPStatus(err); status != http.StatusServiceUnavailable || code != "busy" {
		t.Fatalf("busy answers %d %s", status, code)
	}
	close(release)
	for i := 0; i < 3; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := g.check("w", func() error { return nil }); err != nil {
		t.Fatalf("after the burst: %v", err)
	}
}

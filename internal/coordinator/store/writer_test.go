package store_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// flakyStore fails its first writes, then stores.
type flakyStore struct {
	store.Store
	mu    sync.Mutex
	fails int
	puts  []string // id:status in write order
}

func (f *flakyStore) PutJob(ctx context.Context, j *store.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("disk full")
	}
	f.puts = append(f.puts, j.ID+":"+j.Status)
	return f.Store.PutJob(ctx, j)
}

func TestWriterKeepsNewestSnapshotAndRetries(t *testing.T) {
	mem, err := store.OpenSQLite(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	fs := &flakyStore{Store: mem, fails: 2}
	w := store.NewWriter(fs, slog.New(slog.DiscardHandler))
	stored := make(chan string, 4)
	// Handed over before the writer runs: only the newest snapshot of j1
	// is written, and both callbacks run after it.
	w.Put(&store.Job{ID: "j1", Status: store.StatusQueued}, func() { stored <- "first" })
	w.Put(&store.Job{ID: "j2", Status: store.StatusQueued}, nil)
	w.Put(&store.Job{ID: "j1", Status: store.StatusCompleted, Result: "done"}, func() { stored <- "second" })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	if err := w.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if got := []string{<-stored, <-stored}; got[0] != "first" || got[1] != "second" {
		t.Fatalf("callbacks %v", got)
	}
	if len(fs.puts) != 2 || fs.puts[0] != "j1:completed" || fs.puts[1] != "j2:queued" {
		t.Fatalf("writes %v", fs.puts)
	}
	j, err := mem.Job(context.Background(), "j1")
	if err != nil || j.Result != "done" {
		t.Fatalf("stored j1: %+v %v", j, err)
	}
}

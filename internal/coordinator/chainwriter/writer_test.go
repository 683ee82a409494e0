package chainwriter_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/chainwriter"
)

type recorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *recorder) Send(_ context.Context, m tx.Msg) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.Type == "refuse" {
		return "", errors.New("refused")
	}
	r.sent = append(r.sent, m.Type)
	return fmt.Sprintf("0x%d", len(r.sent)), nil
}

func TestOpsAreSentInOrderAndSkippedWhenStale(t *testing.T) {
	rec := &recorder{}
	w := chainwriter.New(rec, slog.New(slog.DiscardHandler))
	results := make(chan string, 10)
	op := func(kind string, skip bool) chainwriter.Op {
		return chainwriter.Op{Kind: kind, JobID: "j", Build: func(context.Context) (*tx.Msg, error) {
			if skip {
				return nil, nil
			}
			return &tx.Msg{Type: kind}, nil
		}, Done: func(h string, err error) { results <- fmt.Sprint(kind, " ", h, " ", err) }}
	}
	// Queued before the writer runs, as a coordinator under load would.
	for _, o := range []chainwriter.Op{op("create", false), op("assign", true), op("assign", false), op("refuse", false), op("settle", false)} {
		w.Enqueue(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	var got []string
	for range 4 {
		select {
		case r := <-results:
			got = append(got, r)
		case <-time.After(30 * time.Second):
			t.Fatalf("only %v", got)
		}
	}
	want := []string{"create 0x1 <nil>", "assign 0x2 <nil>", "refuse  refused", "settle 0x3 <nil>"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

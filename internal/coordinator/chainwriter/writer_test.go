package chainwriter_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
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

// batcher is a Sender that records batches by their items and refuses
// any transaction holding a "jobs/refuse" message.
type batcher struct {
	mu   sync.Mutex
	sent []string
}

func (b *batcher) Send(_ context.Context, m tx.Msg) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	desc := m.Type
	items := []tx.Msg{m}
	if m.Type == jobs.TypeBatch {
		var mb jobs.MsgBatch
		if err := m.DecodeBody(&mb); err != nil {
			return "", err
		}
		items = mb.Msgs
		desc = fmt.Sprintf("batch%d", len(items))
	}
	for _, it := range items {
		if it.Type == "jobs/refuse" {
			return "", errors.New("refused")
		}
	}
	b.sent = append(b.sent, desc)
	return fmt.Sprintf("0x%d", len(b.sent)), nil
}

func TestQueuedOpsGoOutAsBatches(t *testing.T) {
	b := &batcher{}
	w := chainwriter.New(b, slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	done := map[string]string{}
	var wg sync.WaitGroup
	op := func(name, typ string) chainwriter.Op {
		wg.Add(1)
		return chainwriter.Op{Kind: typ, JobID: name, Build: func(context.Context) (*tx.Msg, error) {
			return &tx.Msg{Type: typ, Body: []byte{0x80}}, nil
		}, Done: func(h string, err error) {
			mu.Lock()
			done[name] = fmt.Sprint(h, " ", err)
			mu.Unlock()
			wg.Done()
		}}
	}
	// Three jobs messages, a transfer (not batchable), two more, one of
	// which the node refuses: that batch is resent one by one.
	for _, o := range []chainwriter.Op{op("a", jobs.TypeCreateFor), op("b", jobs.TypeAssign), op("c", jobs.TypeSettle),
		op("t", "bank/send"), op("d", jobs.TypeSettle), op("e", "jobs/refuse")} {
		w.Enqueue(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	wg.Wait()
	if got, want := fmt.Sprint(b.sent), "[batch3 bank/send jobs/settle]"; got != want {
		t.Fatalf("sent %s, want %s", got, want)
	}
	want := map[string]string{"a": "0x1 <nil>", "b": "0x1 <nil>", "c": "0x1 <nil>", "t": "0x2 <nil>", "d": "0x3 <nil>", "e": " refused"}
	if fmt.Sprint(done) != fmt.Sprint(want) {
		t.Fatalf("done %v, want %v", done, want)
	}
	// A lone op is sent alone, not as a batch of one.
	wg.Wait()
	w.Enqueue(op("f", jobs.TypeSettle))
	wg.Wait()
	if last := b.sent[len(b.sent)-1]; last != jobs.TypeSettle {
		t.Fatalf("lone op sent as %s", last)
	}
}

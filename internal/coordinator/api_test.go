package coordinator

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/httpx"
)

// The Client maps error bodies back to the coordinator's sentinels.
func TestClientErrorsMatchTheSentinels(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.addMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	ctx := context.Background()
	if _, err := NewClient(srv.URL, "wrong").Status(ctx, "00"); !errors.Is(err, ErrUnauthorized) || !httpx.IsCode(err, "unauthorized") {
		t.Fatalf("bad key: %v", err)
	}
	c := NewClient(srv.URL, h.apiKey)
	if _, err := c.Status(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, ErrJobNotFound) || !errors.Is(err, jobs.ErrJobNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
	_, err := c.Submit(ctx, JobRequest{Model: testModel, Prompt: "hi", MaxPrice: coin.Unit})
	if !errors.Is(err, ErrInsufficientDeposit) || !httpx.IsCode(err, jobs.ErrDepositLow.Name) {
		t.Fatalf("no deposit: %v", err)
	}
	if err := c.Stream(ctx, "0123456789abcdef0123456789abcdef", func(Event) {}); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("stream of an unknown job: %v", err)
	}
}

// The WebSocket stream carries every token with its seq, and ends with
// the done event.
func TestWebSocketStreamDeliversEveryTokenInOrder(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	m := h.addMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	c := NewClient(srv.URL, h.apiKey)
	v, err := c.Submit(context.Background(), JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	mj := m.nextJob()
	m.tokens(mj, "a", "b") // before the client connects: it gets them as the text so far
	events := make(chan Event, 64)
	go func() {
		defer close(events)
		if err := c.Stream(context.Background(), v.JobID, func(e Event) { events <- e }); err != nil {
			t.Error(err)
		}
	}()
	var evs []Event
	for len(evs) == 0 || evs[len(evs)-1].Type != EventToken { // connected: the text so far arrived
		evs = append(evs, recv(t, events))
	}
	m.tokens(mj, "c")
	m.finish(mj, "abc", 3)
	h.waitSent(jobs.TypeSettle, 1)
	h.block()
	h.block()
	evs = append(evs, drain(t, events)...)
	text, seq := "", 0
	for _, e := range evs {
		if e.Type != EventToken {
			continue
		}
		if e.Seq <= seq {
			t.Fatalf("token seq %d after %d", e.Seq, seq)
		}
		text, seq = text+e.Text, e.Seq
	}
	if text != "abc" || seq != 3 || evs[len(evs)-1].Type != EventDone || evs[len(evs)-1].Status != "settled" {
		t.Fatalf("text %q seq %d, events %+v", text, seq, evs)
	}
}

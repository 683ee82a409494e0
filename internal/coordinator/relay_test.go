package coordinator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// streamText is the text a client makes of a stream: tokens appended, a
// "requeued" status voiding what came before.
func streamText(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		switch {
		case e.Type == EventToken:
			b.WriteString(e.Text)
		case e.Type == EventStatus && e.Status == StatusRequeued:
			b.Reset()
		}
	}
	return b.String()
}

// nextToken reads events until a token, failing after a while: the token
// must come while the job still runs, not with its result.
func nextToken(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("stream ended before the token")
			}
			if e.Type == EventToken {
				return e
			}
			if e.Type == EventDone {
				t.Fatalf("stream ended (%+v) before the token", e)
			}
		case <-deadline:
			t.Fatal("no token on the follower's stream while the job runs")
		}
	}
}

// TestFollowerOnAnotherCoordinatorStreamsTokensLive: coordinator 1 drives
// a job; a customer follows it on coordinator 2. Each token the miner
// streams reaches the customer on coordinator 2 while the job still runs
// (before the next is sent), in order, numbered 1, 2, 3 ...; the stream
// ends once, with the stored result adding only what the tokens lacked.
func TestFollowerOnAnotherCoordinatorStreamsTokensLive(t *testing.T) {
	h1, h2 := sharedPair(t)
	h1.fund(100 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	m1 := h1.addMiner(coin.Unit)

	j := h1.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: coin.Unit, TTLSeconds: 600})
	job := m1.nextJob()
	sub, err := h2.s.Follow(h2.ctx, h1.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	if sub.Text != "" {
		t.Fatalf("subscription text %q", sub.Text)
	}
	words := []string{"It", " was", " the", " best", " of"}
	var evs []Event
	for i, w := range words {
		m1.send(minerproto.Envelope{Type: minerproto.TypeToken, JobID: job.ID, Attempt: job.Attempt, Seq: i + 1, Text: w})
		e := nextToken(t, sub.Events)
		if e.Text != w || e.Seq != i+1 || e.Attempt != job.Attempt {
			t.Fatalf("token %d on coordinator 2: %+v, want %q seq %d attempt %d", i+1, e, w, i+1, job.Attempt)
		}
		evs = append(evs, e)
	}
	if g := testutil.ToFloat64(h2.s.metrics.remoteFollowers); g != 1 {
		t.Fatalf("follower streams on coordinator 2 = %v", g)
	}
	// The driver counts a batch after its write returns, which the
	// follower may have read already: wait for the count.
	waitFor(t, fmt.Sprintf("coordinator 1 counting %d relayed tokens", len(words)), func() bool {
		return testutil.ToFloat64(h1.s.metrics.relayedTokens) == float64(len(words))
	})
	// The result has one more word than was streamed: only it follows.
	m1.finish(job, "It was the best of times", 6)
	h1.waitSent("jobs/settle", 1)
	h1.chain.commit()
	h1.s.followJobs(h1.ctx)
	rest := drain(t, sub.Events)
	evs = append(evs, rest...)
	var seqs []string
	dones := 0
	for _, e := range evs {
		switch e.Type {
		case EventToken:
			seqs = append(seqs, fmt.Sprint(e.Seq))
		case EventDone:
			dones++
		case EventStatus:
			if e.Status == StatusRequeued {
				t.Fatalf("requeued in a stream of one attempt: %+v", evs)
			}
		}
	}
	if got := strings.Join(seqs, ","); got != "1,2,3,4,5,6" {
		t.Fatalf("token seqs %s", got)
	}
	if text := streamText(evs); text != "It was the best of times" || dones != 1 || evs[len(evs)-1].Type != EventDone || evs[len(evs)-1].Status != store.StatusSettled {
		t.Fatalf("stream text %q, %d done events, last %+v", text, dones, evs[len(evs)-1])
	}
	waitFor(t, "the follower stream closed", func() bool { return testutil.ToFloat64(h2.s.metrics.remoteFollowers) == 0 })
}

// recordingRelay records what a relay writes.
type recordingRelay struct {
	batches chan []store.Token
	dropped chan string
}

func (r *recordingRelay) RequestStream(context.Context, string) error { return nil }
func (r *recordingRelay) RelayTokens(_ context.Context, _ string, toks []store.Token) error {
	r.batches <- append([]store.Token(nil), toks...)
	return nil
}

func (r *recordingRelay) RelayedTokens(context.Context, string, int, int) ([]store.Token, error) {
	return nil, nil
}
func (r *recordingRelay) DropRelayedTokens(_ context.Context, id string) error {
	r.dropped <- id
	return nil
}

// TestRelayWritesOnlyReleasedTokens: the payment gate holds for followers
// on other coordinators too. A token held (the job's payment not yet good
// for it) is not in the relay's first write beside the released one before
// it; it goes out once released, in order, and the relay drops the rows
// when the job's stream ends.
func TestRelayWritesOnlyReleasedTokens(t *testing.T) {
	h := newHarness(t, 0)
	hb := newHub(1)
	hb.token("paid", true)
	hb.token(" unpaid", false)
	rec := &recordingRelay{batches: make(chan []store.Token, 8), dropped: make(chan string, 1)}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { h.s.relay(ctx, rec, "j1", hb, &relayRun{cancel: cancel}); close(done) }()
	next := func() []store.Token {
		t.Helper()
		select {
		case b := <-rec.batches:
			return b
		case <-time.After(20 * time.Second):
			t.Fatal("the relay wrote nothing")
			return nil
		}
	}
	if b := next(); len(b) != 1 || b[0] != (store.Token{Attempt: 1, Seq: 1, Text: "paid"}) {
		t.Fatalf("first write %+v, want only the released token", b)
	}
	hb.release()
	if b := next(); len(b) != 1 || b[0] != (store.Token{Attempt: 1, Seq: 2, Text: " unpaid"}) {
		t.Fatalf("after the release %+v", b)
	}
	hb.done(Event{Type: EventDone, Status: store.StatusSettled})
	select {
	case id := <-rec.dropped:
		if id != "j1" {
			t.Fatalf("dropped %s", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the relay did not drop the rows of an ended job")
	}
	<-done
}

// TestRelayStopsWhenItsFollowersLeave: a relay kept alive by its
// followers' asks goes on past followerGone; once no follower has asked
// for followerGone it stops and drops the rows, though the job still
// runs, and writes nothing more.
func TestRelayStopsWhenItsFollowersLeave(t *testing.T) {
	h := newHarness(t, 0)
	hb := newHub(1)
	hb.token("a", true)
	rec := &recordingRelay{batches: make(chan []store.Token, 8), dropped: make(chan string, 1)}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	r := &relayRun{cancel: cancel}
	r.heard.Store(h.clock.Now().UnixNano())
	done := make(chan struct{})
	go func() { h.s.relay(ctx, rec, "j1", hb, r); close(done) }()
	next := func() []store.Token {
		t.Helper()
		select {
		case b := <-rec.batches:
			return b
		case <-time.After(20 * time.Second):
			t.Fatal("the relay wrote nothing")
			return nil
		}
	}
	if b := next(); len(b) != 1 || b[0].Text != "a" {
		t.Fatalf("first write %+v", b)
	}
	// Past followerGone since the relay began, but a follower asked just
	// now (startRelay on its "<id> follow"): the relay goes on.
	h.clock.Advance(followerGone + time.Second)
	r.heard.Store(h.clock.Now().UnixNano())
	hb.token("b", true)
	if b := next(); len(b) != 1 || b[0].Text != "b" {
		t.Fatalf("second write %+v", b)
	}
	// No ask for longer than followerGone: the relay stops at its next
	// check and drops the job's rows while the job still runs.
	h.clock.Advance(followerGone + time.Second)
	select {
	case id := <-rec.dropped:
		if id != "j1" {
			t.Fatalf("dropped %s", id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the relay went on with no follower")
	}
	<-done
	hb.token("c", true)
	select {
	case b := <-rec.batches:
		t.Fatalf("a stopped relay wrote %+v", b)
	default:
	}
}

// TestDriverStopsRelayingWhenTheRemoteFollowerLeaves: coordinator 1
// drives a job that a customer follows on coordinator 2; the customer
// hangs up while the job runs, and coordinator 1 stops relaying it once
// no ask came for followerGone.
func TestDriverStopsRelayingWhenTheRemoteFollowerLeaves(t *testing.T) {
	h1, h2 := sharedPair(t)
	h1.fund(100 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	m1 := h1.addMiner(coin.Unit)
	j := h1.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: coin.Unit, TTLSeconds: 600})
	job := m1.nextJob()
	sub, err := h2.s.Follow(h2.ctx, h1.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	m1.send(minerproto.Envelope{Type: minerproto.TypeToken, JobID: job.ID, Attempt: job.Attempt, Seq: 1, Text: "It"})
	if e := nextToken(t, sub.Events); e.Text != "It" {
		t.Fatalf("token %+v", e)
	}
	relaying := func() bool {
		h1.s.mu.Lock()
		defer h1.s.mu.Unlock()
		return h1.s.relays[j.ID] != nil
	}
	if !relaying() {
		t.Fatal("coordinator 1 does not relay the followed job")
	}
	sub.Cancel()
	waitFor(t, "the follower stream closed", func() bool { return testutil.ToFloat64(h2.s.metrics.remoteFollowers) == 0 })
	// An ask the follower sent just before it hung up may reach coordinator
	// 1 after a clock advance (NOTIFY is asynchronous), which restarts its
	// followerGone wait: advance again, every half second of real time,
	// until the relay's check sees no ask for longer than followerGone.
	last := time.Time{}
	waitFor(t, "coordinator 1 to stop relaying", func() bool {
		if time.Since(last) > 500*time.Millisecond {
			h1.clock.Advance(followerGone + time.Second)
			last = time.Now()
		}
		return !relaying()
	})
	if h1.job(j.ID).Status != store.StatusRunning {
		t.Fatalf("the job is %s, want still running", h1.job(j.ID).Status)
	}
}

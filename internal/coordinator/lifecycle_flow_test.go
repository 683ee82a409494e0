package coordinator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// woken reports whether the dispatcher has a pending wake-up, and takes it.
func woken(s *Service) bool {
	select {
	case <-s.wake:
		return true
	default:
		return false
	}
}

// TestFreedSlotWakesTheDispatcher: when a miner finishes, the dispatcher is
// woken at once for the job waiting for that slot, instead of at its next
// periodic pass. The coordinator's loops do not run here: the test drives
// the dispatcher's passes itself, so only the finished job can have woken
// it.
func TestFreedSlotWakesTheDispatcher(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	_, coord := newKey(t)
	chain := newFakeChain(clock, coord, releaseDelay)
	st, err := store.OpenSQLite(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	s, err := New(ctx, Config{Store: st, View: chain, Sender: chain, Address: coord, Logger: testLogger(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, s: s, chain: chain, clock: clock, st: st}
	_, cust := newKey(t)
	if h.tenant, h.apiKey, err = s.AddTenant(ctx, "customer", cust); err != nil {
		t.Fatal(err)
	}
	h.fund(100 * coin.Unit)
	s.followJobs(ctx)
	m := h.addMiner(coin.Unit) // one slot
	first := h.submit(JobRequest{Model: testModel, Prompt: "one", MaxTokens: 8})
	second := h.submit(JobRequest{Model: testModel, Prompt: "two", MaxTokens: 8})
	woken(s)
	s.dispatchOnce()
	j := m.nextJob()
	if j.ID != first.ID {
		t.Fatalf("first dispatch is %s, want the first job %s", j.ID, first.ID)
	}
	s.dispatchOnce() // the slot is busy: nothing to place
	if got := h.job(second.ID).Status; got != store.StatusQueued {
		t.Fatalf("second job is %s while the only slot is busy", got)
	}
	woken(s) // whatever woke it so far has been handled
	m.finish(j, "done", 4)
	if !woken(s) {
		t.Fatal("the miner's slot came free and the dispatcher was not woken: the next job waits for the periodic pass")
	}
	s.dispatchOnce()
	if j2 := m.nextJob(); j2.ID != second.ID {
		t.Fatalf("after the first finished the miner got %s, want %s", j2.ID, second.ID)
	}
}

// TestQueuedJobThatNeverRunsCostsNoTransaction: a deposit job's escrow is
// created on chain when the job is dispatched. One that waits for a miner
// until its cutoff sends nothing to the chain, and its reservation of the
// deposit ends with it.
func TestQueuedJobThatNeverRunsCostsNoTransaction(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(coin.Unit)
	// A miner registered on chain but not connected: jobs are accepted and wait.
	_, addr := newKey(t)
	h.chain.mu.Lock()
	h.chain.miners = append(h.chain.miners, ChainMiner{Address: addr, Models: []string{testModel}, PricePer1k: coin.Unit, Stake: 100 * coin.Unit, Status: "active"})
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	req := JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: coin.Unit, TTLSeconds: 60}
	j := h.submit(req)
	if _, err := h.s.Submit(h.ctx, h.tenant, req); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("a second job on a fully reserved deposit: %v", err)
	}
	h.clock.Advance(61 * time.Second)
	h.s.expireDue()
	if got := h.job(j.ID).Status; got != store.StatusExpired {
		t.Fatalf("job is %s after its TTL", got)
	}
	if sent := h.chain.sentTypes(); len(sent) != 0 {
		t.Fatalf("a job that never ran sent %v", sent)
	}
	if _, err := h.s.Submit(h.ctx, h.tenant, req); err != nil {
		t.Fatalf("the expired job still holds the deposit: %v", err)
	}
}

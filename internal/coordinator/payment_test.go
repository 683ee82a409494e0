package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

const releaseDelay = 600 * time.Second

func TestDepositJobStreamsBeforeAnyBlockAndSettles(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	m := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100})
	if want := h.clock.Now().Add(releaseDelay - 30*time.Second); !j.PaidUntil.Equal(want) {
		t.Fatalf("paid until %v, want the deposit read's block time + release delay - margin = %v", j.PaidUntil, want)
	}
	sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	mj := m.nextJob()
	m.tokens(mj, "Once", " upon")
	// No block has been committed since the deposit: the tokens flow
	// within the deposit's window, without waiting for the chain.
	if e := recvToken(t, sub.Events); e.Text != "Once" || e.Seq != 1 || e.Attempt != 1 {
		t.Fatalf("first token %+v", e)
	}
	if cj := h.chain.job(j.ID); cj.Status != "" {
		t.Fatalf("the job is already on chain (%s): the test proves nothing", cj.Status)
	}
	m.finish(mj, "Once upon", 2)
	if got := h.waitStatus(j.ID, store.StatusCompleted); got.Result != "Once upon" || got.OutputHeld {
		t.Fatalf("completed job %+v", got)
	}
	h.waitSent(jobs.TypeSettle, 1) // settlement goes out once the result is stored
	h.block()
	h.block()
	got := h.waitStatus(j.ID, store.StatusSettled)
	price := jobs.PriceFor(2, coin.Unit)
	if got.Paid != price || h.chain.balance(m.addr) != price {
		t.Fatalf("paid %s, miner has %s, want %s", got.Paid, h.chain.balance(m.addr), price)
	}
	if sent := h.chain.sentTypes(); len(sent) != 3 || sent[0] != jobs.TypeCreateFor || sent[1] != jobs.TypeAssign || sent[2] != jobs.TypeSettle {
		t.Fatalf("transactions %v", sent)
	}
}

// walletJob creates a job from the tenant's wallet on chain (jobs/create)
// and, with cancel, the customer's jobs/cancel in the same block.
func walletJob(t *testing.T, h *harness, cancel bool) string {
	t.Helper()
	raw := make([]byte, jobs.IDLen)
	_, _ = rand.Read(raw)
	ph := minerproto.PromptHash("hi", nil)
	h.chain.customerTx(t, h.tenant.Address, jobs.TypeCreate, jobs.MsgCreate{
		Spec:        jobs.Spec{ID: raw, Model: testModel, PromptHash: ph[:], MaxTokens: 100, MaxPrice: coin.Unit, TTLSeconds: 3600},
		Coordinator: h.chain.coord[:]})
	if cancel {
		h.chain.customerTx(t, h.tenant.Address, jobs.TypeCancel, jobs.MsgCancel{ID: raw})
	}
	h.chain.commit()
	return hex.EncodeToString(raw)
}

// Attack (a), first half: the customer escrows a job and cancels it in the
// same block. The cancellation is only scheduled, the coordinator's
// assignment lands first, and the miner is paid.
func TestWalletJobCanceledInItsOwnBlockIsAssignedFirstAndPaid(t *testing.T) {
	h := newHarness(t, releaseDelay)
	m := h.addMiner(coin.Unit)
	id := walletJob(t, h, true)
	cancelAt := h.chain.job(id).CancelAt
	if cancelAt.IsZero() {
		t.Fatal("the chain did not schedule the cancellation")
	}
	j := h.submit(JobRequest{ID: id, Model: testModel, Prompt: "hi", MaxTokens: 100})
	if want := cancelAt.Add(-30 * time.Second); !j.PaidUntil.Equal(want) {
		t.Fatalf("paid until %v, want cancel_at - margin %v", j.PaidUntil, want)
	}
	sub, err := h.s.Follow(h.ctx, h.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	mj := m.nextJob()
	m.tokens(mj, "paid")
	if e := recvToken(t, sub.Events); e.Text != "paid" {
		t.Fatalf("token %+v", e)
	}
	h.waitSent(jobs.TypeAssign, 1)
	h.clock.Advance(time.Minute)
	h.block() // the assignment lands before cancel_at and voids it
	if got := h.job(id); !got.PaymentConfirmed || !got.PaidUntil.After(cancelAt) {
		t.Fatalf("after the assignment: confirmed %v, paid until %v", got.PaymentConfirmed, got.PaidUntil)
	}
	m.finish(mj, "paid", 1)
	h.waitSent(jobs.TypeSettle, 1)
	h.block()
	h.waitStatus(id, store.StatusSettled)
	h.clock.Advance(releaseDelay)
	h.chain.commit() // cancel_at passes: nothing happens to a settled job
	if cj := h.chain.job(id); cj.Status != ChainSettled || h.chain.balance(m.addr) != jobs.PriceFor(1, coin.Unit) {
		t.Fatalf("on chain: %s, miner has %s", cj.Status, h.chain.balance(m.addr))
	}
}

// Attack (a), second half: the assignment cannot land before the
// cancellation's window closes. No token reaches the customer, the miner
// is told to stop, the job fails payment_not_confirmed and its receipt is
// never settled.
func TestWalletJobWhoseWindowClosesBeforeAssignmentShowsNothing(t *testing.T) {
	h := newHarness(t, releaseDelay)
	m := h.addMiner(coin.Unit)
	h.s.drop(m.mc, "away") // registered, not connected: the job waits
	id := walletJob(t, h, true)
	h.chain.mu.Lock()
	h.chain.censor = true // the coordinator's transactions do not make it into blocks
	h.chain.mu.Unlock()
	h.submit(JobRequest{ID: id, Model: testModel, Prompt: "hi", MaxTokens: 100})
	sub, err := h.s.Follow(h.ctx, h.tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	h.clock.Advance(releaseDelay - 30*time.Second) // the window closes while the job waits for a miner
	m.connect()
	mj := m.nextJob()
	m.tokens(mj, "never", " shown")
	m.finish(mj, "never shown", 2)
	got := h.waitStatus(id, store.StatusCompleted)
	if got.Result != "" || got.Receipt != nil || !got.OutputHeld {
		t.Fatalf("a held result was shown: %+v", got)
	}
	h.clock.Advance(30 * time.Second)
	h.block() // cancel_at: the chain refunds the customer
	h.followAll()
	got = h.waitStatus(id, store.StatusFailed)
	if got.ErrorCode != lifecycle.CodePaymentNotConfirmed || got.Result != "" {
		t.Fatalf("failed job %+v", got)
	}
	evs := drain(t, sub.Events)
	if text, n := tokensOf(evs); n != 0 {
		t.Fatalf("%d tokens (%q) reached the customer", n, text)
	}
	if last := evs[len(evs)-1]; last.Type != EventDone || last.Code != lifecycle.CodePaymentNotConfirmed {
		t.Fatalf("last event %+v", last)
	}
	if cj := h.chain.job(id); cj.Status != ChainCanceled || h.chain.balance(m.addr) != 0 {
		t.Fatalf("on chain %s, miner paid %s", cj.Status, h.chain.balance(m.addr))
	}
}

// A running job the chain cancels is stopped on its miner; its late
// result is ignored.
func TestChainCancelStopsTheRunningMiner(t *testing.T) {
	h := newHarness(t, releaseDelay)
	id := walletJob(t, h, true)
	h.chain.mu.Lock()
	h.chain.censor = true
	h.chain.mu.Unlock()
	m := h.addMiner(coin.Unit)
	h.submit(JobRequest{ID: id, Model: testModel, Prompt: "hi", MaxTokens: 100})
	mj := m.nextJob()
	h.clock.Advance(releaseDelay)
	h.block()
	if e := m.next(); e.Type != minerproto.TypeCancel || e.JobID != id {
		t.Fatalf("miner got %+v, want a cancel", e)
	}
	m.finish(mj, "late", 1)
	if got := h.job(id); got.Status != store.StatusFailed || got.Result != "" {
		t.Fatalf("after a late result: %+v", got)
	}
	for _, typ := range h.chain.sentTypes() {
		if typ == jobs.TypeSettle {
			t.Fatal("a receipt for a job the chain canceled was sent for settlement")
		}
	}
}

// Attack (b): a deposit whose whole amount is announced for withdrawal.
func TestDepositBeingWithdrawnIsNotSpendable(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	h.addMiner(coin.Unit)
	h.chain.customerTx(t, h.tenant.Address, jobs.TypeWithdraw, jobs.MsgWithdraw{Coordinator: h.chain.coord[:], Amount: 10 * coin.Unit})
	h.chain.commit()
	_, err := h.s.Submit(h.ctx, h.tenant, JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: coin.Unit})
	if status, code := HTTPStatus(err); !errors.Is(err, ErrInsufficientDeposit) || status != 402 || code != "insufficient_deposit" {
		t.Fatalf("got %v (%d %s), want 402 insufficient_deposit", err, status, code)
	}
}

// Attack (b), the other order: the withdrawal is still in the mempool when
// the job is submitted. The money stays in the deposit for release_delay,
// create_for draws on it, and the job is paid.
func TestWithdrawalInFlightStillPaysTheJob(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	m := h.addMiner(coin.Unit)
	h.chain.customerTx(t, h.tenant.Address, jobs.TypeWithdraw, jobs.MsgWithdraw{Coordinator: h.chain.coord[:], Amount: 10 * coin.Unit})
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: 5 * coin.Unit})
	sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	mj := m.nextJob()
	m.tokens(mj, "tok")
	if e := recvToken(t, sub.Events); e.Text != "tok" {
		t.Fatalf("token %+v", e)
	}
	h.waitSent(jobs.TypeAssign, 1)
	h.block() // the withdrawal announcement lands before the create_for
	if got := h.job(j.ID); !got.PaymentConfirmed || !got.OnChain {
		t.Fatalf("after the block: %+v (chain refused %v)", got, h.chain.failed)
	}
	m.finish(mj, "tok", 1)
	h.waitSent(jobs.TypeSettle, 1)
	h.block()
	h.waitStatus(j.ID, store.StatusSettled)
	price := jobs.PriceFor(1, coin.Unit)
	h.clock.Advance(releaseDelay)
	h.chain.commit() // the withdrawal pays what is left
	if h.chain.balance(m.addr) != price {
		t.Fatalf("miner has %s, want %s", h.chain.balance(m.addr), price)
	}
	if got, want := h.chain.balance(h.tenant.Address), 10*coin.Unit-jobs.DefaultParams().MaxCost(price); got != want {
		t.Fatalf("customer withdrew %s, want %s", got, want)
	}
}

func TestReservationsStopConcurrentOverdraw(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(coin.Unit)
	h.addMiner(coin.Unit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.s.Submit(h.ctx, h.tenant, JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: coin.Unit * 6 / 10})
			if err != nil && !errors.Is(err, ErrInsufficientDeposit) {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				accepted++
			}
		}()
	}
	wg.Wait()
	if accepted != 1 {
		t.Fatalf("%d jobs of 0.6 accepted on a deposit of 1", accepted)
	}
}

// A deposit read older than the block where a job's escrow left the
// deposit still counts that escrow: the job's reservation must stand.
func TestReservationOutlivesALaggingDepositRead(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(coin.Unit)
	h.addMiner(coin.Unit)
	price := coin.Unit * 6 / 10
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: price})
	h.waitSent(jobs.TypeCreateFor, 1)
	h.block() // created at this height
	if !h.job(j.ID).OnChain {
		t.Fatal("create_for not seen")
	}
	h.chain.mu.Lock()
	h.chain.lag = true // deposit reads answer from the block before: the full deposit
	h.chain.mu.Unlock()
	if _, err := h.s.Submit(h.ctx, h.tenant, JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: price}); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("lagging read: %v, want insufficient_deposit", err)
	}
	h.chain.mu.Lock()
	h.chain.lag = false
	h.chain.mu.Unlock()
	if _, err := h.s.Submit(h.ctx, h.tenant, JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: coin.Unit * 3 / 10}); err != nil {
		t.Fatalf("a job within what is left: %v", err)
	}
}

func TestFailedJobKeepsItsReservationUntilTheChainAccountsForIt(t *testing.T) {
	h := newHarness(t, releaseDelay, func(c *Config) { c.MaxAttempts = 2 })
	h.fund(coin.Unit)
	a, b := h.addMiner(coin.Unit), h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: coin.Unit, TTLSeconds: 600})
	for range 2 {
		var e minerproto.Envelope
		select { // whichever miner got it declines
		case e = <-a.mc.send:
			a.send(minerproto.Envelope{Type: minerproto.TypeReject, JobID: e.Job.ID, Attempt: e.Job.Attempt, Reason: "busy"})
		case e = <-b.mc.send:
			b.send(minerproto.Envelope{Type: minerproto.TypeReject, JobID: e.Job.ID, Attempt: e.Job.Attempt, Reason: "busy"})
		case <-time.After(20 * time.Second):
			t.Fatal("no dispatch")
		}
	}
	got := h.waitStatus(j.ID, store.StatusFailed)
	if got.Attempt != 2 || len(got.Excluded) != 2 {
		t.Fatalf("failed job %+v", got)
	}
	again := JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, MaxPrice: coin.Unit}
	// Its create_for is on its way: the deposit is not free yet.
	if _, err := h.s.Submit(h.ctx, h.tenant, again); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("before the block: %v", err)
	}
	h.block() // created and assigned: the escrow is out of the deposit until the TTL
	if _, err := h.s.Submit(h.ctx, h.tenant, again); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("after the block: %v", err)
	}
	h.clock.Advance(601 * time.Second)
	h.block() // the chain refunds it at the TTL
	if _, err := h.s.Submit(h.ctx, h.tenant, again); err != nil {
		t.Fatalf("after the refund: %v", err)
	}
}

func TestRunningJobExpiresAtItsCutoff(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(coin.Unit)
	m := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100, TTLSeconds: 60})
	sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	mj := m.nextJob()
	m.tokens(mj, "a")
	h.clock.Advance(45 * time.Second) // a 60 s job's margin is a quarter of it
	h.s.expireDue()
	if e := m.next(); e.Type != minerproto.TypeCancel {
		t.Fatalf("miner got %s, want cancel", e.Type)
	}
	m.tokens(mj, "b") // too late: not shown
	evs := drain(t, sub.Events)
	if text, _ := tokensOf(evs); text != "a" {
		t.Fatalf("text %q", text)
	}
	if last := evs[len(evs)-1]; last.Status != store.StatusExpired {
		t.Fatalf("last event %+v", last)
	}
}

func TestQueuedJobCanceledOnChainStopsBeingDriven(t *testing.T) {
	h := newHarness(t, releaseDelay)
	m := h.addMiner(coin.Unit)
	h.s.drop(m.mc, "away") // registered, not connected: the job waits
	id := walletJob(t, h, true)
	h.submit(JobRequest{ID: id, Model: testModel, Prompt: "hi", MaxTokens: 100})
	h.clock.Advance(releaseDelay)
	h.chain.commit()
	h.followAll()
	got := h.waitStatus(id, store.StatusFailed)
	if got.ErrorCode != lifecycle.CodePaymentNotConfirmed {
		t.Fatalf("%+v", got)
	}
	h.s.mu.Lock()
	_, live := h.s.live[id]
	h.s.mu.Unlock()
	if live {
		t.Fatal("a job the chain canceled is still driven")
	}
}

// With no release delay (the chain before release_delay), nothing is safe
// before the chain confirms: output is held, then released in order.
func TestHeldOutputIsReleasedInOrderWhenTheChainConfirms(t *testing.T) {
	h := newHarness(t, 0)
	h.fund(coin.Unit)
	m := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100})
	sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	mj := m.nextJob()
	m.tokens(mj, "one", " two")
	m.finish(mj, "one two", 2)
	got := h.waitStatus(j.ID, store.StatusCompleted)
	if !got.OutputHeld || got.Result != "" {
		t.Fatalf("before confirmation: %+v", got)
	}
	if late, err := h.s.Follow(h.ctx, h.tenant, j.ID); err != nil || late.Text != "" {
		t.Fatalf("a new subscriber sees %q (%v)", late.Text, err)
	} else {
		late.Cancel()
	}
	h.waitSent(jobs.TypeAssign, 1)
	h.block()
	var seen []string
	for len(seen) < 3 {
		e := recv(t, sub.Events)
		switch {
		case e.Type == EventToken:
			seen = append(seen, e.Text)
		case e.Status == store.StatusCompleted:
			seen = append(seen, "completed")
		}
	}
	if seen[0] != "one" || seen[1] != " two" || seen[2] != "completed" {
		t.Fatalf("released %v", seen)
	}
	if got := h.job(j.ID); got.Result != "one two" {
		t.Fatalf("result %q", got.Result)
	}
}

// The store's and the chain's I/O happen off the coordinator's lock: with
// both stuck, tokens still flow.
func TestStuckStoreAndChainDoNotStallStreams(t *testing.T) {
	base := newHarness(t, releaseDelay) // for its chain and clock
	mem, err := store.OpenSQLite(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	jam := &jammableStore{Store: mem, gate: make(chan struct{})}
	h := startHarness(t, base.chain, jam)
	h.fund(coin.Unit)
	m := h.addMiner(coin.Unit)
	h.chain.mu.Lock()
	h.chain.sendGate = make(chan struct{}) // every Send blocks
	h.chain.mu.Unlock()
	defer close(h.chain.sendGate)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100}) // Submit's own write is synchronous
	jam.jammed.Store(true)
	defer close(jam.gate)
	sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	mj := m.nextJob() // dispatch and ack: status changes the writer is stuck storing
	m.tokens(mj, "still", " flowing")
	if e := recvToken(t, sub.Events); e.Text != "still" {
		t.Fatalf("token %+v", e)
	}
	if _, err := h.s.Job(h.ctx, h.tenant, j.ID); err != nil {
		t.Fatal(err)
	}
}

// jammableStore blocks every job write once jammed, until gate closes.
type jammableStore struct {
	store.Store
	jammed atomic.Bool
	gate   chan struct{}
}

func (b *jammableStore) PutJob(ctx context.Context, j *store.Job) error {
	if b.jammed.Load() {
		<-b.gate
	}
	return b.Store.PutJob(ctx, j)
}

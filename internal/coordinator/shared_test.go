package coordinator

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

const testLease = time.Second

// sharedPair starts two coordinators on one PostgreSQL database and one
// chain, with the same chain key (a job's coordinator on chain is one
// address; the processes behind it share the work).
func sharedPair(t *testing.T, tune ...func(*Config)) (h1, h2 *harness) {
	t.Helper()
	dsn := pgtest.DSN(t)
	open := func(owner string) store.Store {
		st, err := store.OpenPostgres(context.Background(), dsn, store.PostgresOptions{Owner: owner, Lease: testLease})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	tune = append([]func(*Config){func(c *Config) { c.Lease = testLease }}, tune...)
	h1 = startHarness(t, newFakeChain(&fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, newAddr(t), releaseDelay), open("c1"), tune...)
	h2 = startHarness(t, h1.chain, open("c2"), tune...)
	return h1, h2
}

func (h *harness) isLive(id string) bool {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return h.s.live[id] != nil
}

func countSent(c *fakeChain, typ string) int {
	n := 0
	for _, s := range c.sentTypes() {
		if s == typ {
			n++
		}
	}
	return n
}

// TestCoordinatorThatDiesHasItsJobTakenOverAndSettledOnce: coordinator 1
// takes a job and its miner starts it; coordinator 2 leaves it alone while
// 1 lives (one coordinator drives a job), and a customer following it on
// coordinator 2 sees its progress. Coordinator 1 dies without a clean
// shutdown; once its lease runs out coordinator 2 takes the job over,
// dispatches it to its own miner, settles it, and the customer's stream on
// coordinator 2 ends with the result. The chain saw one settlement.
func TestCoordinatorThatDiesHasItsJobTakenOverAndSettledOnce(t *testing.T) {
	h1, h2 := sharedPair(t)
	h1.fund(100 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	m1 := h1.addMiner(coin.Unit)
	m2 := h2.addMiner(coin.Unit)

	j := h1.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: coin.Unit, TTLSeconds: 600})
	first := m1.nextJob()
	if first.ID != j.ID {
		t.Fatalf("miner 1 got %s", first.ID)
	}
	m1.tokens(first, "It", " was")

	// The customer follows the job on coordinator 2, which does not drive it.
	sub, err := h2.s.Follow(h2.ctx, h1.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	// Three leases pass with coordinator 1 alive: coordinator 2 keeps off.
	time.Sleep(3 * testLease)
	if h2.isLive(j.ID) {
		t.Fatal("coordinator 2 took over a job coordinator 1 drives and renews")
	}
	select {
	case e := <-m2.mc.send:
		t.Fatalf("miner 2 got %s for a job coordinator 1 drives", e.Type)
	default:
	}
	if got, err := h2.s.Job(h2.ctx, h1.tenant, j.ID); err != nil || got.Status != store.StatusRunning {
		t.Fatalf("coordinator 2 reads the job as %+v, %v", got, err)
	}

	h1.kill() // no clean shutdown: its leases are left to expire
	second := m2.nextJob()
	if second.ID != j.ID || second.Attempt <= first.Attempt {
		t.Fatalf("miner 2 got %s attempt %d (first attempt %d)", second.ID, second.Attempt, first.Attempt)
	}
	if !h2.isLive(j.ID) {
		t.Fatal("coordinator 2 drives the job but does not hold it live")
	}
	m2.finish(second, "It was the best", 4)
	waitFor(t, "settlement sent", func() bool { return countSent(h2.chain, "jobs/settle") >= 1 })
	h2.chain.commit()
	h2.s.followJobs(h2.ctx)
	var done *store.Job
	waitFor(t, "settled", func() bool {
		done, err = h2.s.Job(h2.ctx, h1.tenant, j.ID)
		return err == nil && done.Status == store.StatusSettled
	})
	if done.Miner != m2.addr || done.Result != "It was the best" {
		t.Fatalf("settled job: miner %s result %q", done.Miner, done.Result)
	}
	if n := countSent(h2.chain, "jobs/settle"); n != 1 {
		t.Fatalf("%d settlements sent, want 1 (sent: %v)", n, h2.chain.sentTypes())
	}
	cj := h2.chain.job(j.ID)
	if cj.Status != ChainSettled {
		t.Fatalf("chain job %+v", cj)
	}
	evs := drain(t, sub.Events)
	text := streamText(evs) // attempt 1's relayed tokens, "requeued", attempt 2's text
	if text != "It was the best" || evs[len(evs)-1].Type != EventDone || evs[len(evs)-1].Status != store.StatusSettled {
		t.Fatalf("the customer on coordinator 2 saw %q, events %+v", text, evs)
	}
	if !slices.ContainsFunc(evs, func(e Event) bool { return e.Type == EventStatus && e.Status == store.StatusCompleted }) {
		t.Fatalf("no completed status among %+v", evs)
	}
}

// partitioned is a shared store whose coordinator can be cut off from
// renewing and claiming leases (as by a network partition) while its other
// writes still arrive, later, as they would after the partition heals.
type partitioned struct {
	*store.Postgres
	cut atomic.Bool
}

func (p *partitioned) RenewLeases(ctx context.Context, ids []string) ([]string, error) {
	if p.cut.Load() {
		return nil, errors.New("partitioned")
	}
	return p.Postgres.RenewLeases(ctx, ids)
}

func (p *partitioned) ClaimExpired(ctx context.Context, n int) ([]*store.Job, error) {
	if p.cut.Load() {
		return nil, errors.New("partitioned")
	}
	return p.Postgres.ClaimExpired(ctx, n)
}

// TestCutOffCoordinatorCannotSettleAJobTakenOver: coordinator 1 is cut off
// for longer than a lease while its miner runs a job; coordinator 2 takes
// the job over and runs it again on its miner. When coordinator 1's miner
// then delivers its result, coordinator 1 can neither store nor settle
// it: the job settles once, through coordinator 2, for its miner.
func TestCutOffCoordinatorCannotSettleAJobTakenOver(t *testing.T) {
	dsn := pgtest.DSN(t)
	pg := func(owner string) *store.Postgres {
		st, err := store.OpenPostgres(context.Background(), dsn, store.PostgresOptions{Owner: owner, Lease: testLease})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	lease := func(c *Config) { c.Lease = testLease }
	p1 := &partitioned{Postgres: pg("c1")}
	h1 := startHarness(t, newFakeChain(&fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, newAddr(t), releaseDelay), p1, lease)
	h2 := startHarness(t, h1.chain, pg("c2"), lease)
	h1.fund(100 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	m1 := h1.addMiner(coin.Unit)
	m2 := h2.addMiner(coin.Unit)

	j := h1.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: coin.Unit, TTLSeconds: 600})
	first := m1.nextJob()
	p1.cut.Store(true)
	second := m2.nextJob() // after coordinator 1's lease ran out
	if second.ID != j.ID {
		t.Fatalf("miner 2 got %s", second.ID)
	}
	m1.finish(first, "the old attempt", 4)
	h1.s.writer.Flush(h1.ctx) // its write was refused (ErrLeaseLost), not retried forever
	m2.finish(second, "the new attempt", 4)
	waitFor(t, "settlement sent", func() bool { return countSent(h1.chain, "jobs/settle") >= 1 })
	h2.chain.commit()
	h2.s.followJobs(h2.ctx)
	waitFor(t, "settled", func() bool {
		got, err := h2.s.Job(h2.ctx, h1.tenant, j.ID)
		return err == nil && got.Status == store.StatusSettled
	})
	if n := countSent(h1.chain, "jobs/settle"); n != 1 {
		t.Fatalf("%d settlements sent, want 1", n)
	}
	stored, err := p1.Job(context.Background(), j.ID)
	if err != nil || stored.Result != "the new attempt" || stored.Miner != m2.addr {
		t.Fatalf("stored job: %+v %v", stored, err)
	}
	if cj := h1.chain.job(j.ID); cj.Miner == nil || *cj.Miner != m2.addr {
		t.Fatalf("chain job paid %v, want miner 2", cj.Miner)
	}
}

// TestDepositReservationsHoldAcrossCoordinators: a job waiting on
// coordinator 1 holds the tenant's whole deposit; coordinator 2 refuses a
// second job against it, and accepts one once the first has ended.
func TestDepositReservationsHoldAcrossCoordinators(t *testing.T) {
	h1, h2 := sharedPair(t)
	h1.fund(3 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	// A miner registered on chain but connected nowhere: jobs are accepted and wait.
	_, addr := newKey(t)
	h1.chain.mu.Lock()
	h1.chain.miners = append(h1.chain.miners, ChainMiner{Address: addr, Models: []string{testModel}, PricePer1k: coin.Unit, Stake: 100 * coin.Unit, Status: "active"})
	h1.chain.mu.Unlock()
	h1.s.refreshRegistry(h1.ctx)
	h2.s.refreshRegistry(h2.ctx)
	req := JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: 2 * coin.Unit, TTLSeconds: 60}
	j := h1.submit(req) // no miner anywhere: it waits, holding 2 of 3
	if _, err := h2.s.Submit(h2.ctx, h1.tenant, req); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("coordinator 2 accepted a job the deposit cannot cover beside coordinator 1's: %v", err)
	}
	small := req
	small.MaxPrice = coin.Unit
	if _, err := h2.s.Submit(h2.ctx, h1.tenant, small); err != nil {
		t.Fatalf("a job the rest of the deposit covers: %v", err)
	}
	h1.clock.Advance(61 * time.Second)
	h1.s.expireDue()
	h1.s.writer.Flush(h1.ctx)
	if got := h1.job(j.ID).Status; got != store.StatusExpired {
		t.Fatalf("job is %s after its TTL", got)
	}
	h2.s.expireDue() // (one clock: both coordinators read the fake chain's)
	h2.s.writer.Flush(h2.ctx)
	if _, err := h2.s.Submit(h2.ctx, h1.tenant, req); err != nil {
		t.Fatalf("the expired jobs still hold the deposit: %v", err)
	}
}

// TestJobMovesToTheCoordinatorWithAFreeMiner: coordinator 1 has no miner
// for a job; coordinator 2 has a free one. Coordinator 1 offers the job,
// coordinator 2 takes it, runs it on its miner and settles it, once; the
// customer streaming the job from coordinator 1 keeps its stream and gets
// the result and the end from there.
func TestJobMovesToTheCoordinatorWithAFreeMiner(t *testing.T) {
	h1, h2 := sharedPair(t)
	h1.fund(100 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	m2 := h2.addMiner(coin.Unit)
	h1.s.refreshRegistry(h1.ctx)

	j := h1.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: coin.Unit, TTLSeconds: 600})
	sub, err := h1.s.Follow(h1.ctx, h1.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	got := m2.nextJob()
	if got.ID != j.ID {
		t.Fatalf("miner 2 got %s", got.ID)
	}
	waitFor(t, "coordinator 1 to let the job go", func() bool { return !h1.isLive(j.ID) })
	m2.finish(got, "It was", 4)
	waitFor(t, "settlement sent", func() bool { return countSent(h2.chain, "jobs/settle") >= 1 })
	h2.chain.commit()
	h2.s.followJobs(h2.ctx)
	evs := drain(t, sub.Events)
	text, _ := tokensOf(evs)
	last := evs[len(evs)-1]
	if text != "It was" || last.Type != EventDone || last.Status != store.StatusSettled {
		t.Fatalf("the customer on coordinator 1 saw %q, events %+v", text, evs)
	}
	if n := countSent(h2.chain, "jobs/settle"); n != 1 {
		t.Fatalf("%d settlements sent, want 1", n)
	}
	waitFor(t, "the store watchers to forget the job", func() bool {
		h1.s.mu.Lock()
		defer h1.s.mu.Unlock()
		return len(h1.s.remote) == 0
	})
	if cj := h2.chain.job(j.ID); cj.Miner == nil || *cj.Miner != m2.addr || cj.Status != ChainSettled {
		t.Fatalf("chain job %+v", cj)
	}
}

// TestOfferIsLeftToCoordinatorsWhoseMinersCanAffordIt: a job coordinator 1
// has no free miner for is not taken by coordinator 2 when its only miner
// charges more than the job's max price (it would fail there); coordinator
// 1 runs it when its own miner frees up.
func TestOfferIsLeftToCoordinatorsWhoseMinersCanAffordIt(t *testing.T) {
	h1, h2 := sharedPair(t)
	h1.fund(100 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	m1 := h1.addMiner(coin.Unit)
	pricey := h2.addMiner(1000 * coin.Unit)
	h1.s.refreshRegistry(h1.ctx)

	req := JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: coin.Unit, TTLSeconds: 600}
	first := h1.submit(req)
	second := h1.submit(req)
	j1 := m1.nextJob()
	if j1.ID != first.ID {
		t.Fatalf("miner 1 got %s", j1.ID)
	}
	// Several balance passes (a third of a lease each) go by.
	time.Sleep(2 * testLease)
	select {
	case e := <-pricey.mc.send:
		t.Fatalf("the expensive miner on coordinator 2 got %s %s", e.Type, e.JobID)
	default:
	}
	if !h1.isLive(second.ID) || h2.isLive(second.ID) {
		t.Fatal("the second job left coordinator 1 for one whose miners cannot afford it")
	}
	m1.finish(j1, "It was", 4)
	if j2 := m1.nextJob(); j2.ID != second.ID {
		t.Fatalf("miner 1 got %s, want the second job back from its offer", j2.ID)
	}
}

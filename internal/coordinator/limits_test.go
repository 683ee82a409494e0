package coordinator

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

// idleMiner registers a miner on the shared fake chain that no coordinator
// has a session with: jobs are accepted and wait in the queue.
func idleMiner(t *testing.T, hs ...*harness) {
	t.Helper()
	_, addr := newKey(t)
	hs[0].chain.mu.Lock()
	hs[0].chain.miners = append(hs[0].chain.miners, ChainMiner{Address: addr, Models: []string{testModel}, PricePer1k: coin.Unit, Stake: 100 * coin.Unit, Status: "active"})
	hs[0].chain.mu.Unlock()
	for _, h := range hs {
		h.s.refreshRegistry(h.ctx)
	}
}

// TestSimultaneousSubmissionsOnTwoCoordinatorsCannotOverReserve: a
// deposit of 10 covers three jobs of 3; eight submissions of such jobs at
// the same moment, four on each coordinator, get exactly three through,
// and the others are refused for the deposit.
func TestSimultaneousSubmissionsOnTwoCoordinatorsCannotOverReserve(t *testing.T) {
	h1, h2 := sharedPair(t)
	h1.fund(10 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	idleMiner(t, h1, h2)
	req := JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: 3 * coin.Unit, TTLSeconds: 600}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	start := make(chan struct{})
	for i := range errs {
		h := []*harness{h1, h2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = h.s.Submit(h.ctx, h1.tenant, req)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrInsufficientDeposit):
			t.Fatalf("unexpected refusal: %v", err)
		}
	}
	if ok != 3 {
		t.Fatalf("%d of 8 jobs of 3 accepted against a deposit of 10, want 3", ok)
	}
}

// TestActiveJobLimitHoldsAcrossCoordinators: a tenant may have 3 jobs
// active; submitted alternately to two coordinators, the fourth is
// refused, on either.
func TestActiveJobLimitHoldsAcrossCoordinators(t *testing.T) {
	h1, h2 := sharedPair(t, func(c *Config) { c.Limits.MaxActiveJobs = 3 })
	h1.fund(100 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	idleMiner(t, h1, h2)
	req := JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: coin.Unit, TTLSeconds: 600}
	for i, h := range []*harness{h1, h2, h1} {
		if _, err := h.s.Submit(h.ctx, h1.tenant, req); err != nil {
			t.Fatalf("job %d: %v", i+1, err)
		}
	}
	for i, h := range []*harness{h2, h1} {
		if _, err := h.s.Submit(h.ctx, h1.tenant, req); !errors.Is(err, ErrQuotaExceeded) {
			t.Fatalf("coordinator %d took a fourth active job: %v", 2-i, err)
		}
	}
}

// TestWriteRateIsSharedByCoordinators: a tenant may burst 3 writes (and
// then one every 1,000 s): three write requests alternately to two
// coordinators pass the limiter, the fourth is answered 429 rate_limited,
// though each coordinator alone saw fewer than 3.
func TestWriteRateIsSharedByCoordinators(t *testing.T) {
	h1, h2 := sharedPair(t, func(c *Config) { c.Limits.WriteRate, c.Limits.WriteBurst = 0.001, 3 })
	s1, s2 := httptest.NewServer(h1.s.Handler()), httptest.NewServer(h2.s.Handler())
	defer s1.Close()
	defer s2.Close()
	post := func(url string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/jobs", strings.NewReader("{"))
		req.Header.Set("X-API-Key", h1.apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i, u := range []string{s1.URL, s2.URL, s1.URL} {
		if resp := post(u); resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 != 4 {
			t.Fatalf("write %d: %s, want the bad body refused (400), not the rate", i+1, resp.Status)
		}
	}
	resp := post(s2.URL)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth write on coordinator 2: %s (Retry-After %q), want 429", resp.Status, resp.Header.Get("Retry-After"))
	}
	if resp := post(s1.URL); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fifth write on coordinator 1: %s, want 429", resp.Status)
	}
}

// TestAllocationsHoldAcrossCoordinators: a tenant may hold 2 allocations;
// with one on each coordinator a third is refused on either, an agent
// allocated on one cannot allocate on the other, and the deposit cover
// allocations hold is not spendable by a job on either. Deallocating on
// coordinator 1 frees both the cover and the count.
func TestAllocationsHoldAcrossCoordinators(t *testing.T) {
	h1, h2 := sharedPair(t, func(c *Config) { c.Limits.MaxAllocations = 2 })
	h1.fund(6 * coin.Unit)
	h1.s.followJobs(h1.ctx)
	h1.addMiner(coin.Unit)
	h2.addMiner(coin.Unit)
	hour := int64(3600)
	if _, err := h1.s.Allocate(h1.ctx, h1.tenant, AllocateRequest{AgentID: "a1", DurationS: 2 * hour}); err != nil { // holds 2
		t.Fatal(err)
	}
	if _, err := h2.s.Allocate(h2.ctx, h1.tenant, AllocateRequest{AgentID: "a1", DurationS: hour}); !errors.Is(err, ErrAllocationExists) {
		t.Fatalf("agent a1 again on coordinator 2: %v", err)
	}
	if _, err := h2.s.Allocate(h2.ctx, h1.tenant, AllocateRequest{AgentID: "a2", DurationS: 2 * hour}); err != nil { // holds 2 more
		t.Fatal(err)
	}
	for i, h := range []*harness{h1, h2} {
		if _, err := h.s.Allocate(h.ctx, h1.tenant, AllocateRequest{AgentID: "a3", DurationS: 60}); !errors.Is(err, ErrQuotaExceeded) {
			t.Fatalf("a third allocation on coordinator %d: %v", i+1, err)
		}
	}
	// 6 deposited, 4 held by the two allocations: a job of 3 does not fit.
	idleMiner(t, h1, h2)
	req := JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 8, MaxPrice: 3 * coin.Unit, TTLSeconds: 600}
	if _, err := h2.s.Submit(h2.ctx, h1.tenant, req); !errors.Is(err, ErrInsufficientDeposit) {
		t.Fatalf("a job spending what allocations on both coordinators hold: %v", err)
	}
	if _, err := h1.s.Deallocate(h1.ctx, h1.tenant, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.s.Submit(h2.ctx, h1.tenant, req); err != nil {
		t.Fatalf("the job after coordinator 1's allocation ended: %v", err)
	}
	if _, err := h1.s.Allocate(h1.ctx, h1.tenant, AllocateRequest{AgentID: "a3", DurationS: 60}); err != nil {
		t.Fatalf("a second allocation beside coordinator 2's: %v", err)
	}
}

// TestWalletJobHandedToBothCoordinatorsIsStoredOnce: a customer's
// wallet-paid job handed to coordinator 1 and then to coordinator 2 is
// refused there as already submitted (job_exists, 409), not stored twice
// nor answered with a store failure.
func TestWalletJobHandedToBothCoordinatorsIsStoredOnce(t *testing.T) {
	h1, h2 := sharedPair(t)
	idleMiner(t, h1, h2)
	id := walletJob(t, h1, false)
	req := JobRequest{ID: id, Model: testModel, Prompt: "hi", MaxTokens: 100}
	h1.submit(req)
	if _, err := h2.s.Submit(h2.ctx, h1.tenant, req); !errors.Is(err, ErrJobExists) {
		t.Fatalf("the same wallet job on coordinator 2: %v", err)
	}
}

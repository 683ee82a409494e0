package sched_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
)

func miner(b byte, price coin.Amount, models ...string) *sched.Miner {
	var a address.Address
	a[0] = b
	return &sched.Miner{Address: a, Models: models, PricePer1k: price, Slots: 2}
}

func TestPlaceExplainsWhyNothingFits(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 1)
	job := sched.Job{Model: "llama", MaxTokens: 1000, MaxPrice: 2 * coin.Unit}
	cheap := miner(1, coin.Unit, "llama")
	dear := miner(2, 5*coin.Unit, "llama")
	other := miner(3, coin.Unit, "tolstoy-1m")

	for name, tc := range map[string]struct {
		miners []*sched.Miner
		job    sched.Job
		want   sched.Reason
	}{
		"nobody connected": {nil, job, sched.NoMiners},
		"wrong model":      {[]*sched.Miner{other}, job, sched.NoModel},
		"too expensive":    {[]*sched.Miner{dear}, job, sched.TooPricey},
		"excluded":         {[]*sched.Miner{cheap}, sched.Job{Model: "llama", MaxTokens: 1000, MaxPrice: 2 * coin.Unit, Exclude: map[address.Address]bool{cheap.Address: true}}, sched.Excluded},
		"busy":             {[]*sched.Miner{{Address: cheap.Address, Models: cheap.Models, PricePer1k: cheap.PricePer1k, Slots: 1, Running: 1}}, job, sched.AllBusy},
	} {
		m, np := s.Place(tc.job, tc.miners)
		if m != nil || np == nil || np.Reason != tc.want {
			t.Errorf("%s: got %v %v, want reason %d", name, m, np, tc.want)
			continue
		}
		if np.Error() == "" {
			t.Errorf("%s: empty explanation", name)
		}
	}
	_, np := s.Place(job, []*sched.Miner{dear})
	if np.Cheapest != 5*coin.Unit || np.Serving != 1 {
		t.Errorf("too-pricey details: %+v", np)
	}
}

func TestPlacePrefersCheapReliableMiners(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 7)
	job := sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: 10 * coin.Unit}
	good := miner(1, coin.Unit, "llama")
	good.Settled = 50
	bad := miner(2, coin.Unit, "llama")
	bad.Failures = 50
	dear := miner(3, 8*coin.Unit, "llama")
	count := map[*sched.Miner]int{}
	for i := 0; i < 200; i++ {
		m, np := s.Place(job, []*sched.Miner{good, bad, dear})
		if np != nil {
			t.Fatal(np)
		}
		count[m]++
	}
	if count[good] < 190 {
		t.Fatalf("placements %v: the cheap reliable miner should win nearly always", count)
	}
}

func TestPlaceSpreadsWorkAcrossEqualMiners(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 3)
	a, b := miner(1, coin.Unit, "m"), miner(2, coin.Unit, "m")
	count := map[*sched.Miner]int{}
	for i := 0; i < 400; i++ {
		m, _ := s.Place(sched.Job{Model: "m", MaxTokens: 10, MaxPrice: coin.Unit}, []*sched.Miner{a, b})
		count[m]++
	}
	if count[a] < 100 || count[b] < 100 {
		t.Fatalf("equal miners got %d and %d of 400", count[a], count[b])
	}
}

func TestModelsSummarisesTheMarket(t *testing.T) {
	q := sched.Models([]*sched.Miner{miner(1, 3, "b", "a"), miner(2, 1, "a")})
	if len(q) != 2 || q[0].Model != "a" || q[0].Miners != 2 || q[0].MinPrice != 1 || q[0].MaxPrice != 3 || q[1].Model != "b" {
		t.Fatalf("%+v", q)
	}
}

func TestPlanCountsItsOwnPlacements(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 1)
	a := miner(1, coin.Unit, "llama") // 2 slots
	reqs := []sched.Request{}
	for _, id := range []string{"j1", "j2", "j3"} {
		reqs = append(reqs, sched.Request{ID: id, Job: sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: coin.Unit}})
	}
	p := s.Plan(reqs, []*sched.Miner{a})
	if len(p.Placements) != 2 || p.Placements[0].JobID != "j1" || p.Placements[1].JobID != "j2" {
		t.Fatalf("placements %+v", p.Placements)
	}
	if np := p.Unplaced["j3"]; np == nil || np.Reason != sched.AllBusy {
		t.Fatalf("j3: %+v", np)
	}
	if a.Running != 0 {
		t.Fatal("Plan modified its input")
	}
}

func TestPlanKeepsHeldSlotsForTheirTenant(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 1)
	a := miner(1, coin.Unit, "llama")
	a.Held = map[string]int{"agent-tenant": 2}
	job := sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: coin.Unit}
	other, holder := job, job
	other.Tenant, holder.Tenant = "someone", "agent-tenant"
	p := s.Plan([]sched.Request{{ID: "x", Job: other}, {ID: "y", Job: holder}}, []*sched.Miner{a})
	if len(p.Placements) != 1 || p.Placements[0].JobID != "y" || p.Unplaced["x"] == nil {
		t.Fatalf("plan %+v unplaced %v", p.Placements, p.Unplaced)
	}
}

// TestPlacePrefersTheChainsReputationAndStake: of two miners alike in
// price, speed and record, the one the chain scores higher (ratings,
// deliveries, disputes lost) wins nearly always, and so does the one
// with more stake behind it when reputations are equal.
func TestPlacePrefersTheChainsReputationAndStake(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 11)
	job := sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: 10 * coin.Unit}
	trusted, doubtful := miner(1, coin.Unit, "llama"), miner(2, coin.Unit, "llama")
	trusted.Reputation, trusted.ReputationKnown = 95, true
	doubtful.Reputation, doubtful.ReputationKnown = 30, true
	count := map[*sched.Miner]int{}
	for i := 0; i < 200; i++ {
		m, np := s.Place(job, []*sched.Miner{doubtful, trusted})
		if np != nil {
			t.Fatal(np)
		}
		count[m]++
	}
	if count[trusted] < 190 {
		t.Fatalf("placements by reputation: trusted %d, doubtful %d of 200", count[trusted], count[doubtful])
	}

	staked, bare := miner(3, coin.Unit, "llama"), miner(4, coin.Unit, "llama")
	staked.Stake = 10_000 * coin.Unit
	bare.Stake = 100 * coin.Unit
	clear(count)
	for i := 0; i < 200; i++ {
		m, _ := s.Place(job, []*sched.Miner{bare, staked})
		count[m]++
	}
	if count[staked] < 150 {
		t.Fatalf("placements by stake: staked %d, bare %d of 200", count[staked], count[bare])
	}
}

// TestABoundJobRunsOnlyOnItsProvidersMiner: a job bound to a listing goes
// to its provider's miner even when another is cheaper and idle, and
// waits, saying whose miner it needs, when that miner is absent.
func TestABoundJobRunsOnlyOnItsProvidersMiner(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 5)
	prov := miner(1, 3*coin.Unit, "llama")
	cheap := miner(2, coin.Unit, "llama")
	cheap.Reputation, cheap.ReputationKnown = 100, true
	job := sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: 10 * coin.Unit, Provider: &prov.Address}
	for i := 0; i < 50; i++ {
		m, np := s.Place(job, []*sched.Miner{cheap, prov})
		if np != nil || m != prov {
			t.Fatalf("bound job placed on %v (%v), want the provider's miner", m, np)
		}
	}
	m, np := s.Place(job, []*sched.Miner{cheap})
	if m != nil || np == nil || np.Reason != sched.ProviderAbsent || !np.Retryable() {
		t.Fatalf("provider absent: %v %+v", m, np)
	}
	if want := prov.Address.String(); !strings.Contains(np.Error(), want) {
		t.Fatalf("the reason %q does not name the provider %s", np.Error(), want)
	}
	// The provider's miner present but without the model: not served.
	if _, np := s.Place(job, []*sched.Miner{cheap, miner(1, coin.Unit, "other")}); np == nil || np.Reason != sched.NoModel {
		t.Fatalf("provider without the model: %+v", np)
	}
	// In a plan, an unbound job may take the cheap miner; the bound one
	// waits for its provider's slot.
	busy := *prov
	busy.Running = busy.Slots
	p := s.Plan([]sched.Request{{ID: "bound", Job: job}, {ID: "free", Job: sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: 10 * coin.Unit}}},
		[]*sched.Miner{cheap, &busy})
	if len(p.Placements) != 1 || p.Placements[0].JobID != "free" || p.Placements[0].Miner != cheap.Address {
		t.Fatalf("placements %+v", p.Placements)
	}
	if np := p.Unplaced["bound"]; np == nil || np.Reason != sched.AllBusy {
		t.Fatalf("bound job: %+v", np)
	}
}

// TestABoundJobRunsOnAMinerItsProviderNamed: a provider that runs no
// miner of its own is served by the miners it named that named it back
// (sched.Job.ProviderMiners); any other miner is still not allowed.
func TestABoundJobRunsOnAMinerItsProviderNamed(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 7)
	prov := miner(1, 3*coin.Unit, "llama") // its address only: the provider runs no miner here
	hosted := miner(3, 2*coin.Unit, "llama")
	other := miner(4, coin.Unit, "llama")
	job := sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: 10 * coin.Unit, Provider: &prov.Address}
	if _, np := s.Place(job, []*sched.Miner{hosted, other}); np == nil || np.Reason != sched.ProviderAbsent {
		t.Fatalf("without the relation: %+v", np)
	}
	job.ProviderMiners = []address.Address{hosted.Address}
	for i := 0; i < 20; i++ {
		if m, np := s.Place(job, []*sched.Miner{other, hosted}); np != nil || m != hosted {
			t.Fatalf("bound job placed on %v (%v), want the provider's named miner", m, np)
		}
	}
}

// TestARentersJobsRunOnItsRentedMinerFirst: a tenant holding a slot (its
// GPU lease) gets that miner even when another is cheaper and better
// known; other tenants still get the better one; once the rented slot is
// busy the renter's next job goes elsewhere rather than wait.
func TestARentersJobsRunOnItsRentedMinerFirst(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 3)
	better := miner(1, coin.Unit, "llama")
	better.Settled = 500
	rented := miner(2, 3*coin.Unit, "llama")
	rented.Failures = 5
	rented.Slots = 1
	rented.Held = map[string]int{"renter": 1}
	for i := 0; i < 20; i++ {
		m, np := s.Place(sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: 10 * coin.Unit, Tenant: "renter"}, []*sched.Miner{better, rented})
		if m != rented {
			t.Fatalf("renter placed on %v (%v)", m, np)
		}
		if m, _ := s.Place(sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: 10 * coin.Unit, Tenant: "other"}, []*sched.Miner{better, rented}); m != better {
			t.Fatalf("another tenant placed on %v", m)
		}
	}
	busy := *rented
	busy.Running = 1
	if m, _ := s.Place(sched.Job{Model: "llama", MaxTokens: 100, MaxPrice: 10 * coin.Unit, Tenant: "renter"}, []*sched.Miner{better, &busy}); m != better {
		t.Fatalf("renter waited for its busy rented slot: %v", m)
	}
}

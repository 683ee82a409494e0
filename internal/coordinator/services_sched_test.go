package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// marketChain is the fake chain with the market and staking queries the
// scheduler reads: reputations, delegated stake and services' providers.
type marketChain struct {
	*fakeChain
	mu       sync.Mutex
	rep      map[address.Address]uint32
	bonded   map[address.Address]coin.Amount
	services map[string]address.Address
}

func (c *marketChain) GetJSON(_ context.Context, path string, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, err := url.Parse(path)
	if err != nil {
		return err
	}
	switch {
	case u.Path == "/api/v1/market/reputations":
		l := out.(*market.ReputationList)
		for _, s := range strings.Split(u.Query().Get("providers"), ",") {
			a, err := address.Parse(s)
			if err != nil {
				return err
			}
			if r, ok := c.rep[a]; ok {
				l.Reputations = append(l.Reputations, market.ProviderReputation{Provider: a, Reputation: market.Reputation{Score: r}})
			}
		}
		return nil
	case u.Path == "/api/v1/staking/operators":
		ops := out.(*staking.Operators)
		for a, b := range c.bonded {
			ops.Operators = append(ops.Operators, staking.OperatorView{Address: a, Kind: "miner", Bonded: b})
		}
		return nil
	case strings.HasPrefix(u.Path, "/api/v1/market/services/"):
		id := strings.TrimPrefix(u.Path, "/api/v1/market/services/")
		p, ok := c.services[id]
		if !ok {
			return fmt.Errorf("%w: %s", market.ErrServiceNotFound, id)
		}
		d := out.(*market.ServiceDetail)
		d.ID, d.Provider = id, p
		return nil
	}
	return fmt.Errorf("fake market chain: %s not served", path)
}

func newMarketHarness(t *testing.T) (*harness, *marketChain) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	_, coord := newKey(t)
	chain := newFakeChain(clock, coord, 0)
	mc := &marketChain{fakeChain: chain, rep: map[address.Address]uint32{}, bonded: map[address.Address]coin.Amount{}, services: map[string]address.Address{}}
	return newHarnessOn(t, chain, func(c *Config) { c.View = mc }), mc
}

// readTrust lets the coordinator read the chain's trust figures now.
func (h *harness) readTrust() {
	h.clock.Advance(trustEvery)
	h.s.refreshTrust(h.ctx)
}

// TestSchedulerUsesTheChainsReputationAndDelegatedStake: the scheduler
// sees each connected miner's reputation from the market module and its
// own stake plus what is delegated to it in the staking module, and
// places a job on the miner the chain trusts, other things equal.
func TestSchedulerUsesTheChainsReputationAndDelegatedStake(t *testing.T) {
	h, mc := newMarketHarness(t)
	doubtful := h.addMiner(coin.Unit)
	trusted := h.addMiner(coin.Unit)
	mc.mu.Lock()
	mc.rep[trusted.addr], mc.rep[doubtful.addr] = 97, 12
	mc.bonded[trusted.addr] = 5000 * coin.Unit
	mc.mu.Unlock()
	h.readTrust()

	h.s.mu.Lock()
	snap := h.s.snapshotLocked()
	h.s.mu.Unlock()
	got := map[address.Address]string{}
	for _, m := range snap {
		got[m.Address] = fmt.Sprintf("rep %d known %v stake %s", m.Reputation, m.ReputationKnown, m.Stake)
	}
	if want := "rep 97 known true stake 5100"; got[trusted.addr] != want {
		t.Errorf("trusted miner: %s, want %s", got[trusted.addr], want)
	}
	if want := "rep 12 known true stake 100"; got[doubtful.addr] != want {
		t.Errorf("doubtful miner: %s, want %s", got[doubtful.addr], want)
	}

	h.fund(100 * coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 10})
	if job := trusted.nextJob(); job.ID != j.ID {
		t.Fatalf("trusted miner got job %s, want %s", job.ID, j.ID)
	}
	select {
	case e := <-doubtful.mc.send:
		t.Fatalf("the doubtful miner got %+v", e)
	default:
	}
}

// TestABoundJobWaitsForItsProvidersMiner: a job bound to a service runs
// only on the miner of that service's provider: while that miner is not
// connected the job waits and its status says whose miner it needs, even
// though another miner serving the model is idle; when the provider's
// miner connects it gets the job.
func TestABoundJobWaitsForItsProvidersMiner(t *testing.T) {
	h, mc := newMarketHarness(t)
	other := h.addMiner(coin.Unit)
	prov := h.addMiner(coin.Unit)
	h.s.drop(prov.mc, "test: the provider's miner goes away")
	mc.mu.Lock()
	mc.services["svc-1"] = prov.addr
	mc.mu.Unlock()

	h.fund(100 * coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 10, ServiceID: "svc-1"})
	h.readTrust()
	h.s.dispatchOnce() // a pass with the provider known: the idle miner must not take the job
	if got := h.job(j.ID); got.Status != store.StatusQueued || !strings.Contains(got.Error, prov.addr.String()) {
		t.Fatalf("bound job: %s %q", got.Status, got.Error)
	}
	select {
	case e := <-other.mc.send:
		t.Fatalf("another provider's miner got %+v", e)
	default:
	}
	prov.connect()
	if job := prov.nextJob(); job.ID != j.ID {
		t.Fatalf("the provider's miner got %s, want %s", job.ID, j.ID)
	}
}

// seedServiceConfig is seed 000's service_config.json, verbatim.
const seedServiceConfig = `{
  "service_id": "gpu-compute-001",
  "name": "GPU Computing Service",
  "type": "gpu_compute",
  "specs": {
    "gpu_type": "NVIDIA RTX 4090",
    "memory": "24GB",
    "cuda_cores": 16384,
    "supported_frameworks": ["PyTorch", "TensorFlow", "JAX"]
  },
  "pricing": {
    "rate_per_hour": 100,
    "currency": "AITBC"
  },
  "availability": {
    "start_time": "2024-01-01T00:00:00Z",
    "end_time": "2024-12-31T23:59:59Z",
    "timezone": "UTC"
  }
}`

// TestTheSeedsServiceConfigIsAListingWithItsWindow: the seed's body, as
// written, becomes a listing spec with its 2024 window kept; a service
// outside its window is refused for jobs with an error naming the window.
func TestTheSeedsServiceConfigIsAListingWithItsWindow(t *testing.T) {
	var reg ServiceRegistration
	if err := json.Unmarshal([]byte(seedServiceConfig), &reg); err != nil {
		t.Fatal(err)
	}
	spec, err := reg.Listing()
	if err != nil {
		t.Fatal(err)
	}
	from, until := time.Unix(spec.From, 0).UTC(), time.Unix(spec.Until, 0).UTC()
	if spec.ID != "gpu-compute-001" || spec.Type != market.TypeGPUCompute || spec.Unit != market.UnitHour || spec.Price != 100*coin.Unit ||
		spec.GPU != "NVIDIA RTX 4090" || spec.GPUMemoryMB != 24*1024 ||
		!from.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) || !until.Equal(time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)) {
		t.Fatalf("spec: %+v (window %s - %s)", spec, from, until)
	}
	err = availableNow(market.ServiceView{ID: spec.ID, From: &from, Until: &until})
	if !errors.Is(err, market.ErrUnavailable) || !strings.Contains(err.Error(), "from 2024-01-01T00:00:00Z to 2024-12-31T23:59:59Z") {
		t.Fatalf("a job under the expired service: %v", err)
	}
	if err := availableNow(market.ServiceView{ID: spec.ID, AvailableNow: true}); err != nil {
		t.Fatal(err)
	}
}

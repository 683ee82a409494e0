// Package sched places jobs on miners. It is pure business logic over a
// snapshot, in the manner of Nomad's scheduler: a chain of feasibility
// checkers removes miners that cannot take the job (and counts why), the
// survivors are scored, and the best is chosen, with a little randomness so
// that equal miners share work. When nothing fits, the result says why.
//
// Imported by the coordinator, and by the CLI for its checks before a
// customer pays (Cost, Resources).
package sched

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
)

// Miner is what the scheduler knows of a connected miner.
type Miner struct {
	Address      address.Address
	Models       []string
	PricePer1k   coin.Amount
	Slots        int     // concurrent jobs it accepts
	Running      int     // jobs it runs now
	TokensPerSec float64 // measured; 0 when unknown
	Settled      uint64  // jobs settled on chain
	Failures     uint64  // jobs it failed or lost
	// Stake is what backs the miner on chain: its own registration
	// stake plus the stake delegated to it in the staking module.
	Stake coin.Amount
	// Reputation is the chain's score of the miner as a marketplace
	// provider (market module, 0-100); ReputationKnown is false when the
	// coordinator has not read it yet, and the score then counts the
	// chain's figure for a newcomer.
	Reputation      uint32
	ReputationKnown bool
	// Held counts slots that allocations hold, per tenant: other tenants'
	// jobs cannot use them, the holder's can.
	Held map[string]int
	// GPU and GPUMemoryMB are the hardware the miner detected and
	// registered on chain: its GPU's name ("cpu" or empty without one)
	// and that GPU's memory.
	GPU         string
	GPUMemoryMB uint64
	// Vision are the models of Models for which the miner accepts image
	// inputs (its hello says so; the chain's registry does not).
	Vision []string
}

// BusyFor is how many of m's slots a job of tenant cannot use: those
// running jobs and those other tenants hold ("" counts every hold).
func (m *Miner) BusyFor(tenant string) int {
	n := m.Running
	for t, h := range m.Held {
		if t != tenant {
			n += h
		}
	}
	return n
}

func (m *Miner) serves(model string) bool {
	for _, x := range m.Models {
		if x == model {
			return true
		}
	}
	return false
}

// Job is what the scheduler needs of a job.
type Job struct {
	Model     string
	MaxTokens uint64
	MaxPrice  coin.Amount // escrow: price for MaxTokens plus the fee must fit
	Exclude   map[address.Address]bool
	Tenant    string // whose job: slots the tenant's allocations hold are free for it
	// Needs, when set, is the hardware the job requires (resources.go).
	Needs *Resources
	// Provider, when set, is the provider of the listing the job is bound
	// to: only its miner (the miner registered under the provider's
	// address, the one the chain scores as the provider) or one of
	// ProviderMiners may run it, since the agreement pays that provider
	// for the delivery.
	Provider *address.Address
	// ProviderMiners are the miners the provider named that named it back
	// (market/add_miner and miners/set_provider): they serve it too.
	ProviderMiners []address.Address
	// Vision is set for a job whose messages carry images: only a miner
	// that declares vision for the model runs it.
	Vision bool
}

// Reason is why no miner was placed.
type Reason int

// Reasons, in the order the feasibility chain applies them.
const (
	NoMiners       Reason = iota + 1 // no miner is connected
	NoModel                          // none serves the model
	TooPricey                        // all that serve it charge more than the budget
	Excluded                         // all remaining already failed this job
	AllBusy                          // all remaining are at capacity
	ProviderAbsent                   // the job's provider has no miner connected (checked first, for a bound job)
	NoResources                      // none that serves the model has the hardware the job needs
	NoVision                         // none that serves the model accepts image inputs for it
)

// NoPlacement explains an empty result.
type NoPlacement struct {
	Reason   Reason
	Model    string
	Serving  int         // miners serving the model
	Cheapest coin.Amount // cheapest price per 1k among them
	Busy     int
	Provider *address.Address // the job's provider, for ProviderAbsent
	Lacking  string           // what the job needs that no miner has, for NoResources
}

// Retryable reports whether waiting may help (miners are busy or
// excluded ones may be joined by others).
func (n *NoPlacement) Retryable() bool {
	return n.Reason == AllBusy || n.Reason == Excluded || n.Reason == NoMiners || n.Reason == ProviderAbsent
}

func (n *NoPlacement) Error() string {
	switch n.Reason {
	case NoMiners:
		return "no miner is connected"
	case NoModel:
		return fmt.Sprintf("no miner serves model %q", n.Model)
	case TooPricey:
		return fmt.Sprintf("all %d miners serving %q charge more than your max price allows (cheapest: %s AITBC per 1k tokens)", n.Serving, n.Model, n.Cheapest)
	case Excluded:
		return fmt.Sprintf("every miner serving %q already failed this job", n.Model)
	case AllBusy:
		return fmt.Sprintf("all %d miners serving %q are busy", n.Busy, n.Model)
	case ProviderAbsent:
		return fmt.Sprintf("the job's service is provided by %s, and no miner of that provider is connected (it runs only there)", n.Provider)
	case NoResources:
		return fmt.Sprintf("no miner serving %q has the hardware the job needs: %s", n.Model, n.Lacking)
	case NoVision:
		return fmt.Sprintf("the messages carry images, and none of the %d miners serving %q accepts image inputs for it: "+
			"a job with images runs only on a miner whose backend and model declare vision (an Ollama or OpenAI-compatible backend "+
			"with a vision model; the built-in engine has none)", n.Serving, n.Model)
	}
	return "no placement"
}

// Cost is what a job costs at most on a miner: its price for maxTokens plus
// the protocol fee and the coordinator's commission (jobs.Params.MaxCost).
func Cost(p jobs.Params, pricePer1k coin.Amount, maxTokens uint64) coin.Amount {
	return p.MaxCost(jobs.PriceFor(maxTokens, pricePer1k))
}

// Scheduler places jobs. Its random source only breaks ties.
type Scheduler struct {
	Params jobs.Params
	Rand   *rand.Rand
}

// New returns a scheduler with the given jobs parameters and seed.
func New(p jobs.Params, seed uint64) *Scheduler {
	return &Scheduler{Params: p, Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Place picks a miner for j, or explains why none fits.
func (s *Scheduler) Place(j Job, miners []*Miner) (*Miner, *NoPlacement) {
	if len(miners) == 0 {
		return nil, &NoPlacement{Reason: NoMiners, Model: j.Model}
	}
	np := &NoPlacement{Model: j.Model, Cheapest: math.MaxUint64}
	// feasibility chain
	if j.Provider != nil {
		miners = filter(miners, func(m *Miner) bool { return m.Address == *j.Provider || slices.Contains(j.ProviderMiners, m.Address) })
		if len(miners) == 0 {
			np.Reason, np.Provider = ProviderAbsent, j.Provider
			return nil, np
		}
	}
	var c []*Miner
	for _, m := range miners {
		if m.serves(j.Model) {
			c = append(c, m)
		}
	}
	if len(c) == 0 {
		np.Reason = NoModel
		return nil, np
	}
	np.Serving = len(c)
	if j.Vision {
		c = filter(c, func(m *Miner) bool { return slices.Contains(m.Vision, j.Model) })
		if len(c) == 0 {
			np.Reason = NoVision
			return nil, np
		}
	}
	if j.Needs != nil {
		all := c
		c = filter(c, func(m *Miner) bool { return j.Needs.Lacks(m) == "" })
		if len(c) == 0 {
			np.Reason, np.Lacking = NoResources, j.Needs.Explain(all)
			return nil, np
		}
	}
	c = filter(c, func(m *Miner) bool {
		if m.PricePer1k < np.Cheapest {
			np.Cheapest = m.PricePer1k
		}
		return Cost(s.Params, m.PricePer1k, j.MaxTokens) <= j.MaxPrice
	})
	if len(c) == 0 {
		np.Reason = TooPricey
		return nil, np
	}
	c = filter(c, func(m *Miner) bool { return !j.Exclude[m.Address] })
	if len(c) == 0 {
		np.Reason = Excluded
		return nil, np
	}
	np.Busy = len(c)
	c = filter(c, func(m *Miner) bool { return m.BusyFor(j.Tenant) < m.Slots })
	if len(c) == 0 {
		np.Reason = AllBusy
		return nil, np
	}
	// A tenant that holds slots (an allocation, a GPU lease it pays for on
	// chain) runs on them first: that capacity is already paid for.
	if held := filter(c, func(m *Miner) bool { return j.Tenant != "" && m.Held[j.Tenant] > 0 }); len(held) > 0 {
		c = held
	}
	// score
	best, bestScore := c[0], math.Inf(-1)
	var maxPrice coin.Amount
	var maxSpeed float64
	for _, m := range c {
		maxPrice = max(maxPrice, m.PricePer1k)
		maxSpeed = max(maxSpeed, m.TokensPerSec)
	}
	for _, m := range c {
		sc := s.score(m, maxPrice, maxSpeed)
		if sc > bestScore {
			best, bestScore = m, sc
		}
	}
	return best, nil
}

// newcomerReputation is the chain's score of a provider with no record
// (market.Score): a miner whose reputation is not known yet counts it.
const newcomerReputation = 64

// score is in roughly [0, 6]: each term is normalised to [0, 1].
func (s *Scheduler) score(m *Miner, maxPrice coin.Amount, maxSpeed float64) float64 {
	price := 1.0
	if maxPrice > 0 {
		price = 1 - float64(m.PricePer1k)/float64(maxPrice)
	}
	speed := 0.5 // unknown speed: neutral
	if maxSpeed > 0 && m.TokensPerSec > 0 {
		speed = m.TokensPerSec / maxSpeed
	}
	record := float64(m.Settled+1) / float64(m.Settled+m.Failures+2) // Laplace-smoothed success rate
	load := 1 - float64(m.Running)/float64(max(m.Slots, 1))
	stake := math.Min(1, math.Log10(1+m.Stake.Float())/4) // 10,000 AITBC saturates
	rep := float64(newcomerReputation) / 100
	if m.ReputationKnown {
		rep = float64(min(m.Reputation, 100)) / 100
	}
	jitter := s.Rand.Float64() * 0.15
	// The chain's reputation (ratings, deliveries, disputes lost, uptime)
	// weighs as much as the coordinator's own record of the miner: the
	// record sees only this coordinator's jobs, the chain sees every one.
	return 1.2*price + speed + 1.5*record + 0.8*load + 0.3*stake + 1.5*rep + jitter
}

// Request is a queued job asking for a miner.
type Request struct {
	ID string
	Job
}

// Placement puts one job on one miner.
type Placement struct {
	JobID string
	Miner address.Address
}

// Plan is what one scheduling pass decided: placements for some jobs, and
// for each job left waiting (or never placeable) why.
type Plan struct {
	Placements []Placement
	Unplaced   map[string]*NoPlacement
}

// Plan places the requests in order (oldest first) on miners, counting
// each placement against the miner's free slots for the next request. It
// does not modify miners. The plan is a proposal: the coordinator's
// applier commits it and skips a placement whose job or miner changed
// since the snapshot.
func (s *Scheduler) Plan(reqs []Request, miners []*Miner) Plan {
	view := make([]*Miner, len(miners))
	byAddr := make(map[address.Address]*Miner, len(miners))
	for i, m := range miners {
		c := *m
		view[i], byAddr[m.Address] = &c, &c
	}
	p := Plan{Unplaced: map[string]*NoPlacement{}}
	// A model whose miners are all busy for a tenant stays so for the
	// rest of the pass: its later jobs wait without a search (a queue of
	// thousands costs one check per model, not one per job).
	type key struct {
		model, tenant string
		provider      address.Address
	}
	full := map[key]*NoPlacement{}
	for _, r := range reqs {
		k := key{model: r.Model, tenant: r.Tenant}
		if r.Provider != nil {
			k.provider = *r.Provider
		}
		if np := full[k]; np != nil && len(r.Exclude) == 0 {
			p.Unplaced[r.ID] = np
			continue
		}
		m, np := s.Place(r.Job, view)
		if np != nil {
			if np.Reason == AllBusy && len(r.Exclude) == 0 {
				full[k] = np
			}
			p.Unplaced[r.ID] = np
			continue
		}
		byAddr[m.Address].Running++
		p.Placements = append(p.Placements, Placement{JobID: r.ID, Miner: m.Address})
	}
	return p
}

func filter(ms []*Miner, keep func(*Miner) bool) []*Miner {
	out := ms[:0:0]
	for _, m := range ms {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// Quote summarises the market for a model: how many miners serve it and the
// price range, for "why" answers and for GET /v1/models.
type Quote struct {
	Model    string
	Miners   int
	MinPrice coin.Amount
	MaxPrice coin.Amount
	Free     int // miners with a free slot
}

// Models lists each model served by the given miners, sorted by name.
func Models(miners []*Miner) QuoteList {
	by := map[string]*Quote{}
	for _, m := range miners {
		for _, name := range m.Models {
			q := by[name]
			if q == nil {
				q = &Quote{Model: name, MinPrice: m.PricePer1k, MaxPrice: m.PricePer1k}
				by[name] = q
			}
			q.Miners++
			q.MinPrice = min(q.MinPrice, m.PricePer1k)
			q.MaxPrice = max(q.MaxPrice, m.PricePer1k)
			if m.Running < m.Slots {
				q.Free++
			}
		}
	}
	out := make([]Quote, 0, len(by))
	for _, q := range by {
		out = append(out, *q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

// QuoteList is a market summary.
type QuoteList []Quote

// Contains reports whether model is among the quotes.
func (q QuoteList) Contains(model string) bool {
	for _, x := range q {
		if x.Model == model {
			return true
		}
	}
	return false
}

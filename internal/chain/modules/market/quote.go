package market

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
)

// QuoteRequest is what a customer wants priced.
type QuoteRequest struct {
	Type        string      // a service type; "" is ai-inference
	Model       string      // for inference: the model
	MaxTokens   uint64      // for inference: tokens at most (256)
	Units       uint64      // jobs or hours (1)
	MaxPrice    coin.Amount // the most the customer pays in all (0: no limit)
	GPU         string      // a substring of the GPU's name
	MinMemoryMB uint64
}

// Offer is one provider's answer to a quote: what it would cost, or why
// it cannot serve the request.
type Offer struct {
	Kind       string          `json:"kind"` // miner (a job through the coordinator) or service (a listing)
	Provider   address.Address `json:"provider"`
	Service    string          `json:"service_id,omitempty"`
	Name       string          `json:"name,omitempty"`
	Price      coin.Amount     `json:"price"`
	Unit       string          `json:"unit"`
	Cost       coin.Amount     `json:"cost"` // for the whole request, protocol fee included
	Reputation uint32          `json:"reputation"`
	Qualifies  bool            `json:"qualifies"`
	Why        string          `json:"why,omitempty"` // why it does not qualify
}

// Quote is GET /api/v1/market/quote: what the request would cost now from
// every provider that could serve it, cheapest first, and when nobody can,
// why — per provider and per constraint.
type Quote struct {
	Type       string         `json:"type"`
	Model      string         `json:"model,omitempty"`
	MaxTokens  uint64         `json:"max_tokens,omitempty"`
	Units      uint64         `json:"units"`
	Qualifying int            `json:"qualifying"`
	Cheapest   *Offer         `json:"cheapest,omitempty"`
	Median     coin.Amount    `json:"median"`
	Offers     []Offer        `json:"offers"`
	Why        map[string]int `json:"why_not,omitempty"` // constraint → providers it ruled out
	Answer     string         `json:"answer"`            // one line for people
	Height     int64          `json:"height"`
}

func (r QuoteRequest) values() url.Values {
	v := url.Values{}
	v.Set("type", r.Type)
	if r.Model != "" {
		v.Set("model", r.Model)
	}
	if r.MaxTokens > 0 {
		v.Set("max_tokens", strconv.FormatUint(r.MaxTokens, 10))
	}
	if r.Units > 0 {
		v.Set("units", strconv.FormatUint(r.Units, 10))
	}
	if r.MaxPrice > 0 {
		v.Set("max_price", r.MaxPrice.String())
	}
	if r.GPU != "" {
		v.Set("gpu", r.GPU)
	}
	if r.MinMemoryMB > 0 {
		v.Set("min_memory_mb", strconv.FormatUint(r.MinMemoryMB, 10))
	}
	return v
}

// QueryQuote asks a node what a request would cost now.
func QueryQuote(ctx context.Context, g module.Getter, r QuoteRequest) (Quote, error) {
	var out Quote
	return out, g.GetJSON(ctx, withQuery("/api/v1/market/quote", r.values()), &out)
}

func parseUint(in module.Request, name string, def uint64) (uint64, error) {
	s := in.Param(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: %s must be a positive integer", ErrInvalidBid, name)
	}
	return n, nil
}

func (k *Keeper) qQuote(q module.Query, in module.Request) (any, error) {
	r := QuoteRequest{Model: in.Param("model"), GPU: in.Param("gpu")}
	r.Type = TypeAIInference
	if s := in.Param("type"); s != "" {
		if r.Type = NormalizeType(s); r.Type == "" {
			return nil, fmt.Errorf("%w: type %q: one of %v", ErrInvalidListing, s, Types)
		}
	}
	var err error
	if r.MaxTokens, err = parseUint(in, "max_tokens", 256); err != nil {
		return nil, err
	}
	if r.Units, err = parseUint(in, "units", 1); err != nil {
		return nil, err
	}
	if r.MinMemoryMB, err = parseUint(in, "min_memory_mb", 0); err != nil && in.Param("min_memory_mb") != "0" {
		return nil, err
	}
	if r.MaxPrice, err = parseAmount(in, "max_price"); err != nil {
		return nil, err
	}
	return k.quote(q, r)
}

// quote prices r against the miner registry (for inference, what a job
// through a coordinator costs) and against the listings of r's type.
func (k *Keeper) quote(q module.Query, r QuoteRequest) (Quote, error) {
	now := q.Time.Unix()
	out := Quote{Type: r.Type, Model: r.Model, Units: r.Units, Offers: []Offer{}, Why: map[string]int{}, Height: q.Height}
	jp, err := k.jobs.Params(q.State)
	if err != nil {
		return out, err
	}
	gpu := strings.ToLower(r.GPU)
	judge := func(o *Offer, reasons ...string) {
		for _, why := range reasons {
			if why != "" {
				o.Why = why
				out.Why[strings.SplitN(why, ":", 2)[0]]++
				break
			}
		}
		if o.Why == "" && r.MaxPrice > 0 && o.Cost > r.MaxPrice {
			o.Why = fmt.Sprintf("price: costs %s AITBC, more than your %s", o.Cost, r.MaxPrice)
			out.Why["price"]++
		}
		o.Qualifies = o.Why == ""
		out.Offers = append(out.Offers, *o)
	}
	hw := func(name string, mem uint64) string {
		switch {
		case gpu != "" && !strings.Contains(strings.ToLower(name), gpu):
			return fmt.Sprintf("gpu: has %q, not %q", name, r.GPU)
		case r.MinMemoryMB > 0 && mem < r.MinMemoryMB:
			return fmt.Sprintf("memory: %d MB, needs %d", mem, r.MinMemoryMB)
		}
		return ""
	}
	if r.Type == TypeAIInference {
		out.MaxTokens = r.MaxTokens
		err := q.State.Iterate(miners.KeyPrefix, false, func(_, b []byte) bool {
			m, err := miners.Decode(b)
			if err != nil {
				return true
			}
			f, _ := k.Facts(q.State, m.Addr())
			price := jobs.PriceFor(r.MaxTokens, m.Caps.PricePer1k)
			cost := (price + jp.Fee(price)).MulDiv(r.Units, 1)
			o := Offer{Kind: "miner", Provider: m.Addr(), Price: m.Caps.PricePer1k, Unit: UnitKTokens, Cost: cost,
				Reputation: Score(f, m, now).Score, Name: m.Caps.GPU}
			var model, state string
			if r.Model != "" && !m.Caps.Serves(r.Model) {
				model = fmt.Sprintf("model: serves %s, not %s", strings.Join(m.Caps.Models, ", "), r.Model)
			}
			switch {
			case m.Status != miners.StatusActive:
				state = "availability: unbonding"
			case now-m.LastHeartbeat > HeartbeatFresh:
				state = fmt.Sprintf("availability: no heartbeat for %ds", now-m.LastHeartbeat)
			}
			judge(&o, model, state, hw(m.Caps.GPU, m.Caps.GPUMemoryMB))
			return true
		})
		if err != nil {
			return out, err
		}
	}
	var ids []string
	if err := q.State.Iterate(ListingPrefix, false, func(key, _ []byte) bool {
		ids = append(ids, string(key[len(ListingPrefix):]))
		return true
	}); err != nil {
		return out, err
	}
	for _, id := range ids {
		l, err := k.Listing(q.State, id)
		if err != nil || l == nil || l.Type != r.Type || l.Status == ListingClosed {
			continue
		}
		var cost coin.Amount
		switch l.Unit {
		case UnitKTokens:
			cost = l.Price.MulDiv(r.MaxTokens, 1000).MulDiv(r.Units, 1)
		default:
			cost = l.Price.MulDiv(r.Units, 1)
		}
		f, _ := k.Facts(q.State, l.ProviderAddr())
		m, _ := k.miners.Get(q.State, l.ProviderAddr())
		o := Offer{Kind: "service", Provider: l.ProviderAddr(), Service: l.ID, Name: l.Name, Price: l.Price, Unit: l.Unit,
			Cost: cost, Reputation: Score(f, m, now).Score}
		var st, model string
		switch {
		case l.Status == ListingPaused:
			st = "availability: paused"
		case !l.Available(now):
			st = "availability: " + window(l.From, l.Until)
		case l.Full():
			st = fmt.Sprintf("capacity: all %d agreements taken", l.Capacity)
		}
		if r.Model != "" && l.Model != "" && l.Model != r.Model {
			model = fmt.Sprintf("model: runs %s, not %s", l.Model, r.Model)
		}
		judge(&o, model, st, hw(l.GPU, l.GPUMemoryMB))
	}
	sort.SliceStable(out.Offers, func(i, j int) bool {
		a, b := out.Offers[i], out.Offers[j]
		if a.Qualifies != b.Qualifies {
			return a.Qualifies
		}
		return a.Cost < b.Cost
	})
	var costs []coin.Amount
	for i := range out.Offers {
		if out.Offers[i].Qualifies {
			costs = append(costs, out.Offers[i].Cost)
		}
	}
	out.Qualifying = len(costs)
	if len(costs) > 0 {
		c := out.Offers[0]
		out.Cheapest = &c
		slices.Sort(costs)
		out.Median = costs[len(costs)/2]
		if len(costs)%2 == 0 {
			out.Median = (costs[len(costs)/2-1] + costs[len(costs)/2]) / 2
		}
		out.Answer = fmt.Sprintf("%d providers can serve it: cheapest %s AITBC (%s), median %s AITBC", len(costs), c.Cost, offerName(c), out.Median)
		out.Why = nil
		return out, nil
	}
	if len(out.Offers) == 0 {
		out.Answer = fmt.Sprintf("nobody can serve it: no provider offers %s", r.Type)
		if r.Model != "" {
			out.Answer += " with model " + r.Model
		}
		out.Why["no provider"] = 1
		return out, nil
	}
	var parts []string
	for _, c := range []string{"model", "price", "gpu", "memory", "availability", "capacity"} {
		if n := out.Why[c]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s rules out %d", c, n))
		}
	}
	out.Answer = fmt.Sprintf("nobody can serve it: %d providers considered; %s", len(out.Offers), strings.Join(parts, ", "))
	return out, nil
}

func offerName(o Offer) string {
	if o.Service != "" {
		return "service " + o.Service
	}
	return "miner " + o.Provider.String()
}

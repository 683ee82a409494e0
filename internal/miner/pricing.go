package miner

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
)

// Dynamic pricing (`marketplace --action pricing --strategy dynamic`): the
// provider sets bounds on a listing; its miner daemon moves the listed
// price between them with its own utilization, as Akash providers' bid
// price scripts do, through the market's reprice message. Repricing is
// rate-limited per listing and ignores small moves, so that a busy miner
// does not spend its balance on fees or flood the chain.

// Defaults of the pricer.
const (
	pricingEvery       = 30 * time.Second // a utilization sample, and a look at the listings
	repriceMinInterval = 5 * time.Minute  // at most one reprice of a listing this often
	utilizationAlpha   = 0.2              // weight of a new sample in the moving average
	repriceStepDiv     = 20               // a move under (max - min) / 20 is not worth a transaction
)

// DynamicPrice is a dynamic listing's price at utilization u (0: every
// slot free, 1: every slot busy): linear between the bounds, so an idle
// miner asks lo and a full one hi.
func DynamicPrice(lo, hi coin.Amount, u float64) coin.Amount {
	if hi <= lo {
		return lo
	}
	u = math.Max(0, math.Min(1, u))
	return lo + coin.Amount(math.Round(float64(hi-lo)*u))
}

// Reprice is one repricing a pricer sent.
type Reprice struct {
	Service  string
	From, To coin.Amount
	TxHash   string
}

// Pricer reprices a provider's dynamic listings from its miner's
// utilization. Step is one pass; a Pricer is not safe for concurrent use.
type Pricer struct {
	Provider    address.Address
	Chain       module.Getter // market.QueryServices
	Sender      Sender        // signs with the provider's key
	Utilization func() float64
	MinInterval time.Duration // between reprices of one listing (repriceMinInterval)
	Now         func() time.Time
	Log         *slog.Logger

	avg     float64
	sampled bool
	last    map[string]time.Time // listing → when this pricer last repriced it
}

// Step samples the utilization into the moving average, then reprices
// each active dynamic listing of the provider whose price is a step or
// more away from DynamicPrice at that average, unless it was repriced
// less than MinInterval ago or has live agreements (the chain refuses to
// reprice under them: their customers pay the price they agreed to).
func (p *Pricer) Step(ctx context.Context) ([]Reprice, error) {
	now := p.now()
	u := p.Utilization()
	if !p.sampled {
		p.avg, p.sampled = u, true
	} else {
		p.avg = (1-utilizationAlpha)*p.avg + utilizationAlpha*u
	}
	list, err := market.QueryServices(ctx, p.Chain, market.ServiceFilter{Provider: &p.Provider})
	if err != nil {
		return nil, fmt.Errorf("miner: pricing: %w", err)
	}
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	minGap := p.MinInterval
	if minGap == 0 {
		minGap = repriceMinInterval
	}
	var out []Reprice
	for _, s := range list.Services {
		if s.Strategy != "dynamic" || s.Status != "active" || s.Provider != p.Provider {
			continue
		}
		target := DynamicPrice(s.PriceMin, s.PriceMax, p.avg)
		step := max((s.PriceMax-s.PriceMin)/repriceStepDiv, 1)
		diff := max(target, s.Price) - min(target, s.Price)
		switch {
		case diff < step:
			continue
		case now.Sub(p.last[s.ID]) < minGap:
			continue
		case s.Live > 0:
			p.log().Debug("dynamic price waits for live agreements", "service", s.ID, "live", s.Live, "target", target.String())
			continue
		}
		hash, err := p.Sender.Send(ctx, market.NewRepriceMsg(s.ID, target))
		if err != nil {
			return out, fmt.Errorf("miner: reprice %s: %w", s.ID, err)
		}
		p.last[s.ID] = now
		p.log().Info("dynamic price", "service", s.ID, "from", s.Price.String(), "to", target.String(), "utilization", p.avg, "tx", hash)
		out = append(out, Reprice{Service: s.ID, From: s.Price, To: target, TxHash: hash})
	}
	return out, nil
}

func (p *Pricer) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pricer) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Utilization is the part of the miner's slots running jobs now (0-1).
func (m *Miner) Utilization() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return float64(m.running) / float64(max(m.cfg.Slots, 1))
}

// RunPricing reprices the miner's dynamic listings (as their provider:
// the miner's own address) from its utilization every 30 s until ctx
// ends. A provider without dynamic listings costs one query a pass.
func (m *Miner) RunPricing(ctx context.Context) error {
	p := &Pricer{Provider: m.addr, Chain: m.cfg.Chain, Sender: m.cfg.Sender, Utilization: m.Utilization, Log: m.log}
	t := time.NewTicker(pricingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := p.Step(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("dynamic pricing", "err", err)
		}
	}
}

package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
)

// DefaultReferencePrice is the devnet market maker's price: 1 BTC =
// 100,000 AITBC (seed 000), 0.00001 BTC per AITBC, in msat per AITBC.
const DefaultReferencePrice = 1_000_000

// MakerConfig configures a market maker: a funded wallet that keeps
// Levels asks (and, while it holds btc, Levels bids) of Size AITBC around
// Reference, the nearest SpreadBps away and each further one StepBps more.
type MakerConfig struct {
	Wallet    string
	Password  string
	Reference uint64 // msat per AITBC (DefaultReferencePrice)
	Levels    int    // 5
	SpreadBps uint64 // 50: the nearest quotes 0.5% from the reference
	StepBps   uint64 // 50
	Size      coin.Amount
	Every     time.Duration // how often it checks its quotes (2s)
	Log       *slog.Logger
}

func (c *MakerConfig) defaults() {
	if c.Reference == 0 {
		c.Reference = DefaultReferencePrice
	}
	if c.Levels <= 0 {
		c.Levels = 5
	}
	if c.SpreadBps == 0 {
		c.SpreadBps = 50
	}
	if c.StepBps == 0 {
		c.StepBps = 50
	}
	if c.Size == 0 {
		c.Size = 1000 * coin.Unit
	}
	if c.Every <= 0 {
		c.Every = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Maker is a market maker: it keeps its quotes in the book.
type Maker struct {
	cfg     MakerConfig
	node    module.Getter
	wallets Wallets
	// submitted is the height of the book the last round that submitted
	// anything read. Rounds run one at a time (Run's loop), so it needs
	// no lock.
	submitted int64
}

// NewMaker returns a market maker quoting through wallets on node.
func NewMaker(node module.Getter, wallets Wallets, cfg MakerConfig) *Maker {
	cfg.defaults()
	return &Maker{cfg: cfg, node: node, wallets: wallets}
}

// Quote is one price the maker wants in the book.
type Quote struct {
	Side  chainex.Side
	Price uint64
}

// Quotes are the prices the maker keeps: asks above the reference, and
// bids below it while it holds btc.
func (m *Maker) Quotes(withBids bool) []Quote {
	var out []Quote
	for i := 0; i < m.cfg.Levels; i++ {
		off := m.cfg.SpreadBps + uint64(i)*m.cfg.StepBps
		out = append(out, Quote{chainex.Sell, m.cfg.Reference * (10_000 + off) / 10_000})
		if withBids && off < 10_000 {
			out = append(out, Quote{chainex.Buy, m.cfg.Reference * (10_000 - off) / 10_000})
		}
	}
	return out
}

// Run keeps the quotes until ctx ends. A round that fails (the node
// down, not funded yet) is logged and tried again.
func (m *Maker) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Every)
	defer t.Stop()
	for {
		if err := m.Round(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Log.Debug("market maker round", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round places the quotes missing from the book (filled or expired
// since) and cancels its orders at prices it no longer quotes. It
// returns how many orders it submitted.
func (m *Maker) Round(ctx context.Context) error {
	a, err := m.wallets.Address(ctx, m.cfg.Wallet)
	if err != nil {
		return err
	}
	bal, err := bank.QueryBalances(ctx, m.node, a)
	if err != nil {
		return err
	}
	open, err := chainex.QueryOrders(ctx, m.node, a)
	if err != nil {
		return err
	}
	// The transactions of a round land in one of the next blocks: until
	// two blocks have passed, the book does not show them yet, and quoting
	// again would place each missing quote twice.
	if m.submitted > 0 && open.Height < m.submitted+2 {
		return nil
	}
	sent := 0
	defer func() {
		if sent > 0 {
			m.submitted = open.Height
		}
	}()
	want := m.Quotes(bal.Balances[chainex.QuoteDenom] > 0)
	have := map[Quote]bool{}
	var errs []error
	for _, o := range open.Orders {
		side, _ := chainex.ParseSide(o.Side)
		q := Quote{side, o.PriceMsat}
		if !contains(want, q) || have[q] {
			sent++
			if _, err := m.wallets.SignAndSubmit(ctx, m.cfg.Wallet, m.cfg.Password, chainex.NewCancelMsg(o.ID), 0); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		have[q] = true
	}
	btc := bal.Balances[chainex.QuoteDenom]
	for _, q := range want {
		if have[q] {
			continue
		}
		size := uint64(m.cfg.Size)
		if q.Side == chainex.Buy {
			// Bids only as far as the btc goes, in whole lots of 0.001 AITBC.
			need, _ := chainex.Quote(size, q.Price)
			if need > btc {
				size = btc * 1_000_000_000 / q.Price / 1000 * 1000
			}
			if size < uint64(coin.Unit) {
				continue
			}
			q2, _ := chainex.Quote(size, q.Price)
			btc -= min(btc, q2+1)
		}
		msg := chainex.NewPlaceMsg(q.Side, false, q.Price, size, 0)
		sent++
		if _, err := m.wallets.SignAndSubmit(ctx, m.cfg.Wallet, m.cfg.Password, msg, 0); err != nil {
			errs = append(errs, fmt.Errorf("%s at %s: %w", q.Side, chainex.FormatPrice(q.Price), err))
		}
	}
	return errors.Join(errs...)
}

func contains(qs []Quote, q Quote) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

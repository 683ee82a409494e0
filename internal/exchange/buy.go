package exchange

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// DefaultBuySlippageBps is `aitbc exchange buy`'s default --max-slippage:
// 1% above the best ask when the quote is made.
const DefaultBuySlippageBps = 100

// ErrCannotFill is a buy the book's asks cannot fill within the slippage
// allowed (or at all): nothing is placed and no money moves.
var ErrCannotFill = errors.New("exchange: the book cannot fill the buy within the slippage allowed")

// BuyQuote is what buying Amount AITBC at market costs now, read from the
// book's asks. In the batch auction everyone trades at one price, the
// marginal ask's (the highest ask the amount reaches), so Expected is
// Amount at that price; the order is placed with Worst as its limit, and
// it holds (so the buyer needs) Needed = Amount × Worst rounded up to the
// satoshi. What the fill does not use stays in the buyer's btc balance.
type BuyQuote struct {
	Amount       coin.Amount `json:"amount"` // AITBC bought (before the fee)
	BestAskMsat  uint64      `json:"best_ask_msat"`
	MarginalMsat uint64      `json:"price_msat"` // expected clearing price
	Price        string      `json:"price"`
	WorstMsat    uint64      `json:"worst_price_msat"`
	WorstPrice   string      `json:"worst_price"`
	SlippageBps  uint64      `json:"max_slippage_bps"`
	ExpectedSat  uint64      `json:"expected_sat"` // BTC at the expected price
	NeededSat    uint64      `json:"needed_sat"`   // BTC the order holds
	FeeBps       uint64      `json:"fee_bps"`
	Fee          coin.Amount `json:"fee"`     // AITBC, the buyer's fee
	Receive      coin.Amount `json:"receive"` // AITBC after the fee
}

// QuoteBuy quotes a market buy of amount AITBC base units against book
// (asks best first) with the worst price slippageBps above the best ask.
// t gives the fee and the order size rules.
func QuoteBuy(book chainex.BookView, t chainex.Ticker, amount, slippageBps uint64) (BuyQuote, error) {
	feeBps := t.FeeBps
	if amount == 0 || t.LotSize > 0 && amount%uint64(t.LotSize) != 0 {
		return BuyQuote{}, fmt.Errorf("%w: amount must be a positive multiple of %s AITBC", ErrInvalidRequest, t.LotSize)
	}
	if amount < uint64(t.MinAmount) {
		return BuyQuote{}, fmt.Errorf("%w: the exchange's minimum order is %s AITBC", ErrInvalidRequest, t.MinAmount)
	}
	if slippageBps > MaxSlippageBps {
		return BuyQuote{}, fmt.Errorf("%w: slippage above %d bps", ErrInvalidRequest, MaxSlippageBps)
	}
	if len(book.Asks) == 0 {
		return BuyQuote{}, fmt.Errorf("%w: nobody is selling AITBC", ErrCannotFill)
	}
	q := BuyQuote{Amount: coin.Amount(amount), BestAskMsat: book.Asks[0].PriceMsat, SlippageBps: slippageBps, FeeBps: feeBps}
	worst, err := WorstPrice(chainex.Buy, chainex.Ticker{BestAskMsat: q.BestAskMsat}, slippageBps)
	if err != nil {
		return BuyQuote{}, err
	}
	q.WorstMsat, q.WorstPrice = worst, chainex.FormatPrice(worst)
	var have uint64
	for _, l := range book.Asks {
		if l.PriceMsat > worst {
			break
		}
		have += uint64(l.Amount)
		q.MarginalMsat = l.PriceMsat
		if have >= amount {
			break
		}
	}
	if have < amount {
		return BuyQuote{}, fmt.Errorf("%w: the asks up to %s BTC (%s above the best ask) hold %s AITBC, fewer than %s",
			ErrCannotFill, q.WorstPrice, bps(slippageBps), coin.Amount(have), coin.Amount(amount))
	}
	q.Price = chainex.FormatPrice(q.MarginalMsat)
	var ok1, ok2 bool
	q.ExpectedSat, ok1 = chainex.Quote(amount, q.MarginalMsat)
	q.NeededSat, ok2 = holdOf(amount, worst)
	if !ok1 || !ok2 {
		return BuyQuote{}, fmt.Errorf("%w: value out of range", ErrInvalidRequest)
	}
	q.Fee = coin.Amount(feeOf(amount, feeBps))
	q.Receive = coin.Amount(amount) - q.Fee
	return q, nil
}

// holdOf is what a buy of amount at price holds: its value rounded up to
// the satoshi, as the chain's exchange module computes it.
func holdOf(amount, price uint64) (uint64, bool) {
	q := new(big.Int).Mul(new(big.Int).SetUint64(amount), new(big.Int).SetUint64(price))
	q.Add(q, big.NewInt(999_999_999))
	q.Quo(q, big.NewInt(1_000_000_000))
	return q.Uint64(), q.IsUint64()
}

func bps(b uint64) string { return fmt.Sprintf("%d.%02d%%", b/100, b%100) }

// feeOf is the exchange's fee on a fill: floor(amount × bps / 10,000).
func feeOf(amount, bps uint64) uint64 {
	return amount/10_000*bps + amount%10_000*bps/10_000
}

// BuyFill is what a market buy got in its block: the trades with the
// buyer's order, summed.
type BuyFill struct {
	Height    int64       `json:"height"`
	TxHash    string      `json:"tx_hash"`
	Bought    coin.Amount `json:"bought"`   // AITBC filled
	Fee       coin.Amount `json:"fee"`      // AITBC, the buyer's exchange fee
	Received  coin.Amount `json:"received"` // Bought − Fee
	SpentSat  uint64      `json:"spent_sat"`
	Spent     string      `json:"spent"` // BTC
	Price     string      `json:"price"` // the block's clearing price
	PriceMsat uint64      `json:"price_msat"`
	Trades    int         `json:"trades"`
	// Refunded is the btc the order held and did not spend, back in the
	// buyer's balance.
	RefundedSat uint64 `json:"refunded_sat"`
	Complete    bool   `json:"complete"` // the whole amount was bought
}

// FillOf sums the trades of buyer's order in the block at height.
func FillOf(trades []chainex.TradeView, buyer address.Address, height int64, feeBps uint64) BuyFill {
	f := BuyFill{Height: height}
	for _, t := range trades {
		if t.Height != height || t.Buyer != buyer {
			continue
		}
		f.Trades++
		f.Bought += t.Amount
		f.Fee += coin.Amount(feeOf(uint64(t.Amount), feeBps))
		f.SpentSat += t.QuoteSats
		f.PriceMsat, f.Price = t.PriceMsat, t.Price
	}
	f.Received = f.Bought - f.Fee
	f.Spent = bank.FormatUnits(coin.Amount(f.SpentSat), 8)
	return f
}

// BuyEvent is a step of Buy, for progress output.
type BuyEvent struct {
	Stage   string `json:"stage"` // deposit | deposit_status | funded | placed | filled
	Message string `json:"message"`
}

// Buyer runs `aitbc exchange buy`: wait until the buyer's btc covers the
// quote (deposits through the bridge minting it), then place the market
// buy and report the fill. Its functions are the edges: the CLI gives the
// node, the bridge's deposit listing and the wallet daemon.
type Buyer struct {
	Node  module.Getter
	Buyer address.Address
	// Deposits describes the buyer's deposits in progress, one line
	// each (mempool, k of N confirmations, minted), for the progress
	// output; nil: none shown.
	Deposits func(ctx context.Context) ([]string, error)
	// Place signs and submits msg and waits for its block.
	Place    func(ctx context.Context, msg tx.Msg) (hash string, height int64, err error)
	Progress func(BuyEvent)
	Poll     time.Duration // default 1s
}

// WaitFunded waits until the buyer holds at least sat of btc, reporting
// deposits as they change; it returns the balance.
func (b *Buyer) WaitFunded(ctx context.Context, sat uint64) (uint64, error) {
	poll := b.Poll
	if poll <= 0 {
		poll = time.Second
	}
	last := ""
	for {
		bal, err := bank.QueryBalances(ctx, b.Node, b.Buyer)
		if err != nil {
			return 0, err
		}
		have := uint64(bal.Amount(chainex.QuoteDenom))
		if have >= sat {
			b.progress("funded", fmt.Sprintf("%s btc on AITBC, enough", bank.FormatUnits(coin.Amount(have), 8)))
			return have, nil
		}
		if b.Deposits != nil {
			lines, err := b.Deposits(ctx)
			if err != nil {
				return 0, err
			}
			s := fmt.Sprintf("holding %s of %s btc", bank.FormatUnits(coin.Amount(have), 8), bank.FormatUnits(coin.Amount(sat), 8))
			for _, l := range lines {
				s += "\n  " + l
			}
			if s != last {
				b.progress("deposit_status", s)
				last = s
			}
		}
		select {
		case <-ctx.Done():
			return have, fmt.Errorf("waiting for the deposit: %w", ctx.Err())
		case <-time.After(poll):
		}
	}
}

// Execute re-checks the quote against the book now (it may have moved
// while the deposit confirmed): when the asks within the quote's worst
// price no longer hold the amount it fails with ErrCannotFill and places
// nothing. Otherwise it places the market buy at the worst price and
// returns its fill.
func (b *Buyer) Execute(ctx context.Context, q BuyQuote) (BuyFill, error) {
	book, err := chainex.QueryBook(ctx, b.Node, chainex.MaxDepth)
	if err != nil {
		return BuyFill{}, err
	}
	var have uint64
	for _, l := range book.Asks {
		if l.PriceMsat > q.WorstMsat {
			break
		}
		have += uint64(l.Amount)
	}
	if have < uint64(q.Amount) {
		return BuyFill{}, fmt.Errorf("%w: the asks up to %s BTC now hold %s AITBC, fewer than %s (your btc stays in your balance)",
			ErrCannotFill, q.WorstPrice, coin.Amount(have), q.Amount)
	}
	hash, height, err := b.Place(ctx, chainex.NewPlaceMsg(chainex.Buy, true, q.WorstMsat, uint64(q.Amount), 0))
	if err != nil {
		return BuyFill{}, err
	}
	b.progress("placed", fmt.Sprintf("market buy of %s AITBC, worst price %s BTC, in block %d", q.Amount, q.WorstPrice, height))
	trades, err := chainex.QueryTrades(ctx, b.Node, chainex.MaxTradesShown)
	if err != nil {
		return BuyFill{}, err
	}
	f := FillOf(trades.Trades, b.Buyer, height, q.FeeBps)
	f.TxHash = hash
	f.Complete = f.Bought == q.Amount
	if hold, ok := holdOf(uint64(q.Amount), q.WorstMsat); ok && hold >= f.SpentSat {
		f.RefundedSat = hold - f.SpentSat
	}
	return f, nil
}

func (b *Buyer) progress(stage, msg string) {
	if b.Progress != nil {
		b.Progress(BuyEvent{Stage: stage, Message: msg})
	}
}

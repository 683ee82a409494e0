package exchange

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Query limits.
const (
	MaxDepth         = 200  // price levels per side in /book
	MaxTradesShown   = 500  // trades in /trades
	MaxCandles       = 1000 // candles in /candles
	maxTradesScanned = MaxTradesKept
)

// FormatPrice writes a price (msat per AITBC) as BTC per AITBC.
func FormatPrice(msat uint64) string { return bank.FormatUnits(coin.Amount(msat), 11) }

// ParsePrice reads a price in BTC per AITBC (at most 11 decimals: the
// millisatoshi) into msat per AITBC.
func ParsePrice(s string) (uint64, error) {
	v, err := bank.ParseUnits(s, 11)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrPrice, err)
	}
	if v == 0 {
		return 0, fmt.Errorf("%w: zero", ErrPrice)
	}
	return uint64(v), nil
}

// AITBCPerBTC is the price as the seed states it ("1 BTC = 100,000
// AITBC"), rounded to the AITBC; 0 for no price.
func AITBCPerBTC(msat uint64) uint64 {
	if msat == 0 {
		return 0
	}
	return (100_000_000_000 + msat/2) / msat
}

func formatDenom(v uint64, denom string) string {
	if denom == QuoteDenom {
		return bank.FormatUnits(coin.Amount(v), 8)
	}
	return coin.Amount(v).String()
}

// OrderView is an open order as the API shows it.
type OrderView struct {
	ID        uint64          `json:"id"`
	Owner     address.Address `json:"owner"`
	Side      string          `json:"side"`
	Type      string          `json:"type"` // limit | market
	Price     string          `json:"price"`
	PriceMsat uint64          `json:"price_msat"`
	Amount    coin.Amount     `json:"amount"`
	Filled    coin.Amount     `json:"filled"`
	Held      string          `json:"held"` // in held_denom
	HeldDenom string          `json:"held_denom"`
	Height    int64           `json:"height"`
	Expires   int64           `json:"expires"`
}

func viewOrder(o Order) OrderView {
	owner, _ := address.FromBytes(o.Owner)
	typ := "limit"
	if o.Market {
		typ = "market"
	}
	return OrderView{ID: o.ID, Owner: owner, Side: o.Side.String(), Type: typ, Price: FormatPrice(o.Price), PriceMsat: o.Price,
		Amount: coin.Amount(o.Amount), Filled: coin.Amount(o.Filled), Held: formatDenom(o.Held, o.HeldDenom()), HeldDenom: o.HeldDenom(),
		Height: o.Height, Expires: o.Expires}
}

// Level is one price of the book.
type Level struct {
	Price     string      `json:"price"`
	PriceMsat uint64      `json:"price_msat"`
	Amount    coin.Amount `json:"amount"`
	Orders    int         `json:"orders"`
}

// BookView is GET /api/v1/exchange/book.
type BookView struct {
	Height int64   `json:"height"`
	Bids   []Level `json:"bids"` // best (highest) first
	Asks   []Level `json:"asks"` // best (lowest) first
}

// TradeView is one trade.
type TradeView struct {
	Seq       uint64          `json:"seq"`
	Height    int64           `json:"height"`
	Time      time.Time       `json:"time"`
	Price     string          `json:"price"`
	PriceMsat uint64          `json:"price_msat"`
	Amount    coin.Amount     `json:"amount"`
	Quote     string          `json:"btc"`
	QuoteSats uint64          `json:"sats"`
	BuyOrder  uint64          `json:"buy_order"`
	SellOrder uint64          `json:"sell_order"`
	Buyer     address.Address `json:"buyer"`
	Seller    address.Address `json:"seller"`
	Fee       coin.Amount     `json:"fee"` // both sides' fees, AITBC
}

func viewTrade(t Trade) TradeView {
	b, _ := address.FromBytes(t.Buyer)
	s, _ := address.FromBytes(t.Seller)
	return TradeView{Seq: t.Seq, Height: t.Height, Time: time.Unix(t.Time, 0).UTC(), Price: FormatPrice(t.Price), PriceMsat: t.Price,
		Amount: coin.Amount(t.Amount), Quote: bank.FormatUnits(coin.Amount(t.Quote), 8), QuoteSats: t.Quote, BuyOrder: t.Buy, SellOrder: t.Sell,
		Buyer: b, Seller: s, Fee: coin.Amount(t.BuyerFee + t.SellFee)}
}

// TradesView is GET /api/v1/exchange/trades.
type TradesView struct {
	Height int64       `json:"height"`
	Trades []TradeView `json:"trades"` // newest first
}

// Candle is one interval's prices and volume.
type Candle struct {
	Start  time.Time   `json:"start"`
	Open   string      `json:"open"`
	High   string      `json:"high"`
	Low    string      `json:"low"`
	Close  string      `json:"close"`
	OpenM  uint64      `json:"open_msat"`
	HighM  uint64      `json:"high_msat"`
	LowM   uint64      `json:"low_msat"`
	CloseM uint64      `json:"close_msat"`
	Volume coin.Amount `json:"volume"` // AITBC
	Trades int         `json:"trades"`
}

// CandlesView is GET /api/v1/exchange/candles.
type CandlesView struct {
	Height   int64    `json:"height"`
	Interval string   `json:"interval"`
	Candles  []Candle `json:"candles"` // oldest first
}

// Ticker is GET /api/v1/exchange/ticker.
type Ticker struct {
	Height      int64       `json:"height"`
	Pair        string      `json:"pair"`
	Last        string      `json:"last"`
	LastMsat    uint64      `json:"last_msat"`
	LastHeight  int64       `json:"last_height"`
	AITBCPerBTC uint64      `json:"aitbc_per_btc"`
	BestBid     string      `json:"best_bid"`
	BestBidMsat uint64      `json:"best_bid_msat"`
	BestAsk     string      `json:"best_ask"`
	BestAskMsat uint64      `json:"best_ask_msat"`
	High24h     string      `json:"high_24h"`
	Low24h      string      `json:"low_24h"`
	Volume24h   coin.Amount `json:"volume_24h"`
	Trades24h   int         `json:"trades_24h"`
	FeeBps      uint64      `json:"fee_bps"`
	MinAmount   coin.Amount `json:"min_amount"`
	LotSize     coin.Amount `json:"lot_size"`
}

// OrdersView is GET /api/v1/exchange/orders/{address}.
type OrdersView struct {
	Height int64       `json:"height"`
	Owner  string      `json:"owner"`
	Orders []OrderView `json:"orders"`
}

// OrderResult is GET /api/v1/exchange/order/{id}.
type OrderResult struct {
	Height int64     `json:"height"`
	Order  OrderView `json:"order"`
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/exchange/book", Summary: "the AITBC/BTC order book by price level (?depth=, at most 200 a side)", Handle: k.queryBook},
		{Method: "GET", Path: "/api/v1/exchange/trades", Summary: "the newest trades (?limit=, at most 500)", Handle: k.queryTrades},
		{Method: "GET", Path: "/api/v1/exchange/candles", Summary: "price candles from the kept trades (?interval=1m|5m|15m|1h|1d, ?limit=)", Handle: k.queryCandles},
		{Method: "GET", Path: "/api/v1/exchange/ticker", Summary: "last clearing price, best bid and ask, 24 h high, low and volume, fee and minimums", Handle: k.queryTicker},
		{Method: "GET", Path: "/api/v1/exchange/orders/{address}", Summary: "an account's open orders", Handle: k.queryOrders},
		{Method: "GET", Path: "/api/v1/exchange/order/{id}", Summary: "one open order", Handle: k.queryOrder},
	}
}

func intParam(in module.Request, name string, def, max int) (int, error) {
	s := in.Param(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %s=%q", ErrInvalidAddress, name, s)
	}
	return min(n, max), nil
}

// Book reads the book, depth levels a side.
func Book(r state.View, height int64, depth int) (BookView, error) {
	v := BookView{Height: height, Bids: []Level{}, Asks: []Level{}}
	for _, side := range []struct {
		prefix []byte
		out    *[]Level
	}{{prefixBuys, &v.Bids}, {prefixSells, &v.Asks}} {
		var bad error
		err := r.Iterate(side.prefix, false, func(key, _ []byte) bool {
			price := bookPrice(side.prefix, key)
			o, err := getOrder(r, beUint(key[len(key)-8:]))
			if err != nil {
				bad = err
				return false
			}
			lv := *side.out
			if n := len(lv); n > 0 && lv[n-1].PriceMsat == price {
				lv[n-1].Amount += coin.Amount(o.Left())
				lv[n-1].Orders++
				return true
			}
			if len(lv) == depth {
				return false
			}
			*side.out = append(lv, Level{Price: FormatPrice(price), PriceMsat: price, Amount: coin.Amount(o.Left()), Orders: 1})
			return true
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			return v, err
		}
	}
	return v, nil
}

func (k *Keeper) queryBook(q module.Query, in module.Request) (any, error) {
	depth, err := intParam(in, "depth", 50, MaxDepth)
	if err != nil {
		return nil, err
	}
	return Book(q.State, q.Height, depth)
}

// newestTrades reads up to n trades, newest first.
func newestTrades(r state.View, n int) ([]Trade, error) {
	var out []Trade
	var bad error
	err := r.Iterate(prefixTrade, true, func(_, v []byte) bool {
		var t Trade
		if bad = tx.Unmarshal(v, &t); bad != nil {
			return false
		}
		out = append(out, t)
		return len(out) < n
	})
	if err == nil {
		err = bad
	}
	return out, err
}

func (k *Keeper) queryTrades(q module.Query, in module.Request) (any, error) {
	n, err := intParam(in, "limit", 50, MaxTradesShown)
	if err != nil {
		return nil, err
	}
	ts, err := newestTrades(q.State, n)
	if err != nil {
		return nil, err
	}
	v := TradesView{Height: q.Height, Trades: []TradeView{}}
	for _, t := range ts {
		v.Trades = append(v.Trades, viewTrade(t))
	}
	return v, nil
}

var intervals = map[string]int64{"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}

func (k *Keeper) queryCandles(q module.Query, in module.Request) (any, error) {
	iv := in.Param("interval")
	if iv == "" {
		iv = "1m"
	}
	secs, ok := intervals[iv]
	if !ok {
		return nil, fmt.Errorf("%w: interval=%q (1m, 5m, 15m, 1h or 1d)", ErrInvalidAddress, iv)
	}
	n, err := intParam(in, "limit", 100, MaxCandles)
	if err != nil {
		return nil, err
	}
	ts, err := newestTrades(q.State, maxTradesScanned)
	if err != nil {
		return nil, err
	}
	return CandlesView{Height: q.Height, Interval: iv, Candles: Candles(ts, secs, n)}, nil
}

// Candles groups trades (newest first) into at most n intervals of secs
// seconds, oldest first.
func Candles(newestFirst []Trade, secs int64, n int) []Candle {
	out := []Candle{}
	for i := len(newestFirst) - 1; i >= 0; i-- {
		t := newestFirst[i]
		start := t.Time - t.Time%secs
		if m := len(out); m > 0 && out[m-1].Start.Unix() == start {
			c := &out[m-1]
			c.HighM, c.LowM, c.CloseM = max(c.HighM, t.Price), min(c.LowM, t.Price), t.Price
			c.Volume += coin.Amount(t.Amount)
			c.Trades++
			continue
		}
		out = append(out, Candle{Start: time.Unix(start, 0).UTC(), OpenM: t.Price, HighM: t.Price, LowM: t.Price, CloseM: t.Price, Volume: coin.Amount(t.Amount), Trades: 1})
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	for i := range out {
		c := &out[i]
		c.Open, c.High, c.Low, c.Close = FormatPrice(c.OpenM), FormatPrice(c.HighM), FormatPrice(c.LowM), FormatPrice(c.CloseM)
	}
	return out
}

func (k *Keeper) queryTicker(q module.Query, _ module.Request) (any, error) {
	p, err := k.Params(q.State)
	if err != nil {
		return nil, err
	}
	t := Ticker{Height: q.Height, Pair: "AITBC/BTC", FeeBps: p.FeeBps, MinAmount: coin.Amount(p.MinAmount), LotSize: coin.Amount(p.LotSize)}
	if v, err := q.State.Get(keyLast); err != nil {
		return nil, err
	} else if len(v) == 16 {
		t.LastHeight, t.LastMsat = int64(beUint(v[:8])), beUint(v[8:])
	}
	if b, ok, err := first(q.State, prefixBuys); err != nil {
		return nil, err
	} else if ok {
		t.BestBidMsat = b
	}
	if a, ok, err := first(q.State, prefixSells); err != nil {
		return nil, err
	} else if ok {
		t.BestAskMsat = a
	}
	ts, err := newestTrades(q.State, maxTradesScanned)
	if err != nil {
		return nil, err
	}
	var hi, lo uint64
	since := q.Time.Unix() - 86400
	for _, tr := range ts {
		if tr.Time < since {
			break
		}
		if t.Trades24h == 0 || tr.Price > hi {
			hi = tr.Price
		}
		if t.Trades24h == 0 || tr.Price < lo {
			lo = tr.Price
		}
		t.Volume24h += coin.Amount(tr.Amount)
		t.Trades24h++
	}
	t.Last, t.BestBid, t.BestAsk, t.High24h, t.Low24h = FormatPrice(t.LastMsat), FormatPrice(t.BestBidMsat), FormatPrice(t.BestAskMsat), FormatPrice(hi), FormatPrice(lo)
	t.AITBCPerBTC = AITBCPerBTC(t.LastMsat)
	return t, nil
}

// OpenOrders reads owner's open orders, oldest first.
func OpenOrders(r state.View, owner address.Address) ([]OrderView, error) {
	out := []OrderView{}
	var bad error
	err := r.Iterate(cat(prefixOwner, owner[:]), false, func(key, _ []byte) bool {
		o, err := getOrder(r, beUint(key[len(key)-8:]))
		if err != nil {
			bad = err
			return false
		}
		out = append(out, viewOrder(o))
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
}

func (k *Keeper) queryOrders(q module.Query, in module.Request) (any, error) {
	a, err := address.Parse(in.PathValue("address"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAddress, err)
	}
	os, err := OpenOrders(q.State, a)
	if err != nil {
		return nil, err
	}
	return OrdersView{Height: q.Height, Owner: a.String(), Orders: os}, nil
}

func (k *Keeper) queryOrder(q module.Query, in module.Request) (any, error) {
	id, err := strconv.ParseUint(in.PathValue("id"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: order id %q", ErrInvalidAddress, in.PathValue("id"))
	}
	o, err := getOrder(q.State, id)
	if err != nil {
		return nil, err
	}
	return OrderResult{Height: q.Height, Order: viewOrder(o)}, nil
}

// QueryBook fetches the book from a node.
func QueryBook(ctx context.Context, g module.Getter, depth int) (BookView, error) {
	var out BookView
	return out, g.GetJSON(ctx, "/api/v1/exchange/book?depth="+strconv.Itoa(depth), &out)
}

// QueryTrades fetches the newest trades.
func QueryTrades(ctx context.Context, g module.Getter, limit int) (TradesView, error) {
	var out TradesView
	return out, g.GetJSON(ctx, "/api/v1/exchange/trades?limit="+strconv.Itoa(limit), &out)
}

// QueryCandles fetches candles.
func QueryCandles(ctx context.Context, g module.Getter, interval string, limit int) (CandlesView, error) {
	var out CandlesView
	return out, g.GetJSON(ctx, "/api/v1/exchange/candles?interval="+url.QueryEscape(interval)+"&limit="+strconv.Itoa(limit), &out)
}

// QueryTicker fetches the ticker.
func QueryTicker(ctx context.Context, g module.Getter) (Ticker, error) {
	var out Ticker
	return out, g.GetJSON(ctx, "/api/v1/exchange/ticker", &out)
}

// QueryOrders fetches an account's open orders.
func QueryOrders(ctx context.Context, g module.Getter, a address.Address) (OrdersView, error) {
	var out OrdersView
	return out, g.GetJSON(ctx, "/api/v1/exchange/orders/"+a.String(), &out)
}

// QueryOrder fetches one open order.
func QueryOrder(ctx context.Context, g module.Getter, id uint64) (OrderResult, error) {
	var out OrderResult
	return out, g.GetJSON(ctx, "/api/v1/exchange/order/"+strconv.FormatUint(id, 10), &out)
}

// TradeCount is how many trades the exchange has made, ever.
func TradeCount(r state.Reader) (uint64, error) { return getUint(r, keyTradeSeq) }

// OpenOrderCount is how many orders are open.
func OpenOrderCount(r state.View) (int, error) {
	_, n, err := sumHeld(r)
	return n, err
}

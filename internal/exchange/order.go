package exchange

import (
	"context"
	"fmt"
	"math/big"
	"strings"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// OrderRequest is an order as people write it (the CLI's flags, POST
// /api/exchange/orders).
type OrderRequest struct {
	Side   string `json:"side"`            // buy | sell
	Type   string `json:"type,omitempty"`  // limit (default) | market
	Price  string `json:"price,omitempty"` // BTC per AITBC; a market order's worst price (or use slippage)
	Amount string `json:"amount"`          // AITBC
	// SlippageBps bounds a market order without a price: its worst price
	// is the best opposite quote moved this many basis points against it.
	SlippageBps uint64 `json:"slippage_bps,omitempty"`
	Expires     int64  `json:"expires,omitempty"` // last height; 0: the chain's default lifetime
}

// MaxSlippageBps bounds a market order's slippage (50%).
const MaxSlippageBps = 5000

// BuildOrder turns a request into the exchange/place message. A market
// order without a price reads the ticker from node for the best quote on
// the other side.
func BuildOrder(ctx context.Context, node module.Getter, r OrderRequest) (tx.Msg, error) {
	side, err := chainex.ParseSide(strings.TrimSpace(r.Side))
	if err != nil {
		return tx.Msg{}, fmt.Errorf("%w: side must be buy or sell", ErrInvalidRequest)
	}
	market := false
	switch r.Type {
	case "", "limit":
	case "market":
		market = true
	default:
		return tx.Msg{}, fmt.Errorf("%w: type %q (limit or market)", ErrInvalidRequest, r.Type)
	}
	amount, err := coin.Parse(strings.TrimSpace(r.Amount))
	if err != nil || amount == 0 {
		return tx.Msg{}, fmt.Errorf("%w: amount %q: a positive AITBC amount", ErrInvalidRequest, r.Amount)
	}
	if r.Expires < 0 {
		return tx.Msg{}, fmt.Errorf("%w: expires must be a height", ErrInvalidRequest)
	}
	var price uint64
	switch {
	case r.Price != "":
		if price, err = chainex.ParsePrice(strings.TrimSpace(r.Price)); err != nil {
			return tx.Msg{}, fmt.Errorf("%w: price %q: %v", ErrInvalidRequest, r.Price, err)
		}
	case !market:
		return tx.Msg{}, fmt.Errorf("%w: a limit order needs a price", ErrInvalidRequest)
	default:
		if r.SlippageBps == 0 || r.SlippageBps > MaxSlippageBps {
			return tx.Msg{}, fmt.Errorf("%w: a market order needs a worst price or a slippage of 1-%d bps", ErrInvalidRequest, MaxSlippageBps)
		}
		t, err := chainex.QueryTicker(ctx, node)
		if err != nil {
			return tx.Msg{}, fmt.Errorf("%w: %v", ErrNodeUnavailable, err)
		}
		if price, err = WorstPrice(side, t, r.SlippageBps); err != nil {
			return tx.Msg{}, err
		}
	}
	return chainex.NewPlaceMsg(side, market, price, uint64(amount), r.Expires), nil
}

// WorstPrice is a market order's bound: the best ask raised (a buy) or the
// best bid lowered (a sell) by slippage basis points, rounded against the
// trader's favour only by the millisatoshi.
func WorstPrice(side chainex.Side, t chainex.Ticker, slippageBps uint64) (uint64, error) {
	ref := t.BestAskMsat
	num := 10_000 + slippageBps
	if side == chainex.Sell {
		ref, num = t.BestBidMsat, 10_000-slippageBps
	}
	if ref == 0 {
		return 0, fmt.Errorf("%w: no %s orders in the book", ErrNoPrice, map[chainex.Side]string{chainex.Buy: "sell", chainex.Sell: "buy"}[side])
	}
	p := new(big.Int).Mul(new(big.Int).SetUint64(ref), new(big.Int).SetUint64(num))
	p.Quo(p, big.NewInt(10_000))
	if p.Sign() == 0 || !p.IsUint64() {
		return 0, fmt.Errorf("%w: price out of range", ErrInvalidRequest)
	}
	return p.Uint64(), nil
}

package web

import (
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
)

// exchangeView is the /exchange page: the AITBC/BTC order book of the
// exchange module, its price chart, trades, and the signed-in wallet's
// open orders.
type exchangeView struct {
	Ticker  chainex.Ticker
	Book    chainex.BookView
	Trades  []chainex.TradeView
	Price   template.HTML // the chart of closing prices per minute
	Volume  template.HTML
	Mine    []chainex.OrderView
	Address string // the signed-in wallet's address ("" signed out)
	PerBTC  string // the last price as AITBC per BTC, the seed's way
	Buy     *buyView
}

// exchangePage reads the order book, the trades and the candles from the
// node's exchange routes.
func (s *Server) exchangePage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var v exchangeView
	var err error
	if v.Ticker, err = chainex.QueryTicker(ctx, s.cfg.Node); err != nil {
		return err
	}
	if v.Book, err = chainex.QueryBook(ctx, s.cfg.Node, 15); err != nil {
		return err
	}
	tv, err := chainex.QueryTrades(ctx, s.cfg.Node, 25)
	if err != nil {
		return err
	}
	v.Trades = tv.Trades
	cv, err := chainex.QueryCandles(ctx, s.cfg.Node, "1m", 60)
	if err != nil {
		return err
	}
	price := chart{ID: "exchange-price", Title: "Price", Desc: "closing price of each minute with trades, last 60", Unit: "sat per AITBC"}
	vol := chart{ID: "exchange-volume", Title: "Volume", Desc: "AITBC traded per minute, last 60", Unit: "AITBC"}
	for _, c := range cv.Candles {
		label := c.Start.Local().Format(time.TimeOnly)
		price.Points = append(price.Points, point{Label: label, Value: float64(c.CloseM) / 1000})
		vol.Points = append(vol.Points, point{Label: label, Value: float64(c.Volume) / 1e6})
	}
	v.Price, v.Volume = price.render(), vol.render()
	v.PerBTC = aitbcPerBTC(v.Ticker.LastMsat)
	var owner *address.Address
	if sess := s.sessions.from(r); sess != nil {
		v.Address = sess.Address.String()
		owner = &sess.Address
		ov, err := chainex.QueryOrders(ctx, s.cfg.Node, sess.Address)
		if err != nil {
			return err
		}
		v.Mine = ov.Orders
	}
	if v.Buy, err = s.buyFlow(ctx, r.URL.Query(), v.Ticker, owner); err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "exchange.html", "Exchange AITBC/BTC", "exchange", v)
}

// aitbcPerBTC writes a price (msat per AITBC) as AITBC per BTC.
func aitbcPerBTC(msat uint64) string {
	if msat == 0 {
		return "–"
	}
	return fmt.Sprint(chainex.AITBCPerBTC(msat))
}

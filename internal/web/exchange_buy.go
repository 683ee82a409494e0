package web

import (
	"context"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/url"
	"strconv"
	"strings"

	"rsc.io/qr"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/exchange"
	"github.com/aitbc/aitbc/internal/httpx"
)

// buyView is /exchange's buy flow (the page form of `aitbc exchange buy`):
// the quote for ?amount= AITBC within ?slippage= percent, and for a
// signed-in wallet its deposit address with a QR code, its btc against
// what the buy needs, and its deposits.
type buyView struct {
	Amount   string // as typed
	Slippage string
	Quote    *exchange.BuyQuote
	Err      string // why there is no quote
	Expected string // BTC
	Needed   string // BTC
	Bridge   bool   // the chain has a Bitcoin bridge
	Network  string
	Confs    int64
	// The signed-in wallet's side.
	Address   string // deposit address ("" none yet)
	URI       string // BIP 21, with the amount still to send
	QR        template.HTML
	Have      string // btc held
	Short     string // BTC still to deposit ("" enough)
	Enough    bool
	Deposits  []depositRow
	MinDepSat uint64
}

// depositRow is one of the wallet's deposits as the page shows it.
type depositRow struct {
	bridge.DepositStatus
	BTC string
}

// maxBuyInput bounds the form's fields before they are parsed.
const maxBuyInput = 32

// buyFlow builds the buy section; errors of the node end the page,
// a bad amount or a book that cannot fill it are shown in the section.
func (s *Server) buyFlow(ctx context.Context, q url.Values, t chainex.Ticker, owner *address.Address) (*buyView, error) {
	v := &buyView{Amount: q.Get("amount"), Slippage: q.Get("slippage")}
	if v.Slippage == "" {
		v.Slippage = strconv.FormatFloat(float64(exchange.DefaultBuySlippageBps)/100, 'f', -1, 64)
	}
	bv, err := cb.Query(ctx, s.cfg.Node)
	if err != nil {
		return nil, err
	}
	v.Bridge, v.Network, v.Confs, v.MinDepSat = bv.Enabled, bv.Params.Network, bv.Params.Confirmations, bv.Params.MinDepositSat
	var have uint64
	if owner != nil && v.Bridge {
		if have, err = s.depositSide(ctx, v, *owner); err != nil {
			return nil, err
		}
	}
	if v.Amount == "" {
		return v, nil
	}
	amt, err := coin.Parse(strings.TrimSpace(v.Amount))
	slip, serr := strconv.ParseFloat(strings.TrimSpace(v.Slippage), 64)
	switch {
	case len(v.Amount) > maxBuyInput || err != nil || amt == 0:
		v.Err = "The amount must be a positive number of AITBC."
		return v, nil
	case len(v.Slippage) > maxBuyInput || serr != nil || slip < 0 || slip*100 > exchange.MaxSlippageBps:
		v.Err = fmt.Sprintf("The slippage must be 0 to %d percent.", exchange.MaxSlippageBps/100)
		return v, nil
	}
	book, err := chainex.QueryBook(ctx, s.cfg.Node, chainex.MaxDepth)
	if err != nil {
		return nil, err
	}
	quote, err := exchange.QuoteBuy(book, t, uint64(amt), uint64(slip*100+0.5))
	if err != nil {
		if errors.Is(err, exchange.ErrCannotFill) || errors.Is(err, exchange.ErrInvalidRequest) {
			v.Err = strings.TrimPrefix(err.Error(), "exchange: ")
			return v, nil
		}
		return nil, err
	}
	v.Quote = &quote
	v.Expected, v.Needed = btcText(quote.ExpectedSat), btcText(quote.NeededSat)
	v.Enough = have >= quote.NeededSat
	if v.Address == "" || v.Enough {
		return v, nil
	}
	send := max(quote.NeededSat-have, v.MinDepSat)
	v.Short = btcText(send)
	v.URI = "bitcoin:" + v.Address + "?amount=" + v.Short
	if v.QR, err = qrSVG(v.URI); err != nil {
		return nil, err
	}
	return v, nil
}

// depositSide fills in the wallet's btc, deposit address and deposits
// (from the chain's records: the web server needs no Bitcoin node) and
// returns the btc it holds.
func (s *Server) depositSide(ctx context.Context, v *buyView, owner address.Address) (uint64, error) {
	bal, err := bank.QueryBalances(ctx, s.cfg.Node, owner)
	if err != nil {
		return 0, err
	}
	have := uint64(bal.Amount(chainex.QuoteDenom))
	v.Have = btcText(have)
	a, err := cb.QueryAddress(ctx, s.cfg.Node, owner)
	switch {
	case httpx.IsCode(err, cb.ErrNoAddress.Name):
		return have, nil // no deposit address yet: the page says how to get one
	case err != nil:
		return 0, err
	}
	v.Address = a.Address
	deps, err := bridge.AccountDeposits(ctx, s.cfg.Node, nil, owner, 0)
	if err != nil {
		return 0, err
	}
	for _, d := range deps {
		v.Deposits = append(v.Deposits, depositRow{d, btcText(d.Amount)})
	}
	return have, nil
}

func btcText(sat uint64) string { return bank.FormatUnits(coin.Amount(sat), 8) }

// qrSVG draws text's QR code (error correction M) as an SVG of one path,
// with the quiet zone of four modules the standard asks for; the label
// carries the text for those who cannot scan it.
func qrSVG(text string) (template.HTML, error) {
	c, err := qr.Encode(text, qr.M)
	if err != nil {
		return "", fmt.Errorf("web: QR code: %w", err)
	}
	var b strings.Builder
	n := c.Size + 8
	fmt.Fprintf(&b, `<svg class="qr" id="deposit-qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="QR code of %s" shape-rendering="crispEdges">`,
		n, n, n*5, n*5, html.EscapeString(text))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y := 0; y < c.Size; y++ {
		for x := 0; x < c.Size; x++ {
			if c.Black(x, y) {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x+4, y+4)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()), nil // numbers and an escaped label only
}

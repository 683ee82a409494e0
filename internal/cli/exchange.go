package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/exchange"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// newExchangeCmd is `aitbc exchange`: the AITBC/BTC order book on chain.
// The trading commands read the node (--node) and sign through the
// wallet daemon (--wallet-url), as every chain command does; `serve` runs
// the exchange API on 8001 for the web and HTTP clients.
//
// Subcommands are listed in one AddCommand call below: the book's, then
// a marked place for the Bitcoin bridge's, which live in their own file.
func newExchangeCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exchange",
		Short: "Trade AITBC against BTC on the chain's order book (cleared once per block at one price)",
		Long: `The AITBC/BTC order book lives on chain: orders placed during a block are
cleared together at its end, at one price for everyone (a frequent batch
auction), so nobody gains by seeing an order first. Prices are BTC per AITBC
(0.00001 = 100,000 AITBC per BTC); amounts are AITBC. See docs/EXCHANGE.md.`,
	}
	cmd.AddCommand(
		// The order book (this file).
		newExchangeBookCmd(g), newExchangeTradesCmd(g), newExchangeTickerCmd(g),
		newExchangeOrderCmd(g), newExchangeCancelCmd(g), newExchangeOrdersCmd(g), newExchangeServeCmd(g),
		// Buying AITBC with bitcoin through the bridge (exchange_buy.go).
		newExchangeBuyCmd(g),
	)
	// The Bitcoin bridge's commands (deposit-address, deposits, withdraw,
	// withdrawals, reserves, btc-faucet, bridge-daemon), exchange_bridge.go.
	cmd.AddCommand(exchangeBridgeCmds(g)...)
	return cmd
}

func newExchangeBookCmd(g *Globals) *cobra.Command {
	var depth int
	cmd := &cobra.Command{
		Use:   "book",
		Short: "The order book by price level: asks above, bids below",
		Example: `  aitbc exchange book
  aitbc exchange book --depth 5 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if depth < 1 || depth > chainex.MaxDepth {
				return usagef("--depth must be 1-%d", chainex.MaxDepth)
			}
			b, err := chainex.QueryBook(cmd.Context(), g.node(), depth)
			if err != nil {
				return err
			}
			return g.Print(b, func(w io.Writer) { printBook(w, b) })
		},
	}
	cmd.Flags().IntVar(&depth, "depth", 10, "price levels a side")
	return cmd
}

func printBook(w io.Writer, b chainex.BookView) {
	fmt.Fprintf(w, "AITBC/BTC at height %d\n%-16s %18s %7s\n", b.Height, "price (BTC)", "amount (AITBC)", "orders")
	for i := len(b.Asks) - 1; i >= 0; i-- {
		l := b.Asks[i]
		fmt.Fprintf(w, "ask %-12s %18s %7d\n", l.Price, l.Amount, l.Orders)
	}
	fmt.Fprintln(w, strings.Repeat("-", 43))
	for _, l := range b.Bids {
		fmt.Fprintf(w, "bid %-12s %18s %7d\n", l.Price, l.Amount, l.Orders)
	}
	if len(b.Asks)+len(b.Bids) == 0 {
		fmt.Fprintln(w, "(the book is empty)")
	}
}

func newExchangeTradesCmd(g *Globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "trades",
		Short: "The newest trades, each at its block's clearing price",
		Example: `  aitbc exchange trades
  aitbc exchange trades --limit 100 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > chainex.MaxTradesShown {
				return usagef("--limit must be 1-%d", chainex.MaxTradesShown)
			}
			v, err := chainex.QueryTrades(cmd.Context(), g.node(), limit)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				for _, t := range v.Trades {
					fmt.Fprintf(w, "%s  height %-7d %14s AITBC at %-13s = %s BTC  (orders %d/%d)\n", t.Time.Local().Format(time.DateTime), t.Height, t.Amount, t.Price, t.Quote, t.BuyOrder, t.SellOrder)
				}
				if len(v.Trades) == 0 {
					fmt.Fprintln(w, "no trades yet")
				}
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many")
	return cmd
}

func newExchangeTickerCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ticker",
		Short: "Last price, best bid and ask, 24 h range and volume",
		Example: `  aitbc exchange ticker
  aitbc exchange ticker --output json | jq .last`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := chainex.QueryTicker(cmd.Context(), g.node())
			if err != nil {
				return err
			}
			return g.Print(t, func(w io.Writer) {
				orNone := func(msat uint64, s string) string {
					if msat == 0 {
						return "–"
					}
					return s
				}
				if t.LastMsat == 0 {
					fmt.Fprintf(w, "%s  no trade yet\n", t.Pair)
				} else {
					fmt.Fprintf(w, "%s  last %s BTC (1 BTC = %d AITBC, block %d)\n", t.Pair, t.Last, t.AITBCPerBTC, t.LastHeight)
				}
				fmt.Fprintf(w, "bid %s  ask %s\n", orNone(t.BestBidMsat, t.BestBid), orNone(t.BestAskMsat, t.BestAsk))
				if t.Trades24h > 0 {
					fmt.Fprintf(w, "24h high %s  low %s  volume %s AITBC in %d trades\n", t.High24h, t.Low24h, t.Volume24h, t.Trades24h)
				}
				fmt.Fprintf(w, "fee %.2f%% each side; minimum %s AITBC in lots of %s\n", float64(t.FeeBps)/100, t.MinAmount, t.LotSize)
			})
		},
	}
	return cmd
}

// orderResult is what order and cancel print.
type orderResult struct {
	walletd.Submitted
	Height int64              `json:"height,omitempty"`
	Order  *chainex.OrderView `json:"order,omitempty"` // still open after its block (--wait)
	Note   string             `json:"note,omitempty"`
}

func newExchangeOrderCmd(g *Globals) *cobra.Command {
	var r exchange.OrderRequest
	var wallet, password string
	var slippage float64
	var wait bool
	var waitTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "order",
		Short: "Place a limit or market order; it trades at the end of its block",
		Long: `Places an order signed by --wallet. A limit order rests until filled,
cancelled or expired (--expires, a height). A market order trades in its
block only, never worse than --price (its worst price) or, without one, the
best opposite quote moved by --slippage percent; what its block does not fill
is refunded. An order that could match one of the wallet's own open orders
is refused (self_trade).`,
		Example: `  aitbc exchange order --side sell --price 0.00001 --amount 1000 --wallet maker
  aitbc exchange order --side buy --type market --amount 1000 --slippage 1 --wallet customer-1 --wait
  aitbc exchange order --side buy --price 0.0000095 --amount 500 --wallet customer-1 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("wallet", wallet); err != nil {
				return err
			}
			if r.Side == "" || r.Amount == "" {
				return usagef("--side and --amount are required")
			}
			if slippage < 0 || slippage*100 > exchange.MaxSlippageBps {
				return usagef("--slippage must be 0-%d (percent)", exchange.MaxSlippageBps/100)
			}
			r.SlippageBps = uint64(slippage*100 + 0.5)
			ctx := cmd.Context()
			msg, err := exchange.BuildOrder(ctx, g.node(), r)
			if err != nil {
				return err
			}
			res, err := g.submitTx(ctx, wallet, password, msg)
			if err != nil {
				return err
			}
			out := orderResult{Submitted: res}
			if wait {
				t, err := g.waitCommitted(ctx, res.TxHash, waitTimeout)
				if err != nil {
					return err
				}
				out.Height = t.Height
				place, _ := chainex.DecodePlace(msg)
				if o, err := placedOrder(ctx, g.node(), res.From, t.Height, place); err == nil && o != nil {
					out.Order = o
				} else {
					out.Note = "no longer open after its block: filled, or a market order's rest refunded (see aitbc exchange trades)"
				}
			}
			return g.Print(out, func(w io.Writer) {
				fmt.Fprintln(w, res.TxHash)
				switch {
				case out.Order != nil:
					fmt.Fprintf(w, "order %d open: %s of %s AITBC filled, at %s BTC per AITBC\n", out.Order.ID, out.Order.Filled, out.Order.Amount, out.Order.Price)
				case out.Note != "":
					fmt.Fprintf(w, "committed in block %d; %s\n", out.Height, out.Note)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Side, "side", "", "buy or sell (AITBC)")
	f.StringVar(&r.Type, "type", "limit", "limit or market")
	f.StringVar(&r.Price, "price", "", "BTC per AITBC (0.00001 is 100,000 AITBC per BTC); a market order's worst price")
	f.StringVar(&r.Amount, "amount", "", "AITBC to buy or sell")
	f.Float64Var(&slippage, "slippage", 0, "a market order without --price: percent from the best opposite quote")
	f.Int64Var(&r.Expires, "expires", 0, "last height a limit order trades at (default: the chain's default lifetime)")
	walletFlag(cmd, &wallet, "wallet that places the order")
	f.StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD; not needed while the daemon holds the wallet unlocked)")
	f.DurationVar(&waitTimeout, "wait-timeout", time.Minute, "how long --wait waits")
	waitBoolFlag(f, &wait, &waitTimeout, "wait for the order's block and show what is left of it")
	return cmd
}

// placedOrder finds the open order a placement made: the owner's newest
// order placed at height with the message's terms.
func placedOrder(ctx context.Context, node *rpc.Client, owner address.Address, height int64, m chainex.MsgPlace) (*chainex.OrderView, error) {
	v, err := chainex.QueryOrders(ctx, node, owner)
	if err != nil {
		return nil, err
	}
	var found *chainex.OrderView
	for i, o := range v.Orders {
		if o.Height == height && o.PriceMsat == m.Price && uint64(o.Amount) == m.Amount && o.Side == m.Side.String() {
			found = &v.Orders[i]
		}
	}
	return found, nil
}

func newExchangeCancelCmd(g *Globals) *cobra.Command {
	var id uint64
	var wallet, password string
	cmd := &cobra.Command{
		Use:   "cancel",
		Short: "Cancel one of the wallet's open orders; its held funds come back",
		Example: `  aitbc exchange cancel --order-id 42 --wallet customer-1
  aitbc exchange cancel --order-id 42 --wallet customer-1 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("wallet", wallet); err != nil {
				return err
			}
			if id == 0 {
				return usagef("--order-id is required")
			}
			res, err := g.submitTx(cmd.Context(), wallet, password, chainex.NewCancelMsg(id))
			if err != nil {
				return err
			}
			return g.Print(orderResult{Submitted: res}, func(w io.Writer) { fmt.Fprintln(w, res.TxHash) })
		},
	}
	cmd.Flags().Uint64Var(&id, "order-id", 0, "the order's id (aitbc exchange orders)")
	walletFlag(cmd, &wallet, "wallet that owns the order")
	cmd.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	return cmd
}

func newExchangeOrdersCmd(g *Globals) *cobra.Command {
	var a addressFlag
	cmd := &cobra.Command{
		Use:   "orders",
		Short: "A wallet's open orders",
		Example: `  aitbc exchange orders --wallet customer-1
  aitbc exchange orders --address aitbc1... --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, _, err := a.resolve(cmd.Context(), g)
			if err != nil {
				return err
			}
			v, err := chainex.QueryOrders(cmd.Context(), g.node(), addr)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				for _, o := range v.Orders {
					fmt.Fprintf(w, "%-6d %-4s %-6s %14s AITBC at %-13s filled %-14s expires at %d\n", o.ID, o.Side, o.Type, o.Amount, o.Price, o.Filled, o.Expires)
				}
				if len(v.Orders) == 0 {
					fmt.Fprintln(w, "no open orders")
				}
			})
		},
	}
	a.bind(cmd)
	return cmd
}

func newExchangeServeCmd(g *Globals) *cobra.Command {
	var listen, logLevel, sessions string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the exchange API (book, trades, candles, ticker, sign-in, orders, WebSocket) on 8001",
		Long: `Serves the exchange API on --listen over the node at --node; signed-in
wallets place and cancel orders through the wallet daemon at --wallet-url
("off": reads and sign-in only). aitbc devnet serves it on 127.0.0.1:8001 by
itself (--exchange-listen). Signed-in sessions are kept in --sessions (an
SQLite file, default <home>/exchange/sessions.db; "off": in memory), so a
restart signs no one out; each keeps its 24 h expiry. See
docs/api/exchange.openapi.yaml.`,
		Example: `  aitbc exchange serve --listen 127.0.0.1:8001
  aitbc exchange serve --node http://10.0.0.2:8006 --wallet-url off
  aitbc exchange serve --sessions /var/lib/aitbc/exchange/sessions.db --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.newLogger(logLevel)
			if err != nil {
				return err
			}
			xc := exchange.Config{Node: g.node(), Log: log}
			if !g.walletsOff() {
				xc.Wallets = walletd.NewClient(g.WalletURL, g.daemonAPIKey())
			}
			if sessions == "" {
				sessions = filepath.Join(g.Home, "exchange", "sessions.db")
			} else if sessions == "off" {
				sessions = ""
			}
			return system.Run(cmd.Context(), system.Config{Log: log, Exchange: &system.ExchangeConfig{Listen: listen, Config: xc, SessionsPath: sessions}},
				func(s *system.System) error {
					fmt.Fprintf(g.Stderr(), "exchange API on %s (node %s, wallet daemon %s)\n", s.Exchange.URL(), g.Node, webOrOff(xc.Wallets != nil, g.WalletURL))
					return nil
				})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", exchange.DefaultListen, "address of the exchange API")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level")
	cmd.Flags().StringVar(&sessions, "sessions", "", `SQLite file the signed-in sessions are kept in across restarts (default <home>/exchange/sessions.db; "off": in memory only)`)
	return cmd
}

// submitTx signs msg with the wallet through the daemon and submits it.
func (g *Globals) submitTx(ctx context.Context, wallet, password string, msg tx.Msg) (walletd.Submitted, error) {
	w, err := g.wallets(ctx)
	if err != nil {
		return walletd.Submitted{}, err
	}
	pw, err := g.signingPassword(ctx, w, wallet, password)
	if err != nil {
		return walletd.Submitted{}, w.explain(g, wallet, err)
	}
	sub, err := w.SignAndSubmit(ctx, wallet, pw, msg, 0)
	if err != nil {
		return walletd.Submitted{}, w.explain(g, wallet, err)
	}
	return sub, nil
}

// waitCommitted waits for a transaction's block and fails if it failed.
func (g *Globals) waitCommitted(ctx context.Context, hash string, timeout time.Duration) (rpc.Transaction, error) {
	if !g.JSON() {
		fmt.Fprintf(g.stderr, "submitted %s, waiting for its block...\n", hash)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t, err := g.node().WaitTx(wctx, hash, 200*time.Millisecond)
	if err != nil {
		return t, fmt.Errorf("transaction %s submitted, but: %w", hash, err)
	}
	if t.Status != "committed" {
		return t, fmt.Errorf("transaction %s %s: %s", hash, t.Status, t.Error)
	}
	return t, nil
}

package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/exchange"
)

// buyResult is what `aitbc exchange buy` prints.
type buyResult struct {
	Quote      exchange.BuyQuote `json:"quote"`
	HeldSat    uint64            `json:"btc_before_sat"` // the wallet's btc when quoted
	Deposit    *buyDeposit       `json:"deposit,omitempty"`
	Fill       exchange.BuyFill  `json:"fill"`
	BalanceSat uint64            `json:"btc_after_sat"`
}

type buyDeposit struct {
	Address   string `json:"address"`
	URI       string `json:"uri"`
	AmountSat uint64 `json:"amount_sat"`
}

func newExchangeBuyCmd(g *Globals) *cobra.Command {
	var amount, pay, wallet, password, btcRPC string
	var slippage float64
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "buy",
		Short: "Buy AITBC with Bitcoin: quote, deposit BTC through the bridge, buy at market within the slippage allowed",
		Long: `Quotes the BTC that --amount AITBC costs at the book's asks now; the order is
placed with a worst price --max-slippage percent above the best ask (default 1),
so the wallet needs that much btc: what the fill does not use stays in its btc
balance. When the wallet's btc falls short it shows the wallet's Bitcoin deposit
address and how much to send, and follows the deposit (mempool, confirmations,
minted) until the btc covers the quote. Then it checks the asks again and
places a market buy: it trades at the end of its block at the block's one
price. It reports AITBC received (after the exchange's fee), BTC spent, the
price and the fee. When the asks within the worst price cannot fill the amount
it fails (cannot fill) before placing anything: no money moves. A deposit
that arrives after --timeout is minted to the wallet as btc all the same (see
aitbc exchange deposits); run buy again to spend it.`,
		Example: `  aitbc exchange buy --amount 1000 --pay btc --wallet customer-1
  aitbc exchange buy --amount 1000 --pay btc --wallet customer-1 --max-slippage 0.5 --timeout 1h -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := requireName("wallet", wallet); err != nil {
				return err
			}
			if err := checkAsset(pay); err != nil {
				return err
			}
			amt, err := coin.Parse(strings.TrimSpace(amount))
			if err != nil || amt == 0 {
				return usagef("--amount must be a positive amount of AITBC, not %q", amount)
			}
			if slippage < 0 || slippage*100 > exchange.MaxSlippageBps {
				return usagef("--max-slippage must be 0-%d (percent)", exchange.MaxSlippageBps/100)
			}
			acct, err := g.walletAddress(ctx, wallet)
			if err != nil {
				return err
			}
			node := g.node()
			t, err := chainex.QueryTicker(ctx, node)
			if err != nil {
				return err
			}
			book, err := chainex.QueryBook(ctx, node, chainex.MaxDepth)
			if err != nil {
				return err
			}
			q, err := exchange.QuoteBuy(book, t, uint64(amt), uint64(slippage*100+0.5))
			if err != nil {
				return err
			}
			bal, err := bank.QueryBalances(ctx, node, acct)
			if err != nil {
				return err
			}
			out := buyResult{Quote: q, HeldSat: uint64(bal.Amount(chainex.QuoteDenom))}
			say := func(format string, a ...any) { fmt.Fprintf(g.Stderr(), format+"\n", a...) }
			say("%s AITBC at %s BTC per AITBC (1 BTC = %d AITBC): %s BTC; you receive %s AITBC after the %s AITBC fee",
				q.Amount, q.Price, chainex.AITBCPerBTC(q.MarginalMsat), btcOf(q.ExpectedSat), q.Receive, q.Fee)
			say("worst price %s BTC (%.2f%% above the best ask): the order holds %s BTC", q.WorstPrice, float64(q.SlippageBps)/100, btcOf(q.NeededSat))

			b := &exchange.Buyer{Node: node, Buyer: acct,
				Place: func(ctx context.Context, msg tx.Msg) (string, int64, error) {
					res, err := g.submitTx(ctx, wallet, password, msg)
					if err != nil {
						return "", 0, err
					}
					tr, err := g.waitCommitted(ctx, res.TxHash, 2*time.Minute)
					return res.TxHash, tr.Height, err
				},
				Progress: func(e exchange.BuyEvent) { say("%s", e.Message) },
			}
			if out.HeldSat < q.NeededSat {
				v, err := cb.Query(ctx, node)
				if err != nil {
					return err
				}
				if !v.Enabled {
					return fmt.Errorf("%w: the wallet holds %s btc, the buy needs %s", cb.ErrDisabled, btcOf(out.HeldSat), btcOf(q.NeededSat))
				}
				a, err := bridge.DepositAddress(ctx, node, g.submitter(wallet, password), acct)
				if err != nil {
					return err
				}
				dep := max(q.NeededSat-out.HeldSat, v.Params.MinDepositSat)
				out.Deposit = &buyDeposit{Address: a.Address, URI: fmt.Sprintf("bitcoin:%s?amount=%s", a.Address, btcOf(dep)), AmountSat: dep}
				say("send %s BTC (%s) to %s\n  %s\nminted as btc after %d confirmation(s); waiting up to %s",
					btcOf(dep), v.Params.Network, a.Address, out.Deposit.URI, v.Params.Confirmations, timeout)
				c, err := g.btcClient(btcRPC)
				if err != nil {
					return err
				}
				var btc bridge.BlockReader
				if c != nil {
					defer c.Shutdown()
					btc = c
				}
				b.Deposits = func(ctx context.Context) ([]string, error) {
					list, err := bridge.AccountDeposits(ctx, node, btc, acct, 0)
					if err != nil {
						return nil, err
					}
					lines := make([]string, 0, len(list))
					for _, d := range list {
						lines = append(lines, fmt.Sprintf("%s  %s BTC  %s  %d/%d confirmations", d.Outpoint, btcOf(d.Amount), d.Status, d.Confirmations, d.Needed))
					}
					return lines, nil
				}
				wctx, cancel := context.WithTimeout(ctx, timeout)
				_, err = b.WaitFunded(wctx, q.NeededSat)
				cancel()
				if err != nil {
					return err
				}
			}
			if out.Fill, err = b.Execute(ctx, q); err != nil {
				return err
			}
			after, err := bank.QueryBalances(ctx, node, acct)
			if err != nil {
				return err
			}
			out.BalanceSat = uint64(after.Amount(chainex.QuoteDenom))
			f := out.Fill
			return g.Print(out, func(w io.Writer) {
				fmt.Fprintln(w, f.TxHash)
				if f.Trades == 0 {
					fmt.Fprintf(w, "block %d: nothing filled (the asks moved); the btc held came back: %s btc in the wallet\n", f.Height, btcOf(out.BalanceSat))
					return
				}
				fmt.Fprintf(w, "bought %s AITBC at %s BTC per AITBC in block %d: received %s AITBC (fee %s AITBC), spent %s BTC\n",
					f.Bought, f.Price, f.Height, f.Received, f.Fee, f.Spent)
				if !f.Complete {
					fmt.Fprintf(w, "partly filled: %s of %s AITBC\n", f.Bought, q.Amount)
				}
				fmt.Fprintf(w, "btc left in the wallet: %s\n", btcOf(out.BalanceSat))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&amount, "amount", "", "AITBC to buy (required), e.g. 1000")
	f.StringVar(&pay, "pay", cb.Denom, "what to pay with (btc, deposited through the bridge)")
	f.Float64Var(&slippage, "max-slippage", float64(exchange.DefaultBuySlippageBps)/100, "percent above the best ask the buy may pay at most")
	f.DurationVar(&timeout, "timeout", 30*time.Minute, "how long to wait for the deposit")
	f.StringVar(&btcRPC, "btc-rpc", "", "Bitcoin node RPC URL, to follow the deposit in the mempool (default: a running devnet --btc's)")
	walletFlag(cmd, &wallet, "wallet that buys (and whose deposit address receives the BTC)")
	f.StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	return cmd
}

// btcOf formats satoshis as BTC.
func btcOf(sat uint64) string { return bank.FormatUnits(coin.Amount(sat), 8) }

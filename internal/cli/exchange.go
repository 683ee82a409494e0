package cli

import "github.com/spf13/cobra"

// newExchangeCmd is the trade exchange's parent command. This minimal
// parent carries the Bitcoin bridge's subcommands (exchange_bridge.go);
// the order book's (book, trades, ticker, order, cancel, orders) join it.
func newExchangeCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exchange",
		Short: "Trade exchange: bridged Bitcoin (deposit address, withdraw, reserves)",
		Example: `  aitbc exchange deposit-address --asset btc --wallet alice
  aitbc exchange withdraw --asset btc --amount 0.1 --to bcrt1q... --wallet alice
  aitbc exchange reserves`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(exchangeBridgeCmds(g)...)
	return cmd
}

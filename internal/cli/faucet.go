package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/faucet"
)

func newFaucetCmd(g *Globals) *cobra.Command {
	var addr, amount, wallet, password string
	cmd := &cobra.Command{
		Use:   "faucet",
		Short: "Get test AITBC from the faucet of a devnet or testnet (at most 1,000 per address per 24 h)",
		Long: `Asks the chain's faucet to pay an address. The faucet pays the transaction
fee itself, so any wallet can sign the request (--wallet, default the devnet's
genesis-ops), including a new one with no balance. The allowance is enforced
on chain per address; asking again too soon is refused with the time left.`,
		Example: `  aitbc faucet --address aitbc1...
  aitbc faucet --address aitbc1... --amount 250 --wallet tester`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if addr == "" {
				return usagef("--address is required")
			}
			to, err := g.addressOrWallet(ctx, addr)
			if err != nil {
				return fmt.Errorf("--address: %w", err)
			}
			var amt coin.Amount
			if amount != "" {
				if amt, err = coin.Parse(strings.TrimSpace(amount)); err != nil || amt == 0 {
					return usagef("--amount must be a positive amount of AITBC, not %q", amount)
				}
			}
			h, err := g.submit(ctx, wallet, password, faucet.NewDripMsg(to, amt))
			if err != nil {
				return err
			}
			out := map[string]any{"tx_hash": h, "address": to, "amount": amt}
			return g.Print(out, func(w io.Writer) { fmt.Fprintln(w, h) })
		},
	}
	cmd.Flags().StringVar(&addr, "address", "", "address (or wallet name) to pay (required)")
	cmd.Flags().StringVar(&amount, "amount", "", "AITBC (default: all of the allowance left)")
	cmd.Flags().StringVar(&wallet, "wallet", "genesis-ops", "wallet that signs the request (the faucet pays its fee)")
	cmd.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	return cmd
}

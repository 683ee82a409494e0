package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/chain/modules/treasury"
)

func newTreasuryCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "treasury",
		Short: "The treasury: its balance, admin and spends; spend from it as its admin",
		Example: `  aitbc treasury show
  aitbc treasury spend --multisig council --to aitbc1... --amount 500 --memo "grant #12" --wallet alice`,
		Long: `The treasury is the module account that receives its share of every block's
reward and fees (docs/ECONOMICS.md). Only the admin named in genesis
(modules.treasury.admin) may spend from it, usually a multisig account created
in the same genesis: its signers propose a spend with --multisig and it pays at
the threshold's signature. A chain whose genesis names no admin cannot spend.`,
	}
	show := &cobra.Command{
		Use:     "show",
		Short:   "Balance, admin, total spent and the latest spends",
		Example: "  aitbc treasury show\n  aitbc treasury show --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := treasury.Query(cmd.Context(), g.node())
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				admin := v.Admin
				if admin == "" {
					admin = "none (this chain's treasury cannot spend)"
				}
				fmt.Fprintf(w, "address  %s\nbalance  %s AITBC\nadmin    %s\nspent    %s AITBC in %d spend(s)\n", v.Address, v.Balance, admin, v.Spent, v.Count)
				for _, s := range v.Spends {
					fmt.Fprintf(w, "spend %d  block %d  %s AITBC to %s  %s\n", s.ID, s.Height, s.Amount, s.To, s.Memo)
				}
			})
		},
	}
	var to, amount, memo, wallet, password, via string
	spend := &cobra.Command{
		Use:   "spend",
		Short: "Pay from the treasury (as its admin, or propose it through the admin multisig)",
		Long: `Sends treasury/spend. With --multisig NAME (the admin multisig account) it is
proposed through that account and pays when enough of its signers have signed
(` + "`aitbc multisig sign --name NAME --proposal P`" + `); without, --wallet must be the admin
itself. The chain refuses a spend by anyone else, of zero, of more than the
treasury holds, to a module account or the all-zero address, or with a memo
over 256 bytes.`,
		Example: `  aitbc treasury spend --multisig council --to aitbc1... --amount 500 --memo "grant #12" --wallet alice
  aitbc multisig sign --name council --proposal 0 --wallet bob
  aitbc treasury spend --to aitbc1... --amount 10 --wallet treasury-admin --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if wallet == "" {
				return usagef("--wallet is required")
			}
			if len(memo) > treasury.MaxMemo {
				return usagef("--memo is over %d bytes", treasury.MaxMemo)
			}
			toAddr, err := g.addressOrWallet(ctx, to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			amt, err := coin.Parse(strings.TrimSpace(amount))
			if err != nil || amt == 0 {
				return usagef("--amount must be a positive amount of AITBC, not %q", amount)
			}
			msg := treasury.NewSpendMsg(toAddr, amt, memo)
			out := map[string]any{"to": toAddr, "amount": amt}
			if via != "" {
				if err := multisig.CheckName(via); err != nil {
					return usagef("--multisig: %v", err)
				}
				v, err := multisig.Query(ctx, g.node(), via)
				if err != nil {
					return err
				}
				msg = multisig.NewProposeMsg(via, msg)
				out["multisig"], out["proposal"] = via, len(v.Proposals)
			}
			h, err := g.submit(ctx, wallet, password, msg)
			if err != nil {
				return err
			}
			out["tx_hash"] = h
			return g.Print(out, func(w io.Writer) {
				if via != "" {
					fmt.Fprintf(w, "%s\nproposed through %s as proposal %v: it pays when enough signers have signed\n", h, via, out["proposal"])
					return
				}
				fmt.Fprintln(w, h)
			})
		},
	}
	spend.Flags().StringVar(&to, "to", "", "recipient address or wallet (required)")
	spend.Flags().StringVar(&amount, "amount", "", "AITBC (required)")
	spend.Flags().StringVar(&memo, "memo", "", "what the spend is for (at most 256 bytes; on chain)")
	spend.Flags().StringVar(&via, "multisig", "", "propose the spend through this multisig account (the admin)")
	spend.Flags().StringVar(&wallet, "wallet", "", "wallet that signs (the admin, or a signer of --multisig) (required)")
	spend.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	cmd.AddCommand(show, spend)
	return cmd
}

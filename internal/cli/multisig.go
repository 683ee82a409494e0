package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
)

// addressOrWallet reads an address (aitbc1...) or the name of a wallet.
func (g *Globals) addressOrWallet(ctx context.Context, s string) (address.Address, error) {
	s = strings.TrimSpace(s)
	if a, err := address.Parse(s); err == nil {
		return a, nil
	}
	return g.walletAddress(ctx, s)
}

func newMultisigCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "multisig", Short: "m-of-n accounts: create one, propose a transfer, sign, show"}
	var name, wallet, password string
	flags := func(c *cobra.Command, withWallet bool) {
		c.Flags().StringVar(&name, "name", "", "the multisig account's name (required)")
		if withWallet {
			c.Flags().StringVar(&wallet, "wallet", "", "wallet that signs the transaction (required)")
			c.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
		}
	}
	need := func(withWallet bool) error {
		if err := multisig.CheckName(name); err != nil {
			return usagef("--name: %v", err)
		}
		if withWallet && wallet == "" {
			return usagef("--wallet is required")
		}
		return nil
	}
	printTx := func(h string, extra map[string]any) error {
		extra["tx_hash"] = h
		return g.Print(extra, func(w io.Writer) { fmt.Fprintln(w, h) })
	}

	var threshold uint32
	var signers string
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create an m-of-n account; prints the transaction hash",
		Example: `  aitbc multisig create --name treasury-ops --threshold 2 --signers alice,bob,aitbc1... --wallet alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true); err != nil {
				return err
			}
			ctx := cmd.Context()
			var list []address.Address
			for _, s := range strings.Split(signers, ",") {
				if strings.TrimSpace(s) == "" {
					continue
				}
				a, err := g.addressOrWallet(ctx, s)
				if err != nil {
					return fmt.Errorf("--signers %q: %w", s, err)
				}
				list = append(list, a)
			}
			if threshold == 0 || int(threshold) > len(list) {
				return usagef("--threshold must be 1 to the number of --signers (%d)", len(list))
			}
			h, err := g.submit(ctx, wallet, password, multisig.NewCreateMsg(name, threshold, list))
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{"address": multisig.Address(name)})
		},
	}
	flags(create, true)
	create.Flags().Uint32Var(&threshold, "threshold", 0, "signatures needed (required)")
	create.Flags().StringVar(&signers, "signers", "", "comma-separated addresses or wallet names (required)")

	var to, amount string
	propose := &cobra.Command{
		Use:     "propose",
		Short:   "Propose a transfer from the account (your signature counts); prints the transaction hash",
		Example: `  aitbc multisig propose --name treasury-ops --to aitbc1... --amount 100 --wallet alice`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true); err != nil {
				return err
			}
			ctx := cmd.Context()
			toAddr, err := g.addressOrWallet(ctx, to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			amt, err := coin.Parse(strings.TrimSpace(amount))
			if err != nil || amt == 0 {
				return usagef("--amount must be a positive amount of AITBC, not %q", amount)
			}
			v, err := multisig.Query(ctx, g.node(), name)
			if err != nil {
				return err
			}
			h, err := g.submit(ctx, wallet, password, multisig.NewProposeMsg(name, bank.NewSendMsg(toAddr, amt)))
			if err != nil {
				return err
			}
			// The proposal's number is the account's next one, unless
			// another lands first: `multisig show` lists them.
			return printTx(h, map[string]any{"proposal": len(v.Proposals)})
		},
	}
	flags(propose, true)
	propose.Flags().StringVar(&to, "to", "", "recipient address or wallet (required)")
	propose.Flags().StringVar(&amount, "amount", "", "AITBC (required)")

	var proposal string
	sign := &cobra.Command{
		Use:     "sign",
		Short:   "Sign a proposal; it executes when the threshold is reached",
		Example: `  aitbc multisig sign --name treasury-ops --proposal 0 --wallet bob`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true); err != nil {
				return err
			}
			id, err := strconv.ParseUint(proposal, 10, 64)
			if err != nil {
				return usagef("--proposal must be a proposal number (multisig show lists them), not %q", proposal)
			}
			h, err := g.submit(cmd.Context(), wallet, password, multisig.NewSignMsg(name, id))
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{"proposal": id})
		},
	}
	flags(sign, true)
	sign.Flags().StringVar(&proposal, "proposal", "", "proposal number (required)")

	show := &cobra.Command{
		Use:   "show",
		Short: "Show an account: address, threshold, signers, balance and proposals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(false); err != nil {
				return err
			}
			v, err := multisig.Query(cmd.Context(), g.node(), name)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				fmt.Fprintf(w, "name       %s\naddress    %s\nthreshold  %d of %d\nbalance    %s AITBC\n", v.Name, v.Address, v.Threshold, len(v.Signers), v.Balance)
				for _, s := range v.Signers {
					fmt.Fprintf(w, "signer     %s\n", s)
				}
				for _, p := range v.Proposals {
					fmt.Fprintf(w, "proposal %d  %-8s %s  %d of %d signatures, expires at block %d\n", p.ID, p.Status, p.Type, len(p.Approvals), v.Threshold, p.Expires)
				}
			})
		},
	}
	flags(show, false)
	cmd.AddCommand(create, propose, sign, show)
	return cmd
}

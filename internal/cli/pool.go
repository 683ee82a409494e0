package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/modules/pools"
)

// parseFeePercent reads a pool fee in percent with at most two decimals
// ("2.5") as basis points (250). Above 100% is left to the chain, which
// refuses it (pool_fee_too_high).
func parseFeePercent(s string) (uint64, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "%")
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || (dot && frac == "") {
		return 0, fmt.Errorf("not a percentage with at most two decimals: %q", s)
	}
	w, err := strconv.ParseUint(whole, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("not a percentage with at most two decimals: %q", s)
	}
	f := uint64(0)
	if frac != "" {
		v, err := strconv.ParseUint((frac + "0")[:2], 10, 8)
		if err != nil {
			return 0, fmt.Errorf("not a percentage with at most two decimals: %q", s)
		}
		f = v
	}
	return w*100 + f, nil
}

func newPoolCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "pool", Short: "Mining pools: create one with a fee, join, leave, show (earnings split by verified work each epoch)",
		Example: `  aitbc pool create --name alpha --fee 2.5 --wallet operator
  aitbc pool join --name alpha --wallet miner-0
  aitbc pool show --name alpha --output json
  aitbc pool leave --wallet miner-0`}
	var name, wallet, password, fee string
	withWallet := func(c *cobra.Command, what string) {
		c.Flags().StringVar(&wallet, "wallet", "", what+" (required)")
		c.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	}
	need := func(withName, withWallet bool) error {
		if withName {
			if err := pools.CheckName(name); err != nil {
				return usagef("--name: %v", err)
			}
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

	create := &cobra.Command{
		Use:     "create",
		Short:   "Register a pool operated by the wallet, with a fee (percent of what the pool earns)",
		Example: `  aitbc pool create --name alpha --fee 2.5 --wallet operator`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true, true); err != nil {
				return err
			}
			bps, err := parseFeePercent(fee)
			if err != nil {
				return usagef("--fee: %v", err)
			}
			h, err := g.submit(cmd.Context(), wallet, password, pools.NewCreateMsg(name, bps))
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{"name": name, "fee_bps": bps})
		},
	}
	create.Flags().StringVar(&name, "name", "", "pool name: 1-32 of a-z, 0-9, - and _ (required)")
	create.Flags().StringVar(&fee, "fee", "0", "the operator's fee, percent of the pool's earnings (0 to 100, two decimals)")
	withWallet(create, "wallet of the operator")

	join := &cobra.Command{
		Use:     "join",
		Short:   "Join a pool with a registered, active miner's wallet (one pool at a time)",
		Example: `  aitbc pool join --name alpha --wallet miner-0`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true, true); err != nil {
				return err
			}
			h, err := g.submit(cmd.Context(), wallet, password, pools.NewJoinMsg(name))
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{"name": name})
		},
	}
	join.Flags().StringVar(&name, "name", "", "pool name (required)")
	withWallet(join, "the miner's wallet")

	leave := &cobra.Command{
		Use:     "leave",
		Short:   "Leave the miner's pool (work already done this epoch is still paid at its end)",
		Example: `  aitbc pool leave --wallet miner-0`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(false, true); err != nil {
				return err
			}
			h, err := g.submit(cmd.Context(), wallet, password, pools.NewLeaveMsg())
			if err != nil {
				return err
			}
			return printTx(h, map[string]any{})
		},
	}
	withWallet(leave, "the miner's wallet")

	show := &cobra.Command{
		Use:     "show",
		Short:   "Show a pool: operator, fee, members and their work this epoch, earnings accrued and paid",
		Example: "  aitbc pool show --name alpha\n  aitbc pool show --name alpha --output json --node http://10.0.0.2:8006",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need(true, false); err != nil {
				return err
			}
			v, err := pools.Query(cmd.Context(), g.node(), name)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				fmt.Fprintf(w, "name       %s\noperator   %s\nfee        %d.%02d%%\naccrued    %s AITBC (this epoch)\npaid       %s AITBC\n",
					v.Name, v.Operator, v.FeeBps/100, v.FeeBps%100, v.Accrued, v.Paid)
				for _, m := range v.Members {
					state := "member"
					if !m.Member {
						state = "left"
					}
					fmt.Fprintf(w, "%-6s     %s  %d tokens this epoch\n", state, m.Address, m.Tokens)
				}
			})
		},
	}
	show.Flags().StringVar(&name, "name", "", "pool name (required)")
	cmd.AddCommand(create, join, leave, show)
	return cmd
}

package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// stakeFlags are the flags of stake and unstake.
type stakeFlags struct {
	wallet, amount, operator, password string
}

func (f *stakeFlags) parse(opFlag string) (address.Address, coin.Amount, error) {
	if f.wallet == "" {
		return address.Address{}, 0, usagef("--wallet is required")
	}
	if f.operator == "" {
		return address.Address{}, 0, usagef("--%s is required (a miner's or validator's address)", opFlag)
	}
	op, err := address.Parse(f.operator)
	if err != nil {
		return address.Address{}, 0, fmt.Errorf("--%s: %w", opFlag, err)
	}
	amt, err := coin.Parse(strings.TrimSpace(f.amount))
	if err != nil || amt == 0 {
		return address.Address{}, 0, usagef("--amount must be a positive amount of AITBC, not %q", f.amount)
	}
	return op, amt, nil
}

// submit signs msg with the wallet and submits it; the node runs the
// message against its mempool state first, so a refusal (more than the
// balance, an unknown miner) comes back here with its code.
func (g *Globals) submit(ctx context.Context, wallet, password string, msg tx.Msg) (string, error) {
	w, err := g.wallets(ctx)
	if err != nil {
		return "", err
	}
	pw, err := g.signingPassword(ctx, w, wallet, password)
	if err != nil {
		return "", w.explain(g, wallet, err)
	}
	sub, err := w.SignAndSubmit(ctx, wallet, pw, msg, 0)
	if err != nil {
		return "", w.explain(g, wallet, err)
	}
	return sub.TxHash, nil
}

func newStakeCmd(g *Globals) *cobra.Command {
	var f stakeFlags
	cmd := &cobra.Command{
		Use:   "stake",
		Short: "Stake AITBC to a miner (or a validator): it earns a share of the stakers' rewards after the operator's commission",
		Example: `  aitbc stake --wallet customer-1 --amount 100 --to aitbc1...
  aitbc staking info --wallet customer-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, amt, err := f.parse("to")
			if err != nil {
				return err
			}
			h, err := g.submit(cmd.Context(), f.wallet, f.password, staking.NewStakeMsg(op, amt))
			if err != nil {
				return err
			}
			out := struct {
				TxHash   string          `json:"tx_hash"`
				Operator address.Address `json:"operator"`
				Amount   coin.Amount     `json:"amount"`
			}{h, op, amt}
			return g.Print(out, func(w io.Writer) { fmt.Fprintln(w, h) })
		},
	}
	cmd.Flags().StringVar(&f.wallet, "wallet", "", "wallet that stakes (required)")
	cmd.Flags().StringVar(&f.amount, "amount", "", "AITBC to stake (required)")
	cmd.Flags().StringVar(&f.operator, "to", "", "the miner's or validator's address (required)")
	cmd.Flags().StringVar(&f.password, "password", "", "wallet password (or AITBC_PASSWORD)")
	return cmd
}

func newUnstakeCmd(g *Globals) *cobra.Command {
	var f stakeFlags
	cmd := &cobra.Command{
		Use:     "unstake",
		Short:   "Start unbonding stake: it earns nothing from now on and is paid back after the unbonding period",
		Example: `  aitbc unstake --wallet customer-1 --amount 50 --from aitbc1...`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, amt, err := f.parse("from")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			h, err := g.submit(ctx, f.wallet, f.password, staking.NewUnstakeMsg(op, amt))
			if err != nil {
				return err
			}
			p, err := staking.QueryParams(ctx, g.node())
			if err != nil {
				return err
			}
			out := struct {
				TxHash          string          `json:"tx_hash"`
				Operator        address.Address `json:"operator"`
				Amount          coin.Amount     `json:"amount"`
				UnbondingBlocks int64           `json:"unbonding_blocks"`
			}{h, op, amt, p.UnbondingBlocks}
			return g.Print(out, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n%s AITBC unbonding: paid back %d blocks after the transaction's block (aitbc staking info --wallet %s)\n",
					h, amt, p.UnbondingBlocks, f.wallet)
			})
		},
	}
	cmd.Flags().StringVar(&f.wallet, "wallet", "", "wallet that staked (required)")
	cmd.Flags().StringVar(&f.amount, "amount", "", "AITBC to unstake (required)")
	cmd.Flags().StringVar(&f.operator, "from", "", "the miner's or validator's address (required)")
	cmd.Flags().StringVar(&f.password, "password", "", "wallet password (or AITBC_PASSWORD)")
	return cmd
}

// StakingInfo is what `aitbc staking info` shows.
type StakingInfo struct {
	Params    staking.Params     `json:"params"`
	Rewards   rewards.View       `json:"rewards"`
	Operators staking.Operators  `json:"operators"`
	Delegator *staking.Delegator `json:"delegator,omitempty"`
}

// QueryStakingInfo gathers the staking parameters, the rewards schedule,
// every operator and, for a non-nil address, its delegations.
func QueryStakingInfo(ctx context.Context, g module.Getter, who *address.Address) (StakingInfo, error) {
	var out StakingInfo
	var err error
	if out.Params, err = staking.QueryParams(ctx, g); err != nil {
		return out, err
	}
	if out.Rewards, err = rewards.Query(ctx, g); err != nil {
		return out, err
	}
	if out.Operators, err = staking.QueryOperators(ctx, g); err != nil {
		return out, err
	}
	if who != nil {
		d, err := staking.QueryDelegator(ctx, g, *who)
		if err != nil {
			return out, err
		}
		out.Delegator = &d
	}
	return out, nil
}

// Text writes the info for people.
func (s StakingInfo) Text(w io.Writer) {
	r := s.Rewards
	fmt.Fprintf(w, "height            %d\n", r.Height)
	fmt.Fprintf(w, "block reward      %s AITBC (halves every %d blocks)\n", r.BlockReward, r.Params.HalvingBlocks)
	fmt.Fprintf(w, "reward split      validators %s%%  miners %s%%  stakers %s%%  treasury the rest\n",
		pct(r.Params.ValidatorBps), pct(r.Params.MinerBps), pct(r.Params.StakerBps))
	fmt.Fprintf(w, "epoch ends        block %d (miner pot %s, staker pot %s AITBC)\n", r.EpochEnds, r.MinerPot, r.StakerPot)
	fmt.Fprintf(w, "unbonding         %d blocks; minimum stake %s AITBC\n", s.Params.UnbondingBlocks, s.Params.MinStake)
	fmt.Fprintf(w, "total bonded      %s AITBC\n", s.Operators.TotalBonded)
	for _, o := range s.Operators.Operators {
		fmt.Fprintf(w, "  %-9s %s  %-8s bonded %s  commission %s%%\n", o.Kind, o.Address, o.Status, o.Bonded, pct(o.CommissionBps))
	}
	if d := s.Delegator; d != nil {
		fmt.Fprintf(w, "%s: staked %s AITBC, unbonding %s AITBC\n", d.Address, d.Staked, d.Unbonding)
		for _, x := range d.Delegations {
			fmt.Fprintf(w, "  staked     %s AITBC to %s\n", x.Amount, x.Operator)
		}
		for _, u := range d.Unbondings {
			fmt.Fprintf(w, "  unbonding  %s AITBC from %s, paid back at block %d\n", u.Amount, u.Operator, u.Matures)
		}
	}
}

// pct shows basis points as a percentage ("12.5").
func pct(bps uint64) string {
	s := fmt.Sprintf("%d.%02d", bps/100, bps%100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func newStakingCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "staking", Short: "Staking: the reward schedule, operators and your stake",
		Example: "  aitbc staking info\n  aitbc staking info --wallet alice --output json"}
	var wallet, addr string
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the reward schedule, every operator's stake and commission, and a wallet's stake",
		Example: `  aitbc staking info
  aitbc staking info --wallet customer-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if wallet != "" && addr != "" {
				return usagef("give --wallet or --address, not both")
			}
			var who *address.Address
			switch {
			case wallet != "":
				a, err := g.walletAddress(ctx, wallet)
				if err != nil {
					return err
				}
				who = &a
			case addr != "":
				a, err := address.Parse(addr)
				if err != nil {
					return fmt.Errorf("--address: %w", err)
				}
				who = &a
			}
			s, err := QueryStakingInfo(ctx, g.node(), who)
			if err != nil {
				return err
			}
			return g.Print(s, s.Text)
		},
	}
	info.Flags().StringVar(&wallet, "wallet", "", "also show this wallet's stake")
	info.Flags().StringVar(&addr, "address", "", "also show this address's stake")
	cmd.AddCommand(info)
	return cmd
}

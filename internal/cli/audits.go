package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
)

// newAuditsCmd is `aitbc audits`: the chain's spot checks (the audits
// module), read-only. Verifiers act with `aitbc verifier` (verifier.go).
func newAuditsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audits", Short: "Spot checks of attested jobs: list them, show one, a miner's record, the parameters",
		Example: `  aitbc audits list --open
  aitbc audits show 707c75d0a1b2c3d4e5f60718293a4b5c --output json
  aitbc audits miner aitbc1...
  aitbc audits params`}
	var open bool
	var miner string
	list := &cobra.Command{
		Use:   "list",
		Short: "Spot checks in job id order (--open: those still holding a miner's pay), at most 500",
		Example: `  aitbc audits list
  aitbc audits list --open --miner aitbc1... --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if miner != "" {
				if _, err := address.Parse(miner); err != nil {
					return usagef("--miner: %v", err)
				}
			}
			l, err := audits.QueryChecks(cmd.Context(), g.node(), open, miner)
			if err != nil {
				return err
			}
			return g.Print(l, func(w io.Writer) {
				if len(l.Checks) == 0 {
					fmt.Fprintln(w, "no spot checks")
					return
				}
				fmt.Fprintf(w, "%-32s  %-15s  %-12s  %s\n", "JOB", "STATUS", "HELD", "MINER")
				for _, c := range l.Checks {
					fmt.Fprintf(w, "%-32s  %-15s  %-12s  %s\n", c.JobID, c.Status, c.Held, c.Miner)
				}
				if l.Truncated {
					fmt.Fprintln(w, "(more not shown)")
				}
			})
		},
	}
	list.Flags().BoolVar(&open, "open", false, "only checks still holding pay (pending, assigned, disputed, rechecking)")
	list.Flags().StringVar(&miner, "miner", "", "only this miner's checks")

	show := &cobra.Command{
		Use:   "show JOB_ID",
		Short: "The spot check of a job: status, verifiers and their evidence, deadline, what the outcome paid",
		Example: `  aitbc audits show 707c75d0a1b2c3d4e5f60718293a4b5c
  aitbc audits show 707c75d0a1b2c3d4e5f60718293a4b5c --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := audits.QueryCheck(cmd.Context(), g.node(), args[0])
			if err != nil {
				return err
			}
			return g.Print(c, func(w io.Writer) {
				fmt.Fprintf(w, "job        %s\nstatus     %s\nminer      %s\ncustomer   %s\nheld       %s AITBC\nsettled    height %d\n",
					c.JobID, c.Status, c.Miner, c.Customer, c.Held, c.Settled)
				if c.Verifier != "" {
					fmt.Fprintf(w, "verifier   %s%s\n", c.Verifier, because(c.Reason))
				}
				if c.Second != "" {
					fmt.Fprintf(w, "second     %s%s\n", c.Second, because(c.Reason2))
				}
				if c.Deadline > 0 {
					fmt.Fprintf(w, "deadline   height %d\n", c.Deadline)
				}
				if c.Resolved > 0 {
					fmt.Fprintf(w, "resolved   height %d: fees %s, miner slashed %s, customer refunded %s, verifier shares %s, burned %s, bond slashed %s\n",
						c.Resolved, c.Fees, c.Slashed, c.Refunded, c.Shares, c.Burned, c.BondSlash)
				}
			})
		},
	}

	minerCmd := &cobra.Command{
		Use:     "miner ADDRESS",
		Short:   "A miner's record of spot checks: jobs drawn, checks passed, confirmed frauds",
		Example: "  aitbc audits miner aitbc1...\n  aitbc audits miner aitbc1... --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := address.Parse(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			m, err := audits.QueryMiner(cmd.Context(), g.node(), a)
			if err != nil {
				return err
			}
			return g.Print(m, func(w io.Writer) {
				fmt.Fprintf(w, "miner             %s\ndrawn             %d\npassed            %d\nconfirmed frauds  %d\n", m.Address, m.Drawn, m.Passed, m.ConfirmedFrauds)
			})
		},
	}

	params := &cobra.Command{
		Use:     "params",
		Short:   "The audits module's parameters (spot_check_bps 0: no spot checks)",
		Example: "  aitbc audits params --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := audits.QueryParams(cmd.Context(), g.node())
			if err != nil {
				return err
			}
			return g.Print(p, func(w io.Writer) {
				fmt.Fprintf(w, "spot checks        %d bps of attested jobs\nmin bond           %s AITBC\ncheck window       %d blocks\ncheck fee          %d bps of the pay\nslash              %d bps of stake (customer %d, verifiers %d, rest burned)\nbond slash         %d bps (overruled), %d bps (timeout)\ncheat miners       %v\n",
					p.SpotCheckBps, p.MinBond, p.CheckWindowBlocks, p.CheckFeeBps, p.SlashBps, p.SlashCustomerBps, p.SlashVerifiersBps, p.BondSlashBps, p.TimeoutSlashBps, p.AllowCheatMiners)
			})
		},
	}
	cmd.AddCommand(list, show, minerCmd, params)
	return cmd
}

// because is a report's reason as a suffix ("" for none: a pass).
func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}

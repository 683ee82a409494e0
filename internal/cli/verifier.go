package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/audit"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/walletd"
)

// newVerifierCmd is `aitbc verifier`: a verifier of spot checks registers
// with a bond and runs the service (internal/audit) that re-checks the
// jobs the chain assigns it. `aitbc audits` reads the checks.
func newVerifierCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "verifier", Short: "Re-check other miners' jobs for pay: register with a bond, run the verifier, show its record",
		Example: `  aitbc verifier register --bond 100 --wallet verifier-1
  aitbc verifier start --wallet verifier-1
  aitbc verifier status --wallet verifier-1 --output json
  aitbc verifier unregister --wallet verifier-1`}
	var wallet, password, bond, addr string
	withWallet := func(c *cobra.Command) {
		c.Flags().StringVar(&wallet, "wallet", "", "the verifier's wallet (required)")
		c.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	}
	needWallet := func() error {
		if wallet == "" {
			return usagef("--wallet is required")
		}
		return nil
	}

	register := &cobra.Command{
		Use:   "register",
		Short: "Bond AITBC as a verifier (added to any bond the wallet has; at least the chain's min_bond in all)",
		Example: `  aitbc verifier register --bond 100 --wallet verifier-1
  aitbc verifier register --bond 50 --wallet verifier-1 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needWallet(); err != nil {
				return err
			}
			amt, err := coin.Parse(strings.TrimSpace(bond))
			if err != nil || amt == 0 {
				return usagef("--bond must be a positive amount of AITBC, not %q", bond)
			}
			h, err := g.submit(cmd.Context(), wallet, password, audits.NewRegisterMsg(amt))
			if err != nil {
				return err
			}
			return g.Print(map[string]any{"tx_hash": h, "bond": amt}, func(w io.Writer) { fmt.Fprintln(w, h) })
		},
	}
	register.Flags().StringVar(&bond, "bond", "", "AITBC to bond (required)")
	withWallet(register)

	unregister := &cobra.Command{
		Use:     "unregister",
		Short:   "Leave, taking the whole bond back (refused while a check awaits its report or a claim of its is re-checked)",
		Example: `  aitbc verifier unregister --wallet verifier-1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needWallet(); err != nil {
				return err
			}
			h, err := g.submit(cmd.Context(), wallet, password, audits.NewUnregisterMsg())
			if err != nil {
				return err
			}
			return g.Print(map[string]any{"tx_hash": h}, func(w io.Writer) { fmt.Fprintln(w, h) })
		},
	}
	withWallet(unregister)

	status := &cobra.Command{
		Use:   "status",
		Short: "A verifier's bond, record and the checks awaiting its report",
		Example: `  aitbc verifier status --wallet verifier-1
  aitbc verifier status --address aitbc1... --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var a address.Address
			var err error
			switch {
			case addr != "":
				if a, err = address.Parse(addr); err != nil {
					return usagef("--address: %v", err)
				}
			case wallet != "":
				if a, err = g.walletAddress(cmd.Context(), wallet); err != nil {
					return err
				}
			default:
				return usagef("give --wallet or --address")
			}
			v, err := audits.QueryVerifier(cmd.Context(), g.node(), a)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				fmt.Fprintf(w, "verifier   %s\nbond       %s AITBC\nreports    %d (upheld %d, overruled %d, timed out %d)\nearned     %s AITBC\nslashed    %s AITBC\nawaiting   %d\n",
					v.Address, v.Bond, v.Reports, v.Upheld, v.Overruled, v.TimedOut, v.Earned, v.Slashed, len(v.Assigned))
				for _, id := range v.Assigned {
					fmt.Fprintf(w, "  %s\n", id)
				}
			})
		},
	}
	status.Flags().StringVar(&wallet, "wallet", "", "the verifier's wallet")
	status.Flags().StringVar(&addr, "address", "", "the verifier's address (instead of --wallet)")

	var threads int
	var poll time.Duration
	start := &cobra.Command{
		Use:   "start",
		Short: "Run the verifier: re-check each job the chain assigns this wallet with the built-in engine, and report pass or fail",
		Long: `Watches the chain for the spot checks assigned to the wallet's key, fetches each
job's prompt, result and attestation from a coordinator (the request is
signed with the key, and a coordinator serves it only to the verifier the
check awaits), re-runs prompt and output through the receipt's
model in one prefill (the models must be in this home's registry), and
reports pass or fail with evidence (audits/report). A check it cannot run is
retried on the next pass; one not reported within the chain's
check_window_blocks costs part of the bond.

Coordinators are asked in turn: first those the job's own coordinator key
announced on chain, then --coordinator (one URL, several comma-separated,
"chain" for every coordinator announced on chain, or "chain:ADDRESS" for one
marketplace's). A copy of the job is used only if the chain backs it: the
receipt the settlement anchored, the prompt or messages hashing to the job's
prompt hash, the result and attestation to the receipt's; a coordinator that
serves anything else is passed over, so it cannot frame the miner.

Each check reported is printed on stdout (with --output json, one JSON
object a line: job_id, verdict, tx_hash, coordinator); it runs until
interrupted (Ctrl-C), then exits cleanly.`,
		Example: `  aitbc verifier start --wallet verifier-1
  aitbc verifier start --wallet verifier-1 --threads 4 --poll 5s --coordinator http://10.0.0.2:8000
  aitbc verifier start --wallet verifier-1 --coordinator http://10.0.0.2:8000,http://10.0.0.3:8000
  aitbc verifier start --wallet verifier-1 --coordinator chain
  aitbc verifier start --wallet verifier-1 --output json | jq -c 'select(.verdict.pass == false)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needWallet(); err != nil {
				return err
			}
			if poll <= 0 {
				return usagef("--poll must be a positive duration (e.g. 2s), not %s", poll)
			}
			if threads < 0 {
				return usagef("--threads must be 0 (all cores) or more, not %d", threads)
			}
			ctx := cmd.Context()
			log, err := g.newLogger("info")
			if err != nil {
				return err
			}
			chain := g.serviceNode(log)
			key, svc, pw, err := g.minerKey(ctx, wallet, password, chain)
			if err != nil {
				return err
			}
			if v, err := audits.QueryVerifier(ctx, chain, key.Address()); err != nil {
				return fmt.Errorf("%w (register first: aitbc verifier register --bond 100 --wallet %s)", err, wallet)
			} else if v.Bond == 0 {
				return fmt.Errorf("verifier %s has no bond left: aitbc verifier register --bond 100 --wallet %s", key.Address(), wallet)
			}
			sender := walletd.WalletSender{S: svc, Name: wallet, Password: pw}
			spec := strings.TrimSpace(g.Coord)
			by, announced := chainSpec(spec)
			var given []string
			if !announced {
				given = coordinator.URLs(coordinator.Given(strings.Split(spec, ",")))
			}
			s, err := audit.New(audit.Config{Key: key, Node: chain, Locate: audit.Coordinators(chain, given, announced, by),
				Submit: sender.Send, Check: audit.Recheck(g.Home, threads), Poll: poll, Logger: log})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stderr(), "verifier %s, coordinators: the job's announced ones, then %s; node %s\n", s.Address(), spec, g.Node)
			return runVerifier(ctx, s, poll, log, g.printOutcome)
		},
	}
	withWallet(start)
	annotate(start, coordSelfAnnotation) // it picks a coordinator per job
	start.Flags().IntVar(&threads, "threads", 0, "threads for the re-run (0: all cores)")
	start.Flags().DurationVar(&poll, "poll", 2*time.Second, "how often to ask the chain for assigned checks")

	cmd.AddCommand(register, unregister, status, start)
	return cmd
}

// runVerifier is the verifier's loop (audit.Service.Run's), handing each
// check reported to report, until ctx ends: then it returns nil, a
// clean stop. A failed pass is logged and retried on the next.
func runVerifier(ctx context.Context, s *audit.Service, poll time.Duration, log *slog.Logger, report func(audit.Outcome)) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		out, err := s.Once(ctx)
		for _, o := range out {
			report(o)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("verifier pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// printOutcome prints one reported check: a line of text, or with
// --output json one JSON object per line (audit.Outcome), so a script
// can follow a running verifier.
func (g *Globals) printOutcome(o audit.Outcome) {
	if g.JSON() {
		b, err := json.Marshal(o)
		if err == nil {
			fmt.Fprintf(g.Stdout(), "%s\n", b)
		}
		return
	}
	verdict := "pass"
	if !o.Verdict.Pass {
		verdict = "fail: " + o.Verdict.Reason
	}
	fmt.Fprintf(g.Stdout(), "job %s %s (from %s), report tx %s\n", o.JobID, verdict, o.Coordinator, o.TxHash)
}

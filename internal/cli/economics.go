package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/economics"
)

func newEconomicsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "economics", Short: "Token economics: projections from the chain's own formulas",
		Example: "  aitbc economics simulate --years 10\n  aitbc economics simulate --years 10 --jobs-per-day 50000 --stake-ratio 0.4 --output json"}
	l := economics.DefaultLoad()
	var genesis, price string
	var svg string
	sim := &cobra.Command{
		Use:   "simulate",
		Short: "Project supply, inflation, burn and income per validator, miner and staker, year by year",
		Long: `Runs the chain's issuance, reward split, fee split, miner work rewards and
staker rewards (the functions the chain itself runs, block by block) under a
steady load with the default genesis parameters, and prints a table per year.
--svg writes a chart of supply, minted and burned.`,
		Example: `  aitbc economics simulate --years 10
  aitbc economics simulate --years 10 --jobs-per-day 1000000 --stake-ratio 0.5 --svg docs/economics.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if l.Genesis, err = coin.Parse(genesis); err != nil {
				return fmt.Errorf("--genesis: %w", err)
			}
			if l.PricePer1k, err = coin.Parse(price); err != nil {
				return fmt.Errorf("--price-per-1k: %w", err)
			}
			if l.Years < 1 || l.Years > 100 {
				return usagef("--years must be 1 to 100")
			}
			if l.StakeRatio < 0 || l.StakeRatio > 1 {
				return usagef("--stake-ratio must be between 0 and 1")
			}
			if l.Miners < 1 || l.Validators < 1 || l.Miners > 100_000 || l.Validators > 1000 {
				return usagef("--miners must be 1 to 100000 and --validators 1 to 1000")
			}
			l.MinFee = economics.MinFee()
			years, err := economics.Project(economics.DefaultRules(), l)
			if err != nil {
				return err
			}
			if svg != "" {
				f, err := os.Create(svg)
				if err != nil {
					return err
				}
				if err := economics.SVG(f, years); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
			}
			return g.Print(years, func(w io.Writer) { economics.Table(w, years) })
		},
	}
	f := sim.Flags()
	f.IntVar(&l.Years, "years", l.Years, "years to project")
	f.Int64Var(&l.JobsPerDay, "jobs-per-day", l.JobsPerDay, "paid jobs settled per day")
	f.Uint64Var(&l.TokensPerJob, "tokens-per-job", l.TokensPerJob, "output tokens per job")
	f.StringVar(&price, "price-per-1k", "1", "miners' price per 1,000 tokens (AITBC)")
	f.Float64Var(&l.TxPerJob, "tx-per-job", l.TxPerJob, "coordinator transactions per job (3 unbatched, 3/150 batched)")
	f.Int64Var(&l.TxPerDay, "tx-per-day", l.TxPerDay, "other transactions per day")
	f.IntVar(&l.Validators, "validators", l.Validators, "validators sharing the proposer income")
	f.IntVar(&l.Miners, "miners", l.Miners, "miners sharing jobs and stake")
	f.Float64Var(&l.StakeRatio, "stake-ratio", l.StakeRatio, "share of the genesis supply staked to miners")
	f.StringVar(&genesis, "genesis", "1000000000", "genesis supply (AITBC)")
	f.Int64Var(&l.BlockSeconds, "block-seconds", l.BlockSeconds, "seconds per block")
	f.StringVar(&svg, "svg", "", "also write a chart of supply, minted and burned to this SVG file")
	cmd.AddCommand(sim)
	return cmd
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
)

// The seeds' operator commands (aitbc-cli.sh admin-miners, admin-stats,
// admin-jobs). Each gathers what the chain and the coordinator say into
// one report; the gathering is plain functions over the small interfaces
// below, so the web pages or a test can call them without cobra.

// chainReader is what the admin reports read from a node.
type chainReader interface {
	module.Getter
	Chain(ctx context.Context) (rpc.ChainInfo, error)
}

// liveMiners is what they read from a coordinator without a key.
type liveMiners interface {
	Miners(ctx context.Context) ([]coordinator.MinerView, error)
	Health(ctx context.Context) (coordinator.Health, error)
}

// operatorJobs is the coordinator's operator route.
type operatorJobs interface {
	AdminJobs(ctx context.Context, opKey string, limit int) (coordinator.AdminJobs, error)
}

// operatorKey returns --operator-key (AITBC_OPERATOR_KEY), else the key a
// coordinator or devnet on this --home wrote, else "".
func (g *Globals) operatorKey(flag string) string {
	if flag != "" {
		return flag
	}
	if b, err := os.ReadFile(coordinator.OperatorKeyFile(g.Home)); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// AdminMiner is one row of admin-miners: the chain's registry record,
// the coordinator's live session, and what the coordinator paid it.
type AdminMiner struct {
	Address      string      `json:"address"`
	Status       string      `json:"status"` // online (connected to the coordinator), offline, unbonding
	Registered   bool        `json:"registered"`
	Models       []string    `json:"models"`
	PricePer1k   coin.Amount `json:"price_per_1k_tokens"`
	Stake        coin.Amount `json:"stake"`
	Hardware     string      `json:"hardware,omitempty"`
	Running      int         `json:"running"`
	Slots        int         `json:"slots"`
	TokensPerSec float64     `json:"tokens_per_sec"`
	JobsSettled  uint64      `json:"jobs_settled"` // on chain, all coordinators
	TokensOut    uint64      `json:"tokens_out"`   // on chain
	// Earned is what settlements through this coordinator paid the miner
	// (nil without the operator key: the chain keeps no per-miner total).
	Earned        *coin.Amount `json:"earned,omitempty"`
	LastHeartbeat time.Time    `json:"last_heartbeat,omitzero"`
}

// AdminMiners is the report of admin-miners.
type AdminMiners struct {
	Height int64        `json:"height"`
	Miners []AdminMiner `json:"miners"`
	Notes  []string     `json:"notes,omitempty"` // what could not be read
}

// CollectAdminMiners joins the chain's miner registry with the
// coordinator's sessions and (with opKey) its per-miner totals.
func CollectAdminMiners(ctx context.Context, chain chainReader, live liveMiners, ops operatorJobs, opKey string) (AdminMiners, error) {
	reg, err := miners.QueryAll(ctx, chain)
	if err != nil {
		return AdminMiners{}, fmt.Errorf("miner registry: %w", err)
	}
	out := AdminMiners{Height: reg.Height, Miners: []AdminMiner{}}
	rows := map[string]*AdminMiner{}
	var order []string
	for _, m := range reg.Miners {
		a := m.Address.String()
		rows[a] = &AdminMiner{Address: a, Status: "offline", Registered: true, Models: m.Models, PricePer1k: m.PricePer1k,
			Stake: m.Stake, Hardware: m.GPU, JobsSettled: m.JobsSettled, TokensOut: m.TokensOut, LastHeartbeat: m.LastHeartbeat}
		if m.Status == "unbonding" {
			rows[a].Status = "unbonding"
		}
		order = append(order, a)
	}
	if conn, err := live.Miners(ctx); err != nil {
		out.Notes = append(out.Notes, "coordinator: "+err.Error())
	} else {
		for _, c := range conn {
			r := rows[c.Address]
			if r == nil { // connected but not (yet) registered on chain
				r = &AdminMiner{Address: c.Address, Models: c.Models, PricePer1k: c.PricePer1k}
				rows[c.Address] = r
				order = append(order, c.Address)
			}
			if r.Status != "unbonding" {
				r.Status = "online"
			}
			r.Running, r.Slots, r.TokensPerSec = c.Running, c.Slots, c.TokensPerSec
			if c.Hardware != "" {
				r.Hardware = c.Hardware
			}
		}
	}
	if opKey == "" {
		out.Notes = append(out.Notes, "earnings need the coordinator's operator key (--operator-key, or <home>/coordinator/operator-key)")
	} else if aj, err := ops.AdminJobs(ctx, opKey, 1); err != nil {
		out.Notes = append(out.Notes, "earnings: "+err.Error())
	} else {
		for _, t := range aj.Miners {
			if r := rows[t.Address]; r != nil {
				e := t.Earned
				r.Earned = &e
			}
		}
		for _, a := range order {
			if rows[a].Earned == nil {
				var zero coin.Amount
				rows[a].Earned = &zero
			}
		}
	}
	for _, a := range order {
		out.Miners = append(out.Miners, *rows[a])
	}
	return out, nil
}

func printAdminMiners(w io.Writer, r AdminMiners) {
	if len(r.Miners) == 0 {
		fmt.Fprintf(w, "no miners registered at height %d\n", r.Height)
	}
	for _, m := range r.Miners {
		earned := "n/a"
		if m.Earned != nil {
			earned = m.Earned.String() + " AITBC"
		}
		fmt.Fprintf(w, "%s  %-9s models %s  price %s/1k  stake %s  running %d/%d  %.1f tok/s  jobs %d  tokens %d  earned %s\n",
			m.Address, m.Status, strings.Join(m.Models, ","), m.PricePer1k, m.Stake, m.Running, m.Slots, m.TokensPerSec, m.JobsSettled, m.TokensOut, earned)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// AdminStats is the report of admin-stats.
type AdminStats struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	Supply  struct {
		Circulating coin.Amount `json:"circulating"`
		Genesis     coin.Amount `json:"genesis"`
		Minted      coin.Amount `json:"minted"`
		Burned      coin.Amount `json:"burned"`
		Escrow      coin.Amount `json:"escrow"` // jobs.escrow: customers' money locked for running jobs
	} `json:"supply"`
	Miners struct {
		Registered int `json:"registered"`
		Unbonding  int `json:"unbonding"`
		Online     int `json:"online"` // connected to the coordinator
	} `json:"miners"`
	Jobs struct {
		SettledOnChain uint64         `json:"settled_on_chain"` // by every coordinator
		TokensOut      uint64         `json:"tokens_out"`       // on chain
		Queued         int            `json:"queued"`
		Active         int            `json:"active"`
		ByStatus       map[string]int `json:"by_status,omitempty"` // the coordinator's store (operator key)
	} `json:"jobs"`
	// Volume is what settlements through this coordinator paid miners
	// (operator key); nil when it could not be read.
	Volume *coin.Amount `json:"volume,omitempty"`
	Notes  []string     `json:"notes,omitempty"`
}

// CollectAdminStats sums the chain's supply and miner registry and the
// coordinator's queue (and, with opKey, its job counts and volume).
func CollectAdminStats(ctx context.Context, chain chainReader, live liveMiners, ops operatorJobs, opKey string) (AdminStats, error) {
	var s AdminStats
	ci, err := chain.Chain(ctx)
	if err != nil {
		return s, fmt.Errorf("chain: %w", err)
	}
	s.ChainID, s.Height = ci.ChainID, ci.Height
	s.Supply.Circulating, s.Supply.Genesis, s.Supply.Minted, s.Supply.Burned = ci.Supply, ci.GenesisTotal, ci.Minted, ci.Burned
	for _, ma := range ci.ModuleAccounts {
		if ma.Name == "jobs.escrow" {
			s.Supply.Escrow = ma.Balance
		}
	}
	reg, err := miners.QueryAll(ctx, chain)
	if err != nil {
		return s, fmt.Errorf("miner registry: %w", err)
	}
	s.Miners.Registered = len(reg.Miners)
	for _, m := range reg.Miners {
		if m.Status == "unbonding" {
			s.Miners.Unbonding++
		}
		s.Jobs.SettledOnChain += m.JobsSettled
		s.Jobs.TokensOut += m.TokensOut
	}
	if h, err := live.Health(ctx); err != nil {
		s.Notes = append(s.Notes, "coordinator: "+err.Error())
	} else {
		s.Miners.Online, s.Jobs.Queued, s.Jobs.Active = h.Miners, h.Queued, h.Active
	}
	if opKey == "" {
		s.Notes = append(s.Notes, "job counts and volume need the coordinator's operator key (--operator-key, or <home>/coordinator/operator-key)")
		return s, nil
	}
	aj, err := ops.AdminJobs(ctx, opKey, 1)
	if err != nil {
		s.Notes = append(s.Notes, "operator: "+err.Error())
		return s, nil
	}
	s.Jobs.ByStatus = aj.Counts
	var vol coin.Amount
	for _, m := range aj.Miners {
		vol += m.Earned
	}
	s.Volume = &vol
	return s, nil
}

func printAdminStats(w io.Writer, s AdminStats) {
	fmt.Fprintf(w, "chain     %s at height %d\n", s.ChainID, s.Height)
	fmt.Fprintf(w, "supply    %s AITBC circulating (genesis %s, minted %s, burned %s; %s in job escrow)\n",
		s.Supply.Circulating, s.Supply.Genesis, s.Supply.Minted, s.Supply.Burned, s.Supply.Escrow)
	fmt.Fprintf(w, "miners    %d registered (%d unbonding), %d online\n", s.Miners.Registered, s.Miners.Unbonding, s.Miners.Online)
	fmt.Fprintf(w, "jobs      %d settled on chain (%d tokens), %d queued, %d active", s.Jobs.SettledOnChain, s.Jobs.TokensOut, s.Jobs.Queued, s.Jobs.Active)
	if len(s.Jobs.ByStatus) > 0 {
		keys := make([]string, 0, len(s.Jobs.ByStatus))
		for k := range s.Jobs.ByStatus {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Jobs.ByStatus[k]))
		}
		fmt.Fprintf(w, "; coordinator store: %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	if s.Volume != nil {
		fmt.Fprintf(w, "volume    %s AITBC paid to miners through this coordinator\n", s.Volume)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func printAdminJob(w io.Writer, j coordinator.AdminJob) {
	miner := j.Miner
	if miner == "" {
		miner = "-"
	}
	extra := ""
	if j.Waiting != "" {
		extra = "  waiting: " + j.Waiting
	} else if j.Error != "" {
		extra = "  error: " + j.Error
	}
	fmt.Fprintf(w, "%s  %-10s %-12s tenant %s  miner %s  tokens %d/%d  created %s%s\n",
		j.JobID, j.Status, j.Model, j.TenantID, miner, j.TokensIn, j.TokensOut, j.Created.Local().Format(time.DateTime), extra)
}

func newAdminCmds(g *Globals) []*cobra.Command {
	var mKey string
	adminMiners := &cobra.Command{
		Use:   "admin-miners",
		Short: "Miners with status, models, price, stake, jobs and earnings (operator view)",
		Long: `Joins the chain's miner registry (models, price, stake, jobs settled, tokens)
with the coordinator's live sessions (online, running jobs, tokens/s). Earnings
are what settlements through this coordinator paid each miner; they need the
coordinator's operator key (--operator-key, AITBC_OPERATOR_KEY, or the
<home>/coordinator/operator-key file a coordinator or devnet on this home
writes). Without it the column reads n/a.`,
		Example: `  aitbc admin-miners
  aitbc admin-miners --output json | jq '.miners[] | {address, status, earned}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := coordinator.NewClient(g.Coord, "")
			r, err := CollectAdminMiners(cmd.Context(), g.node(), c, c, g.operatorKey(mKey))
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) { printAdminMiners(w, r) })
		},
	}
	adminMiners.Flags().StringVar(&mKey, "operator-key", "", "the coordinator's operator key (default: <home>/coordinator/operator-key)")

	var sKey string
	adminStats := &cobra.Command{
		Use:   "admin-stats",
		Short: "Chain, supply, jobs, miners and volume in one report (operator view)",
		Long: `Reads the node (height, supply, burned, job escrow, miner registry) and the
coordinator (miners online, queue). With the coordinator's operator key it
adds the coordinator's jobs by status and the volume paid to miners.`,
		Example: `  aitbc admin-stats
  aitbc admin-stats --output json | jq .supply`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := coordinator.NewClient(g.Coord, "")
			s, err := CollectAdminStats(cmd.Context(), g.node(), c, c, g.operatorKey(sKey))
			if err != nil {
				return err
			}
			return g.Print(s, func(w io.Writer) { printAdminStats(w, s) })
		},
	}
	adminStats.Flags().StringVar(&sKey, "operator-key", "", "the coordinator's operator key (default: <home>/coordinator/operator-key)")

	var jKey string
	var limit int
	adminJobs := &cobra.Command{
		Use:   "admin-jobs",
		Short: "Active and recent jobs of every tenant on the coordinator (operator key)",
		Long: `Lists the jobs queued, dispatched or running now, and the newest --limit jobs,
across all tenants (GET /v1/admin/jobs). Prompts and results are not shown.
Needs the coordinator's operator key: --operator-key, AITBC_OPERATOR_KEY, or
the <home>/coordinator/operator-key file a coordinator or devnet on this home
writes at start.`,
		Example: `  aitbc admin-jobs
  aitbc admin-jobs --limit 100 --output json | jq '.active | length'
  AITBC_OPERATOR_KEY=$(cat /var/lib/aitbc/coordinator/operator-key) aitbc admin-jobs --coordinator http://10.0.0.5:8000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usagef("--limit must be 1-1000")
			}
			key := g.operatorKey(jKey)
			if key == "" {
				return usagef("admin-jobs needs the coordinator's operator key: --operator-key, AITBC_OPERATOR_KEY, or %s", coordinator.OperatorKeyFile(g.Home))
			}
			aj, err := coordinator.NewClient(g.Coord, "").AdminJobs(cmd.Context(), key, limit)
			if err != nil {
				if errors.Is(err, coordinator.ErrNotOperator) {
					return fmt.Errorf("%w (is the key this coordinator's?)", err)
				}
				return err
			}
			return g.Print(aj, func(w io.Writer) {
				fmt.Fprintf(w, "%d active jobs\n", len(aj.Active))
				for _, j := range aj.Active {
					printAdminJob(w, j)
				}
				fmt.Fprintf(w, "%d recent jobs (of %d scanned, %d tenants)\n", len(aj.Recent), aj.Scanned, aj.Tenants)
				for _, j := range aj.Recent {
					printAdminJob(w, j)
				}
			})
		},
	}
	adminJobs.Flags().StringVar(&jKey, "operator-key", "", "the coordinator's operator key (default: <home>/coordinator/operator-key)")
	adminJobs.Flags().IntVar(&limit, "limit", 20, "recent jobs to list (1-1000)")
	return []*cobra.Command{adminMiners, adminStats, adminJobs}
}

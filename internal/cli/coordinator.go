package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// storeFlagDoc is the help of every --store flag.
const storeFlagDoc = "SQLite file, or a postgres://user:password@host:port/db URL that several coordinators share (default <home>/coordinator/coordinator.db)"

func defaultStore(home string) string { return filepath.Join(home, "coordinator", "coordinator.db") }

func newCoordinatorCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "coordinator", Short: "Run the job coordinator, or manage its tenants"}
	var listen, wallet, password, dbPath, filesDir, logLevel string
	var publicURL, region string
	var lease time.Duration
	start := &cobra.Command{
		Use:   "start",
		Short: "Serve the coordinator API (jobs, miners, OpenAI- and Ollama-compatible endpoints)",
		Long: `Runs a coordinator against the node at --node. It signs its chain transactions
(job creation from deposits, assignments, settlements) with --wallet, which
needs AITBC for fees. State (tenants, jobs, receipts) is kept in --store;
a restarted coordinator re-drives every job it had not finished.

--store is an SQLite file (one coordinator) or a postgres:// URL: several
coordinators on one PostgreSQL database and one chain key share the work.
Each drives the jobs it holds a lease on; when one dies, the others take
its jobs over after the lease (--lease, 15 s). See docs/COORDINATOR.md, "Scaling out".

--public-url and --region announce the coordinator on chain (coordinators
module), so that clients and miners given no --coordinator find it and pick
the nearest healthy one (` + "`aitbc coordinator list`" + `). The announcement is sent
once: a restart with the same URL and region costs no transaction.

Private jobs (ai-submit --private) need the proving key at <home>/zk/private_settle.pk
(aitbc zk setup, or aitbc zk ceremony seal, with --out <home>/zk); without it they
are refused (docs/VERIFICATION.md, "Private receipts").`,
		Example: `  aitbc coordinator start --wallet coordinator --password 123 --listen 127.0.0.1:8000
  aitbc coordinator start --wallet coordinator --listen 0.0.0.0:8000 \
      --store postgres://aitbc:secret@db.internal:5432/aitbc --output json
  aitbc coordinator start --wallet coordinator --listen 0.0.0.0:8000 \
      --public-url https://eu1.aitbc.example:8000 --region eu-west`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if wallet == "" {
				return usagef("--wallet is required")
			}
			log, err := g.newLogger(logLevel)
			if err != nil {
				return err
			}
			chain := g.serviceNode(log)
			key, svc, pw, err := g.minerKey(ctx, wallet, password, chain)
			if err != nil {
				return err
			}
			key.Wipe() // the coordinator signs through svc
			// The operator key opens GET /v1/admin/jobs; aitbc admin-jobs reads it from the file.
			opKey, err := coordinator.LoadOrCreateOperatorKey(coordinator.OperatorKeyFile(g.Home))
			if err != nil {
				return err
			}
			opts := g.coordinatorOptions()
			opts.OperatorKey = opKey
			if lease < time.Second || lease > 10*time.Minute {
				return usagef("--lease %s: want between 1s and 10m", lease)
			}
			opts.Lease = lease
			announce, err := announcement(publicURL, region)
			if err != nil {
				return err
			}
			// Private jobs need the proving key (aitbc zk setup/ceremony seal --out <home>/zk); without it they are refused.
			if p, err := zkProver(g.Home); err != nil {
				return err
			} else if p != nil {
				opts.Prover = p
			}
			return system.Run(ctx, system.Config{Log: log, Coordinator: &system.CoordinatorConfig{
				Listen: listen, Store: dbPath, FilesDir: filesDir, Chain: chain, Logger: log, Limits: g.httpLimits(), Options: opts,
				Wallet: walletd.WalletSender{S: svc, Name: wallet, Password: pw}, Announce: announce,
			}}, func(s *system.System) error {
				c := s.Coordinator
				fmt.Fprintf(g.Stderr(), "coordinator %s listening on %s (chain %s, node %s)\n", c.Service.Address(), c.URL(), c.Service.ChainID(), g.Node)
				return nil
			})
		},
	}
	start.Flags().StringVar(&listen, "listen", "127.0.0.1:8000", "API address")
	start.Flags().StringVar(&wallet, "wallet", "", "wallet that signs the coordinator's transactions (required)")
	start.Flags().StringVar(&password, "password", "", "its password (or AITBC_PASSWORD)")
	start.Flags().StringVar(&dbPath, "store", "", storeFlagDoc)
	start.Flags().StringVar(&filesDir, "files-dir", "", "directory of the job files tenants upload (default: beside an SQLite store; with a postgres:// store in the database, unless a directory all its coordinators share is given; \"off\": none)")
	start.Flags().DurationVar(&lease, "lease", store.DefaultLease, "with a postgres:// store: how long a job stays with a coordinator that stopped renewing it before another takes it over")
	start.Flags().StringVar(&logLevel, "log-level", "info", "log level")
	start.Flags().StringVar(&publicURL, "public-url", "", "the URL customers and miners reach this coordinator at, announced on chain with --region (empty: not announced)")
	start.Flags().StringVar(&region, "region", "", "the region announced with --public-url (a-z, 0-9, '-'; e.g. eu-west)")
	withConfig(start, config.Coordinator)
	annotate(start, coordSelfAnnotation) // it is a coordinator: no other to pick
	start.PreRun = func(*cobra.Command, []string) {
		if dbPath == "" {
			dbPath = defaultStore(g.Home)
		}
	}

	tenant := &cobra.Command{Use: "tenant", Short: "Manage the coordinator's tenants (customers with API keys)"}
	var name, addr, tdb string
	add := &cobra.Command{
		Use:   "add",
		Short: "Create a tenant bound to an address and print its API key (shown once)",
		Example: `  aitbc coordinator tenant add --name acme --address aitbc1qxy...
  aitbc coordinator tenant add --name acme --address aitbc1qxy... --store /var/lib/aitbc/coordinator/coordinator.db --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := address.Parse(addr)
			if err != nil {
				return usagef("--address: %v", err)
			}
			st, err := store.Open(cmd.Context(), orDefault(tdb, defaultStore(g.Home)), store.PostgresOptions{})
			if err != nil {
				return err
			}
			defer st.Close()
			t, key, err := coordinator.AddTenant(cmd.Context(), st, name, a, time.Now())
			if err != nil {
				return err
			}
			out := map[string]any{"tenant_id": t.ID, "name": t.Name, "address": t.Address, "api_key": key}
			return g.Print(out, func(w io.Writer) { fmt.Fprintf(w, "tenant %s (%s, %s)\napi key: %s\n", t.ID, t.Name, t.Address, key) })
		},
	}
	add.Flags().StringVar(&name, "name", "", "tenant name")
	add.Flags().StringVar(&addr, "address", "", "the tenant's chain address (required)")
	add.Flags().StringVar(&tdb, "store", "", storeFlagDoc)
	list := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Example: `  aitbc coordinator tenant list
  aitbc coordinator tenant list --store /var/lib/aitbc/coordinator/coordinator.db --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := store.Open(cmd.Context(), orDefault(tdb, defaultStore(g.Home)), store.PostgresOptions{})
			if err != nil {
				return err
			}
			defer st.Close()
			ts, err := st.Tenants(cmd.Context())
			if err != nil {
				return err
			}
			return g.Print(ts, func(w io.Writer) {
				for _, t := range ts {
					fmt.Fprintf(w, "%s  %-20s %s\n", t.ID, t.Name, t.Address)
				}
			})
		},
	}
	list.Flags().StringVar(&tdb, "store", "", storeFlagDoc)
	keys, revoke := tenantKeyCommands(g)
	tenant.AddCommand(add, list, keys, revoke)

	miners := &cobra.Command{
		Use:   "miners",
		Short: "List the miners connected to the coordinator now",
		Example: `  aitbc coordinator miners
  aitbc coordinator miners --coordinator http://10.0.0.2:8000 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := coordinator.NewClient(g.Coord, "").Miners(cmd.Context())
			if err != nil {
				return err
			}
			return g.Print(ms, func(w io.Writer) {
				if len(ms) == 0 {
					fmt.Fprintln(w, "no miner connected")
				}
				for _, m := range ms {
					fmt.Fprintf(w, "%s  %d/%d busy  %s  %.0f tok/s  %s AITBC/1k  %s\n", m.Address, m.Running, m.Slots, m.Backend, m.TokensPerSec, m.PricePer1k, m.Hardware)
				}
			})
		},
	}
	cmd.AddCommand(start, tenant, miners)
	cmd.AddCommand(newCoordinatorListCmd(g), newCoordinatorRetireCmd(g)) // coordinator_pick.go
	return cmd
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ServiceHealth is one line of `aitbc health`.
type ServiceHealth struct {
	Service string `json:"service"`
	URL     string `json:"url"`
	OK      bool   `json:"ok"`
	Detail  string `json:"detail"`
}

func newHealthCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check the node, the wallet daemon and the coordinator",
		Example: `  aitbc health
  aitbc health --node http://10.0.0.2:8006 --coordinator http://10.0.0.2:8000 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			var out []ServiceHealth
			if h, err := g.node().Health(ctx); err != nil {
				out = append(out, ServiceHealth{"node", g.Node, false, err.Error()})
			} else {
				out = append(out, ServiceHealth{"node", g.Node, true, fmt.Sprintf("chain %s, height %d", h.ChainID, h.Height)})
			}
			if _, err := walletd.NewClient(g.WalletURL, g.daemonAPIKey()).Health(ctx); err != nil {
				out = append(out, ServiceHealth{"wallet daemon", g.WalletURL, false, err.Error()})
			} else {
				out = append(out, ServiceHealth{"wallet daemon", g.WalletURL, true, "ok"})
			}
			if h, err := coordinator.NewClient(g.Coord, "").Health(ctx); err != nil {
				out = append(out, ServiceHealth{"coordinator", g.Coord, false, err.Error()})
			} else {
				out = append(out, ServiceHealth{"coordinator", g.Coord, true, fmt.Sprintf("%d miners, %d queued, %d active jobs", h.Miners, h.Queued, h.Active)})
			}
			bad := 0
			for _, s := range out {
				if !s.OK {
					bad++
				}
			}
			if err := g.Print(out, func(w io.Writer) {
				for _, s := range out {
					fmt.Fprintf(w, "%-14s %-4s %s  %s\n", s.Service, okBad(s.OK), s.URL, s.Detail)
				}
			}); err != nil {
				return err
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d services unhealthy", bad, len(out))
			}
			return nil
		},
	}
}

// tenantKeyCommands are "coordinator tenant keys" (a tenant's API keys by
// id, with creation and last use) and "coordinator tenant revoke" (delete
// one). They work on the store, as add and list do; a running coordinator
// stops accepting a revoked key within 30 s (tenants revoke their own at
// once with DELETE /v1/tenants/keys/{id}).
func tenantKeyCommands(g *Globals) (keys, revoke *cobra.Command) {
	var tenantID, keyID, tdb string
	open := func(ctx context.Context) (store.Store, error) {
		return store.Open(ctx, orDefault(tdb, defaultStore(g.Home)), store.PostgresOptions{})
	}
	keys = &cobra.Command{
		Use:   "keys",
		Short: "List a tenant's API keys by id, with creation and last use",
		Example: `  aitbc coordinator tenant keys --tenant t-3f9a...
  aitbc coordinator tenant keys --tenant t-3f9a... --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenantID == "" {
				return usagef("--tenant is required")
			}
			st, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			ks, err := st.TenantKeys(cmd.Context(), tenantID)
			if err != nil {
				return err
			}
			return g.Print(ks, func(w io.Writer) {
				for _, k := range ks {
					used := "never used"
					if k.LastUsed != nil {
						used = "last used " + k.LastUsed.Format(time.RFC3339)
					}
					fmt.Fprintf(w, "%s  created %s  %s\n", k.ID, k.Created.Format(time.RFC3339), used)
				}
			})
		},
	}
	revoke = &cobra.Command{
		Use:     "revoke",
		Short:   "Revoke one of a tenant's API keys (by the id `tenant keys` shows)",
		Example: `  aitbc coordinator tenant revoke --tenant t-3f9a... --key-id k-81c2...`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenantID == "" || keyID == "" {
				return usagef("--tenant and --key-id are required")
			}
			st, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.RevokeKey(cmd.Context(), tenantID, keyID); err != nil {
				return err
			}
			out := map[string]any{"tenant_id": tenantID, "key_id": keyID, "revoked": true}
			return g.Print(out, func(w io.Writer) { fmt.Fprintf(w, "revoked key %s of tenant %s\n", keyID, tenantID) })
		},
	}
	for _, c := range []*cobra.Command{keys, revoke} {
		c.Flags().StringVar(&tenantID, "tenant", "", "tenant id (see tenant list)")
		c.Flags().StringVar(&tdb, "store", "", storeFlagDoc)
	}
	revoke.Flags().StringVar(&keyID, "key-id", "", "the key's id (see tenant keys)")
	return keys, revoke
}

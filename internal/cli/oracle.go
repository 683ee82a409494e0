package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/oracle"
	"github.com/aitbc/aitbc/internal/oracle/report"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
)

func newOracleCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "oracle", Short: "The metrics oracle: agents' signed reports, aggregates, epoch commits on chain (docs/AGENTS.md)",
		Example: "  aitbc oracle start --wallet oracle --listen 127.0.0.1:8010"}
	var listen, wallet, password, db string
	var epoch, minInterval, skew time.Duration
	start := &cobra.Command{
		Use:   "start",
		Short: "Serve POST /api/v1/report and GET /api/v1/agents/{id}/metrics, and commit each finished epoch's aggregates on chain",
		Long: `Runs the oracle over the node at --node. Agents post reports signed with
their ed25519 keys; the oracle checks their structure, signature, on-chain
registration, timestamp (fresh, and after the agent's last) and rate, and
stores them in SQLite (--db). At the end of each --epoch it commits every
agent's aggregate on chain (agents/metrics) with --wallet, which must be
one of the agents module's oracles (genesis; aitbc devnet names its
"oracle" wallet). Without --wallet it only collects.`,
		Example: `  aitbc oracle start --wallet oracle --password 123
  aitbc oracle start --listen 127.0.0.1:8010 --epoch 1h --db /var/lib/aitbc/oracle.db --wallet oracle`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log, err := g.newLogger("info")
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("oracle: %w", err)
			}
			defer ln.Close()
			h, err := g.node().Health(ctx)
			if err != nil {
				return err
			}
			if db == "" {
				db = filepath.Join(g.Home, "oracle", "oracle.db")
			}
			if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
				return err
			}
			st, err := oracle.OpenStore(db)
			if err != nil {
				return err
			}
			defer st.Close()
			var submit oracle.Submitter
			if wallet != "" {
				submit = func(ctx context.Context, msg tx.Msg) (string, error) { return g.submit(ctx, wallet, password, msg) }
			}
			o := oracle.New(oracle.Config{ChainID: h.ChainID, Epoch: epoch, MinInterval: minInterval, MaxSkew: skew, Log: log}, st, g.node(), submit)
			fmt.Fprintf(g.Stderr(), "oracle on http://%s (chain %s, node %s, epoch %s, commits %s)\n", ln.Addr(), h.ChainID, g.Node, epoch, orOffCLI(wallet))
			return o.Serve(ctx, ln, g.httpLimits(), min(epoch/4, time.Minute))
		},
	}
	f := start.Flags()
	f.StringVar(&listen, "listen", oracle.DefaultListen, "address of the oracle's API")
	f.StringVar(&wallet, "wallet", "", "wallet that signs the epoch commits: one of the agents module's oracles (empty: collect only)")
	f.StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	f.StringVar(&db, "db", "", "SQLite file of the reports (default <home>/oracle/oracle.db)")
	f.DurationVar(&epoch, "epoch", time.Hour, "epoch length: reports are aggregated per epoch of their timestamps, and each finished epoch committed")
	f.DurationVar(&minInterval, "min-interval", 10*time.Second, "an agent's reports must be at least this far apart (sooner: 429)")
	f.DurationVar(&skew, "max-skew", time.Minute, "a report's timestamp may be at most this far from the oracle's clock")
	cmd.AddCommand(start)
	return cmd
}

func orOffCLI(s string) string {
	if s == "" {
		return "off"
	}
	return "by " + s
}

// minerReporter starts an OracleReporter for a miner (aitbc miner start
// --oracle): wrap counts the miner's jobs; stop ends the reports.
func minerReporter(ctx context.Context, oracleURL string, col *report.MetricsCollector, key report.Signer, node healther, log *slog.Logger) (wrap func(miner.Runner) miner.Runner, stop func(), err error) {
	if oracleURL == "" || col == nil {
		return func(r miner.Runner) miner.Runner { return r }, func() {}, nil
	}
	h, err := node.Health(ctx)
	if err != nil {
		return nil, nil, err
	}
	rep := &report.OracleReporter{URL: oracleURL, ChainID: h.ChainID, Key: key, Collector: col, Interval: 30 * time.Second, Log: log}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); rep.Run(rctx) }()
	return func(r miner.Runner) miner.Runner { return system.ReportingRunner(r, col) }, func() { cancel(); <-done }, nil
}

// minerCollector is the MetricsCollector of a miner started with --oracle
// (nil without): its jobs (minerReporter) and the forward requests of its
// span servers (--layers) are counted in the same reports.
func minerCollector(oracleURL string) *report.MetricsCollector {
	if oracleURL == "" {
		return nil
	}
	return report.NewMetricsCollector(nil)
}

// spanObserver counts a span server's forward requests in col: a task per
// request, its rows as processed tokens.
func spanObserver(col *report.MetricsCollector) func(rows int, took time.Duration) {
	if col == nil {
		return nil
	}
	return func(rows int, took time.Duration) { col.Task(uint64(rows), took) }
}

// healther is what minerReporter needs of the node: its chain id.
type healther interface {
	Health(ctx context.Context) (rpc.Health, error)
}

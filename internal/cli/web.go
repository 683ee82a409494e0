package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
	"github.com/aitbc/aitbc/internal/web"
)

func newWebCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "web", Short: "Serve the explorer, the marketplace and the miner dashboard"}
	var listen, logLevel string
	start := &cobra.Command{
		Use:   "start",
		Short: "Serve the web pages over a node, a coordinator and a wallet daemon",
		Long: `Serves the explorer (/explorer), the marketplace (/marketplace) and the miner
dashboard (/miner) on --listen, reading the chain (and its market module's
listings, bids, agreements, ratings and reputation) from --node and jobs and
miners from --coordinator ("off": no job submission, no live miner figures).
Visitors sign in with a wallet the daemon at --wallet-url holds ("off": no
sign-in). aitbc devnet serves the same pages on 127.0.0.1:8016 by itself.`,
		Example: "  aitbc web start --node http://127.0.0.1:8006 --coordinator http://127.0.0.1:8000 --listen 127.0.0.1:8016",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.newLogger(logLevel)
			if err != nil {
				return err
			}
			wc := web.Config{Node: g.node(), Logger: log}
			if c := strings.TrimSpace(g.Coord); c != "" && !strings.EqualFold(c, "off") {
				wc.Coordinator = web.CoordinatorClient{URL: c}
			}
			if !g.walletsOff() {
				wd := walletd.NewClient(g.WalletURL, g.daemonAPIKey())
				wc.Wallets, wc.Submitter = wd, wd
			}
			return system.Run(cmd.Context(), system.Config{Log: log, Web: &system.WebConfig{Listen: listen, Limits: g.httpLimits(), Config: wc}},
				func(s *system.System) error {
					fmt.Fprintf(g.Stderr(), "web pages on %s (node %s, coordinator %s, wallet daemon %s)\n",
						s.Web.URL(), g.Node, webOrOff(wc.Coordinator != nil, g.Coord), webOrOff(wc.Wallets != nil, g.WalletURL))
					return nil
				})
		},
	}
	start.Flags().StringVar(&listen, "listen", "127.0.0.1:8016", "address of the pages")
	start.Flags().StringVar(&logLevel, "log-level", "info", "log level")
	withConfig(start, config.Web)
	cmd.AddCommand(start)
	return cmd
}

func webOrOff(on bool, s string) string {
	if on {
		return s
	}
	return "off"
}

package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/chain/coin"
	chainex "github.com/aitbc/aitbc/internal/chain/modules/exchange"
	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/exchange"
	"github.com/aitbc/aitbc/internal/oracle"
)

func newDevnetCmd(g *Globals) *cobra.Command {
	var cfg devnet.Config
	var price, makerPrice, logLevel string
	var hostProviders bool
	var spotCheck float64
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run the whole system in one process: chain, node API, wallet daemon, coordinator and a miner",
		Long: `Starts a single-validator AITBC chain (about 2 s blocks) with a genesis-ops
wallet funded in genesis, the node REST API (8006), CometBFT's RPC (26657),
the wallet daemon (8002), the coordinator (8000) and miners on the built-in
engine serving tolstoy-1m. All state lives under --home; stopping (Ctrl-C) and
starting again continues the same chain, wallets and jobs. The genesis-ops
password is a devnet default (123): never use a devnet home for real funds.`,
		Example: `  aitbc devnet
  aitbc devnet --home /tmp/devnet2 --rpc-listen 127.0.0.1:18006 --wallet-listen 127.0.0.1:18002 \
      --coordinator-listen 127.0.0.1:18000 --p2p-listen tcp://127.0.0.1:18005 --comet-rpc-listen off
  aitbc devnet --coordinators 2 --miners 2 --store postgres://aitbc:secret@127.0.0.1:5432/aitbc
  aitbc devnet --span-miners 2   # then: aitbc swarm generate --peers http://127.0.0.1:8031,http://127.0.0.1:8032 --prompt "It was"
  aitbc devnet --spot-check 0.1  # a new chain re-checks a tenth of the attested jobs; then: aitbc audits list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.newLogger(logLevel)
			if err != nil {
				return err
			}
			if cfg.MinerPrice, err = coin.Parse(price); err != nil {
				return usagef("--miner-price: %v", err)
			}
			if cfg.MakerPrice, err = chainex.ParsePrice(makerPrice); err != nil {
				return usagef("--maker-price: %v", err)
			}
			cfg.Home, cfg.Log = g.Home, log
			cfg.ModelsDir = expandHome(cfg.ModelsDir)
			cfg.NoHosting = !hostProviders
			if cfg.SpotCheckBps, err = devnet.SpotCheckBps(spotCheck); err != nil {
				return usagef("--spot-check: %v", err)
			}
			if strings.ToLower(logLevel) == "debug" {
				cfg.LogLevel = "info"
			}
			fmt.Fprintf(g.Stderr(), "starting devnet in %s ...\n", g.Home)
			start := time.Now()
			d, err := devnet.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer d.Close()
			d.Banner(g.Stdout())
			fmt.Fprintf(g.Stderr(), "(ready in %s)\n", time.Since(start).Round(time.Millisecond))
			select {
			case <-cmd.Context().Done():
				fmt.Fprintln(g.Stderr(), "stopping devnet ...")
				return nil
			case err := <-d.Errors():
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ChainID, "chain-id", "aitbc-devnet", "chain id of a new devnet")
	f.BoolVar(&cfg.CheckInvariants, "check-invariants", false, "audit the chain's books after every block and stop on a broken invariant")
	f.DurationVar(&cfg.BlockTime, "block-time", 2*time.Second, "time between blocks")
	f.StringVar(&cfg.GenesisPassword, "genesis-password", "123", "password of the devnet's wallets (genesis-ops, coordinator, miners)")
	f.StringVar(&cfg.RPCListen, "rpc-listen", "127.0.0.1:8006", "node REST API address")
	f.StringVar(&cfg.CometRPCListen, "comet-rpc-listen", "tcp://127.0.0.1:26657", "CometBFT RPC address (off to disable)")
	f.StringVar(&cfg.P2PListen, "p2p-listen", "tcp://127.0.0.1:8005", "chain P2P address")
	f.StringVar(&cfg.WalletListen, "wallet-listen", "127.0.0.1:8002", "wallet daemon address")
	f.StringVar(&cfg.CoordinatorListen, "coordinator-listen", "127.0.0.1:8000", "coordinator API address (off: run none, nor miners)")
	f.StringVar(&cfg.WebListen, "web-listen", "127.0.0.1:8016", "web pages' address: explorer, marketplace, miner dashboard (off to disable)")
	f.IntVar(&cfg.Coordinators, "coordinators", 1, "coordinators sharing the work (more than 1 needs --store postgres://...); the others listen on the ports after --coordinator-listen")
	f.StringVar(&cfg.Store, "store", "", "coordinators' store: empty for an SQLite file in the home, or a postgres:// URL they share")
	f.IntVar(&cfg.Miners, "miners", 1, "miners on the built-in engine (0 or less: none)")
	f.IntVar(&cfg.MinerSlots, "miner-slots", 2, "concurrent jobs per miner")
	f.StringVar(&cfg.ModelsDir, "models-dir", "", "Ollama's model store (e.g. ~/.ollama/models) whose GGUF models the miners also serve by their Ollama names")
	f.BoolVar(&cfg.BTC, "btc", false, "also run a Bitcoin regtest node (btcd), fund a test Bitcoin wallet and run the bridge daemon (docs/BRIDGE.md); needs a fresh --home")
	f.IntVar(&cfg.BTCOperators, "bridge-operators", 1, "with --btc on a fresh home: bridge operators, each with its own wallet, Bitcoin key and daemon")
	f.IntVar(&cfg.BTCThreshold, "bridge-threshold", 1, "with --btc on a fresh home: how many bridge operators must attest a deposit and sign a payout (m of n)")
	f.StringVar(&price, "miner-price", "1", "miners' price in AITBC per 1,000 output tokens")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	f.BoolVar(&hostProviders, "host-providers", true, "run a built-in-engine miner for each of the daemon's wallets that lists a service no miner serves (docs/MARKETPLACE.md)")
	f.StringVar(&cfg.ExchangeListen, "exchange-listen", exchange.DefaultListen, "exchange API's address, with the devnet market maker (off to disable)")
	f.StringVar(&cfg.OracleListen, "oracle-listen", oracle.DefaultListen, "metrics oracle's address: agents' signed reports, epoch aggregates on chain (docs/AGENTS.md; off to disable)")
	f.IntVar(&cfg.SpanMiners, "span-miners", 0, "span servers holding even shares of tolstoy-1m's layers, registered on chain as agents: aitbc swarm generate runs a split job through them (docs/DISTRIBUTED.md)")
	f.StringVar(&cfg.SpanListen, "span-listen", "127.0.0.1:8031", "the first span server's address; the others listen on the ports after it")
	f.StringVar(&makerPrice, "maker-price", "0.00001", "the market maker's reference price, BTC per AITBC (0.00001: 100,000 AITBC per BTC)")
	f.Float64Var(&spotCheck, "spot-check", 0, "fraction of attested jobs a new devnet's genesis spot-checks (0 to 1), re-checked by a bonded verifier the devnet runs (docs/VERIFICATION.md)")
	withConfig(cmd, config.Devnet)
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if cfg.Miners <= 0 {
			cfg.Miners = -1
		}
		return nil
	}
	return cmd
}

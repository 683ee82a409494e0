package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aitbc/aitbc/internal/bench/saturate"
	"github.com/aitbc/aitbc/internal/testnet"
)

func newTestnetCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "testnet", Short: "Generate and measure multi-node networks on this machine"}
	cmd.AddCommand(newTestnetInitCmd(g), newTestnetAddNodeCmd(g), newTestnetBenchCmd(g))
	return cmd
}

// outDir is the value of `testnet init --output DIR`. The flag shadows the
// global --output (text|json) on this command, so AITBC_OUTPUT=json, meant
// as the format, must not become the directory: the format still reaches
// Globals through the root flag.
type outDir struct {
	dir    string
	envSet bool
}

func (o *outDir) String() string { return o.dir }
func (o *outDir) Type() string   { return "dir" }
func (o *outDir) Set(v string) error {
	if env, ok := os.LookupEnv("AITBC_OUTPUT"); ok && env == v && (v == "text" || v == "json") && !o.envSet {
		o.envSet = true // applyEnv filling the shadowing flag: ignore
		return nil
	}
	o.dir = v
	return nil
}

var _ pflag.Value = (*outDir)(nil)

func newTestnetInitCmd(g *Globals) *cobra.Command {
	o := testnet.Options{}
	out := &outDir{dir: "./testnet"}
	var noPEX bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Generate keys, one genesis, node configs and ports for a local multi-node network",
		Long: `Writes a network to --output: one home per node (node0, node1, ...) with its
validator and node keys, the shared genesis (every validator; genesis-ops funded),
and aitbc-node.json (moniker, block time, listen addresses, every other node as a
persistent peer); testnet.json listing every node's REST URL (for --testnet in
node status, transactions --cross-node and transaction verify-propagation); and
genesis-key.json, the TEST-ONLY recovery phrase of genesis-ops.

Ports: node i listens on P2P 8005+100i, REST 8006+100i and CometBFT RPC 26657+100i
(node0 on the seeds' ports), plus --port-offset. Start each node in its own process
with ` + "`aitbc node start --home DIR/nodeI`" + `.`,
		Example: `  aitbc testnet init --validators 4 --non-validators 1 --output ./testnet
  for i in 0 1 2 3 4; do aitbc node start --home ./testnet/node$i > node$i.log 2>&1 & done
  aitbc node status --testnet ./testnet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Dir = out.dir
			o.DisablePEX = noPEX
			m, err := testnet.Init(o)
			if err != nil {
				return err
			}
			return g.Print(m, func(w io.Writer) { printManifest(w, m) })
		},
	}
	f := cmd.Flags()
	f.Var(out, "output", "directory to write the testnet to")
	setEnvName(f, "output", "AITBC_TESTNET_DIR") // AITBC_OUTPUT is the output format
	f.IntVar(&o.Validators, "validators", 4, "validator nodes")
	f.IntVar(&o.NonValidators, "non-validators", 0, "full nodes that follow the chain without voting")
	f.StringVar(&o.ChainID, "chain-id", "aitbc-testnet", "chain id")
	f.DurationVar(&o.BlockTime, "block-time", time.Second, "time between blocks")
	f.DurationVar(&o.ProposeTimeout, "propose-timeout", 0, "how long a round waits for the proposer (0: 2s)")
	f.StringVar(&o.Host, "host", "127.0.0.1", "address every node listens on and is dialled at")
	f.IntVar(&o.PortOffset, "port-offset", 0, "added to every port of the scheme")
	f.BoolVar(&o.NoCometRPC, "no-comet-rpc", false, "do not open CometBFT's RPC port on the nodes")
	f.BoolVar(&noPEX, "no-pex", false, "nodes talk only to their persistent peers")
	f.StringVar(&o.LogLevel, "log-level", "error", "CometBFT log level written into each node config")
	return cmd
}

func printManifest(w io.Writer, m *testnet.Manifest) {
	fmt.Fprintf(w, "testnet %s in %s: %d nodes (%d validators)\n", m.ChainID, m.Dir(), len(m.Nodes), len(m.Validators()))
	for i, n := range m.Nodes {
		role := "validator"
		if !n.Validator {
			role = "full node"
		}
		fmt.Fprintf(w, "  %-7s %-9s p2p %-16s rest %-24s comet-rpc %-24s %s\n", n.Name, role, n.P2P, n.RESTURL, listenOrOff(n.CometRPCURL), m.HomeOf(i))
	}
	fmt.Fprintf(w, "genesis key (TEST ONLY): %s\n", filepath.Join(m.Dir(), m.GenesisKey))
	fmt.Fprintf(w, "start each node:  aitbc node start --home %s\n", filepath.Join(m.Dir(), "nodeN"))
	fmt.Fprintf(w, "then:             aitbc node status --testnet %s\n", m.Dir())
}

func newTestnetAddNodeCmd(g *Globals) *cobra.Command {
	var dir string
	var ao testnet.AddNodeOptions
	var noPEX bool
	cmd := &cobra.Command{
		Use:   "add-node",
		Short: "Add a non-validator node to an existing testnet; started, it catches up from genesis",
		Long: `Creates the next node home in the testnet directory with fresh keys, the
network's genesis and every existing node as a persistent peer, and adds it to
testnet.json. Start it with ` + "`aitbc node start --home DIR/nodeN`" + `: it joins the running
network and catches up by block sync; its /api/v1/sync/status says catching_up
until it has.`,
		Example: `  aitbc testnet add-node --testnet ./testnet
  aitbc node start --home ./testnet/node5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := testnet.LoadManifest(dir)
			if err != nil {
				return err
			}
			ao.DisablePEX = noPEX
			i, err := testnet.AddNode(m, ao)
			if err != nil {
				return err
			}
			n := m.Nodes[i]
			return g.Print(n, func(w io.Writer) {
				fmt.Fprintf(w, "added %s (full node) p2p %s rest %s; start it with:\n  aitbc node start --home %s\n", n.Name, n.P2P, n.RESTURL, m.HomeOf(i))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "testnet", "./testnet", "testnet directory")
	f.IntVar(&ao.PortOffset, "port-offset", 0, "the --port-offset the testnet was created with")
	f.BoolVar(&ao.NoCometRPC, "no-comet-rpc", false, "do not open CometBFT's RPC port")
	f.BoolVar(&noPEX, "no-pex", false, "talk only to persistent peers")
	return cmd
}

func newTestnetBenchCmd(g *Globals) *cobra.Command {
	var o testnet.BenchOptions
	var profileDir string
	var sat saturateFlags // bench.go
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Committed transfers per second on a fresh local network of validator processes",
		Long: `Creates a temporary testnet (default four validators) with many funded
accounts, starts every validator as its own ` + "`aitbc node start`" + ` process on loopback,
pre-signs transfers, submits them over HTTP to all nodes' REST APIs (each account
to one node, so that its nonces arrive in order), and reports transactions in
committed blocks divided by the time from the first submission until node0 has
committed the last. It then checks that every node holds the same blocks.

--rtt puts a userspace TCP relay (internal/netsim) on every link between
validators, delaying each direction by half the round trip: each node's
persistent peers dial the relays, and peer exchange is off so that no node
learns a direct address. It needs no root and no netem.

--saturate finds the saturation point itself: a fresh network per step,
--step-seconds of transfers offered at --rate-start, then --rate-factor times
more each step, until a step commits less than 90% of what it offered (not
counting the last block's wait) or refuses any; it
prints offered beside committed for every step.`,
		Example: `  aitbc testnet bench --validators 4 --accounts 2000 --per-account 20
  aitbc testnet bench --block-time 300ms --batch 50 --saturate --rate-start 3000
  aitbc testnet bench --rtt 100ms --accounts 500 --per-account 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !g.JSON() {
				o.Progress = g.Stderr()
			}
			// The node processes get no AITBC_* variables: hand them the log format.
			o.NodeArgs = append(o.NodeArgs, "--log-format", g.LogFormat)
			if profileDir != "" {
				if err := os.MkdirAll(profileDir, 0o755); err != nil {
					return err
				}
				abs, err := filepath.Abs(profileDir)
				if err != nil {
					return err
				}
				o.NodeArgs = append(o.NodeArgs, "--cpuprofile", filepath.Join(abs, "node%d.pprof"))
			}
			if sat.on {
				sr, err := testnet.BenchSaturate(cmd.Context(), o, sat.options(), sat.stepSeconds)
				if errors.Is(err, saturate.ErrBadOptions) {
					return usageError{err}
				}
				if err != nil {
					return err
				}
				return g.Print(sr, func(w io.Writer) {
					printSaturation(w, sr.Result)
					fmt.Fprintf(w, "method      %s\n", sr.Method)
				})
			}
			r, err := testnet.Bench(cmd.Context(), o)
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) {
				fmt.Fprintf(w, "committed %d of %d transfers in %d blocks, %.2fs, on %d validators\n", r.Committed, r.Txs, r.Blocks, r.Elapsed.Seconds(), r.Validators)
				fmt.Fprintf(w, "throughput  %.0f committed tx/s (HTTP admission %.0f tx/s); largest block %d txs; all nodes agree: %v\n", r.TPS, r.SubmitTPS, r.MaxBlockTxs, r.Agree)
				fmt.Fprintf(w, "intervals   longest %s between blocks, after a block of %d txs (block time %s)\n", r.MaxInterval.Round(time.Millisecond), r.AfterTxs, r.BlockTime)
				fmt.Fprintf(w, "mean        %s between blocks; injected round trip per validator link %s\n", r.MeanInterval.Round(time.Millisecond), r.RTT)
				fmt.Fprintf(w, "method      %s\n", r.Method)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Validators, "validators", 4, "validator processes")
	f.IntVar(&o.Accounts, "accounts", 2000, "funded sender accounts")
	f.IntVar(&o.PerAcct, "per-account", 20, "transfers per account")
	f.DurationVar(&o.BlockTime, "block-time", time.Second, "block time")
	f.IntVar(&o.Submitters, "submitters", 32, "concurrent HTTP submitters")
	f.Float64Var(&o.Rate, "rate", 0, "offered load in transactions per second (0: as fast as the submitters can send)")
	f.IntVar(&o.Batch, "batch", 1, "transactions per HTTP request (more than 1 uses POST /api/v1/transactions/submit)")
	sat.register(f, 2000)
	f.DurationVar(&o.RTT, "rtt", 0, "round trip put on every link between validators by userspace TCP relays (persistent peers dial the relays; no peer exchange), e.g. 100ms")
	f.BoolVar(&o.GossipOnce, "gossip-once", false, "nodes send each transaction over each link once (no relaying of peers' transactions in the full mesh)")
	f.StringVar(&profileDir, "profile-dir", "", "write each node's CPU profile to DIR/node<i>.pprof (for performance work)")
	_ = f.MarkHidden("profile-dir")
	f.StringVar(&o.Dir, "keep-dir", "", "create the testnet in DIR (which must not hold one) and keep it, with each node's node.log (for performance work)")
	_ = f.MarkHidden("keep-dir")
	f.StringArrayVar(&o.NodeArgs, "node-arg", nil, "an extra argument for every `aitbc node start` (repeatable; for performance work)")
	_ = f.MarkHidden("node-arg")
	return cmd
}

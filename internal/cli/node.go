package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
)

func newNodeCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Run a chain node from its home directory; show node status"}
	cmd.AddCommand(newNodeInitCmd(g), newNodeStartCmd(g), newNodeStatusCmd(g))
	return cmd
}

func newNodeInitCmd(g *Globals) *cobra.Command {
	var (
		genesis string
		peers   []string
		c       testnet.NodeConfig
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make a home for a new full node of a running network",
		Long: `Creates --home for a node that joins an existing network as a full node (it
follows and serves the chain; it does not vote): fresh keys, the network's genesis
(copy config/genesis.json from any of its nodes) and an ` + testnet.NodeConfigFile + ` that dials
--peers. Start it with ` + "`aitbc node start --home DIR`" + `: it block-syncs from genesis, and
` + "`aitbc node status`" + ` shows it catching up until it is level with the network.`,
		Example: `  aitbc node init --home ./node5 --genesis ./testnet/node0/config/genesis.json \
      --peers 2e42946e0ba25a1561e647ef277fcff57e89e6bb@10.0.0.2:8005 \
      --p2p-listen tcp://0.0.0.0:8505 --rest-listen 127.0.0.1:8506
  aitbc node start --home ./node5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if genesis == "" {
				return usagef("--genesis is required: the network's genesis.json (any node's <home>/config/genesis.json)")
			}
			if len(peers) == 0 {
				return usagef("--peers is required: node-id@host:port of one or more nodes of the network (aitbc node status shows a node's id)")
			}
			id, err := testnet.InitJoin(testnet.JoinOptions{Home: g.Home, Genesis: genesis, Peers: peers, Config: c})
			if err != nil {
				return err
			}
			v := struct {
				Home   string   `json:"home"`
				NodeID string   `json:"node_id"`
				Peers  []string `json:"peers"`
			}{g.Home, id, peers}
			return g.Print(v, func(w io.Writer) {
				fmt.Fprintf(w, "node home %s (node id %s), %d peer(s)\nstart it with: aitbc node start --home %s\n", g.Home, id, len(peers), g.Home)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&genesis, "genesis", "", "the network's genesis.json")
	f.StringSliceVar(&peers, "peers", nil, "persistent peers, node-id@host:port, comma-separated")
	f.StringVar(&c.Moniker, "moniker", "", "node name shown to peers (default aitbc-node)")
	f.StringVar(&c.P2PListen, "p2p-listen", "", "P2P listen address (default tcp://127.0.0.1:8005)")
	f.StringVar(&c.RESTListen, "rest-listen", "", "REST API listen address (default 127.0.0.1:8006)")
	f.StringVar(&c.CometRPCListen, "comet-rpc-listen", "", "CometBFT RPC listen address, or off (default tcp://127.0.0.1:26657)")
	f.StringVar(&c.LogLevel, "log-level", "", "CometBFT log level: error, info or debug (default error)")
	return cmd
}

// nodeHome resolves --home for `node start`: a node home (config/genesis.json
// inside), or a devnet home whose chain lives in chain/.
func nodeHome(home string) (string, error) {
	if system.ChainExists(home) {
		return home, nil
	}
	if c := filepath.Join(home, "chain"); system.ChainExists(c) {
		return c, nil
	}
	return "", fmt.Errorf("no chain in %s: create a network with `aitbc testnet init --output DIR` and start a node with --home DIR/node0 (or run `aitbc devnet`)", home)
}

// nodeGCPercent is `node start`'s GOGC unless the environment sets one.
const nodeGCPercent = 400

func newNodeStartCmd(g *Globals) *cobra.Command {
	var (
		moniker, p2p, rest, cometRPC, logLevel string
		blockTime, proposeTimeout              time.Duration
		peers                                  []string
		pex, checkInvariants                   bool
		cpuProfile, faucetKey                  string
	)
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the chain node in --home, with its REST API, until interrupted",
		Long: `Runs one chain node (CometBFT consensus and P2P, the AITBC application, the
REST API) from a home directory made by ` + "`aitbc testnet init`" + `. The node's settings
are read from <home>/` + testnet.NodeConfigFile + ` (moniker, block time, P2P, REST and
CometBFT RPC listen addresses, persistent peers, peer exchange, log level); a flag
given here overrides the file for this run without changing it. Without that file
the seeds' single-node defaults apply (P2P 8005, REST 8006, CometBFT RPC 26657).

A node that is behind (new, or restarted after a crash) catches up from its peers
by block sync before it votes; GET /api/v1/sync/status says catching_up meanwhile.
Stop it with Ctrl-C or SIGTERM; a node killed outright recovers at the next start.

Unless GOGC is set in the environment, the node runs Go's garbage collector at
GOGC=400 instead of 100: under load a node allocates fast and keeps little
(about 100 MB with 40,000 transactions waiting), and the collector's default
pace cost about a tenth of its CPU.`,
		Example: `  aitbc testnet init --validators 4 --non-validators 1 --output ./testnet
  aitbc node start --home ./testnet/node0
  aitbc node start --home ./testnet/node4 --log-level info
  openssl rand -hex 32 > faucet_key && chmod 600 faucet_key
  aitbc node start --home ./testnet/node0 --faucet-key faucet_key   # POST /api/v1/faucet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := nodeHome(g.Home)
			if err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(nodeGCPercent)
			}
			c, err := testnet.LoadNodeConfig(home)
			if err != nil && !errors.Is(err, testnet.ErrNoNodeConfig) {
				return err
			}
			f := cmd.Flags()
			if f.Changed("moniker") {
				c.Moniker = moniker
			}
			if f.Changed("block-time") {
				c.BlockTime = testnet.Duration(blockTime)
			}
			if f.Changed("propose-timeout") {
				c.ProposeTimeout = testnet.Duration(proposeTimeout)
			}
			if f.Changed("p2p-listen") {
				c.P2PListen = p2p
			}
			if f.Changed("rest-listen") {
				c.RESTListen = rest
			}
			if f.Changed("comet-rpc-listen") {
				c.CometRPCListen = cometRPC
				if cometRPC == "off" {
					c.CometRPCListen = ""
				}
			}
			if f.Changed("peers") {
				c.PersistentPeers = peers
			}
			if f.Changed("pex") {
				c.PEX = pex
			}
			if f.Changed("check-invariants") {
				c.CheckInvariants = checkInvariants
			}
			if f.Changed("log-level") {
				c.LogLevel = logLevel
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			if err := c.Validate(); err != nil {
				return err
			}
			lvl := slog.LevelInfo
			if c.LogLevel == "debug" {
				lvl = slog.LevelDebug
			}
			log := g.logger(lvl).With("node", c.Moniker)
			nc := c.System(home)
			nc.RESTLimits = g.httpLimits()
			nc.Logger = log
			if faucetKey != "" {
				if nc.FaucetKey, err = system.ReadFaucetKey(faucetKey); err != nil {
					return err
				}
			}
			return system.Run(cmd.Context(), system.Config{Log: log, Node: &nc}, func(s *system.System) error {
				r := s.Node.Info()
				_ = g.Print(r, func(w io.Writer) {
					role := "full node (not a validator)"
					if r.Validator {
						role = "validator"
					}
					fmt.Fprintf(w, "node %s running: chain %s, height %d, %s\n", r.Moniker, r.ChainID, r.Height, role)
					fmt.Fprintf(w, "  home          %s\n  node id       %s\n  P2P           %s (%d persistent peers)\n  REST API      http://%s\n  CometBFT RPC  %s\n",
						home, r.NodeID, r.P2P, len(r.Peers), r.REST, listenOrOff(r.CometRPC))
				})
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&moniker, "moniker", "", "node name shown to peers")
	fl.DurationVar(&blockTime, "block-time", 0, "time between blocks (CometBFT timeout_commit)")
	fl.DurationVar(&proposeTimeout, "propose-timeout", 0, "how long a round waits for the proposer")
	fl.StringVar(&p2p, "p2p-listen", "", "P2P listen address, tcp://host:port")
	fl.StringVar(&rest, "rest-listen", "", "REST API listen address, host:port")
	fl.StringVar(&cometRPC, "comet-rpc-listen", "", `CometBFT RPC listen address, tcp://host:port, or "off"`)
	fl.StringSliceVar(&peers, "peers", nil, "persistent peers, id@host:port, comma-separated")
	fl.BoolVar(&pex, "pex", true, "peer exchange (off: talk only to persistent peers and nodes that dial in)")
	fl.StringVar(&faucetKey, "faucet-key", "", "file with a faucet key (hex of a 32-byte ed25519 seed; it holds no money): the node signs drips for POST /api/v1/faucet with it, if the chain's genesis enables the faucet")
	fl.BoolVar(&checkInvariants, "check-invariants", false, "audit the chain's books after every block and halt on a broken invariant (reads every record each block: test networks)")
	fl.StringVar(&logLevel, "log-level", "", "CometBFT log level: error, info or debug")
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the node stops (for performance work)")
	_ = fl.MarkHidden("cpuprofile")
	return withConfig(cmd, config.Node)
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func listenOrOff(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

// nodeStatus is one node's answer to `aitbc node status`.
type nodeStatus struct {
	Name         string          `json:"name"`
	URL          string          `json:"url"`
	Reachable    bool            `json:"reachable"`
	Error        string          `json:"error,omitempty"`
	NodeID       string          `json:"node_id,omitempty"`
	ChainID      string          `json:"chain_id,omitempty"`
	Sync         *rpc.SyncStatus `json:"sync,omitempty"`
	PeerMonikers []string        `json:"peer_monikers,omitempty"` // the connected peers' names
}

func newNodeStatusCmd(g *Globals) *cobra.Command {
	var set nodeSet
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Height, catching up, peers and validator role of a node (or every node of a testnet)",
		Example: `  aitbc node status
  aitbc node status --node http://127.0.0.1:8106
  aitbc node status --testnet ./testnet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := set.resolve(g)
			if err != nil {
				return err
			}
			out := make([]nodeStatus, len(nodes))
			var wg sync.WaitGroup
			for i, n := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out[i] = statusOf(cmd.Context(), n)
				}()
			}
			wg.Wait()
			var v any = out
			if len(out) == 1 {
				v = out[0]
			}
			if err := g.Print(v, func(w io.Writer) { printNodeStatus(w, out) }); err != nil {
				return err
			}
			for _, s := range out {
				if !s.Reachable {
					return fmt.Errorf("%s (%s) is not reachable", s.Name, s.URL)
				}
			}
			return nil
		},
	}
	set.bind(cmd)
	return cmd
}

func statusOf(ctx context.Context, n namedNode) nodeStatus {
	s := nodeStatus{Name: n.Name, URL: n.URL}
	c := rpc.NewClient(n.URL)
	c.HTTP.Timeout = 5 * time.Second
	h, err := c.Health(ctx)
	if err != nil {
		s.Error = oneLine(err)
		return s
	}
	sy, err := c.Sync(ctx)
	if err != nil {
		s.Error = oneLine(err)
		return s
	}
	s.Reachable, s.NodeID, s.ChainID, s.Sync = true, h.NodeID, h.ChainID, &sy
	for _, p := range sy.PeerList {
		s.PeerMonikers = append(s.PeerMonikers, p.Moniker)
	}
	if len(s.PeerMonikers) == 0 && n.cometRPC != "" {
		// A node older than the peer list in its sync status.
		s.PeerMonikers = peerMonikers(ctx, n.cometRPC)
	}
	return s
}

// peerMonikers asks CometBFT's RPC (/net_info) for the names of the
// connected peers; nil when it cannot.
func peerMonikers(ctx context.Context, base string) []string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/net_info", nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var v struct {
		Result struct {
			Peers []struct {
				NodeInfo struct {
					Moniker string `json:"moniker"`
				} `json:"node_info"`
			} `json:"peers"`
		} `json:"result"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&v) != nil {
		return nil
	}
	out := []string{}
	for _, p := range v.Result.Peers {
		out = append(out, p.NodeInfo.Moniker)
	}
	return out
}

func printNodeStatus(w io.Writer, out []nodeStatus) {
	if len(out) == 1 {
		s := out[0]
		if !s.Reachable {
			fmt.Fprintf(w, "%s: unreachable: %s\n", s.URL, s.Error)
			return
		}
		role := "no (full node)"
		if s.Sync.Validator {
			role = "yes"
		}
		fmt.Fprintf(w, "node          %s\nnode id       %s\nchain id      %s\nheight        %d (%s)\nnetwork       %d (%d blocks behind)\napp hash      %s\ncatching up   %v\npeers         %d%s\nvalidator     %s\n",
			s.URL, s.NodeID, s.ChainID, s.Sync.LatestBlockHeight, s.Sync.LatestBlockTime.Format(time.RFC3339), s.Sync.NetworkHeight, s.Sync.BlocksBehind,
			s.Sync.LatestAppHash, s.Sync.CatchingUp, s.Sync.Peers, peerList(s.PeerMonikers), role)
		return
	}
	fmt.Fprintf(w, "%-8s %-28s %-9s %-8s %-6s %-11s %-5s %-9s %s\n", "NAME", "URL", "STATUS", "HEIGHT", "BEHIND", "CATCHING-UP", "PEERS", "VALIDATOR", "APP HASH")
	for _, s := range out {
		if !s.Reachable {
			fmt.Fprintf(w, "%-8s %-28s %-9s %s\n", s.Name, s.URL, "down", s.Error)
			continue
		}
		fmt.Fprintf(w, "%-8s %-28s %-9s %-8d %-6d %-11v %-5d %-9v %s\n", s.Name, s.URL, "up", s.Sync.LatestBlockHeight, s.Sync.BlocksBehind,
			s.Sync.CatchingUp, s.Sync.Peers, s.Sync.Validator, shortHash(s.Sync.LatestAppHash))
	}
}

func peerList(m []string) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + strings.Join(m, ", ") + ")"
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

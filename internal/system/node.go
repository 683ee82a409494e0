package system

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/node"
	"github.com/aitbc/aitbc/internal/ratelimit"
	"github.com/aitbc/aitbc/internal/rpc"
)

// NodeConfig configures a chain node and its REST API.
type NodeConfig struct {
	Home           string        // an initialised chain home (InitChain, testnet init, node init)
	Moniker        string        // name shown to peers; "": aitbc-node
	BlockTime      time.Duration // CometBFT timeout_commit; 0: CometBFT's default
	ProposeTimeout time.Duration // 0: the node's default (2s)
	P2PListen      string        // tcp://host:port
	CometRPCListen string        // CometBFT's RPC, tcp://host:port; "": off
	RESTListen     string        // the node REST API, host:port; "": none
	Peers          []string      // persistent peers, id@host:port
	DisablePEX     bool          // no peer exchange (single validators, fixed topologies)
	LogLevel       string        // CometBFT's own log level: error (default), info, debug
	// CheckInvariants audits every block (the chain's invariants) and
	// halts the node on a broken one: tests and devnets.
	CheckInvariants bool
	// GossipOnce: see node.Config.GossipOnce (full meshes only).
	GossipOnce bool
	// Registry receives the node's metrics (CometBFT's and the chain's)
	// and the REST API's, served at its /metrics; nil: a new one with the
	// Go and process collectors. Each node needs its own.
	Registry *prometheus.Registry
	Logger   *slog.Logger // nil: discard; the REST API logs with service=rpc
	// RESTLimits are the REST API's server limits (zero: DefaultRESTLimits).
	RESTLimits httpx.Limits
	// FaucetKey signs the drips the REST API submits for callers of POST
	// /api/v1/faucet (devnets, testnets); nil: that route answers 501.
	FaucetKey ed25519.PrivateKey
	// FaucetLimit is that route's per-client limit (Rate and Burst 0:
	// rpc.DefaultFaucetLimit).
	FaucetLimit ratelimit.Config
}

// DefaultRESTLimits are the node REST API's limits: the defaults of every
// server, a body large enough for a batch submission (8 MiB), and 10,000
// writes a second per client address (a batch of 1,000 transactions is
// one write; transaction fees price spam beyond that, and a benchmark
// client sends about 2,000 a second to each node).
func DefaultRESTLimits() httpx.Limits {
	return httpx.Limits{MaxBody: 8 << 20, WriteRate: 10_000, WriteBurst: 20_000}
}

// Node is a running chain node.
type Node struct {
	n      *node.Node
	cfg    NodeConfig
	api    net.Addr // nil without a REST API
	client *rpc.Client
	svc    *service
}

// StartNode locks the node's home, binds its REST API, opens and starts
// the node and serves the API. Stopping it stops the API first, then the
// node, then releases the home.
func (s *System) StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if s.Node != nil {
		return nil, fmt.Errorf("system: a node already runs in this system")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger
	sv, err := s.begin("node")
	if err != nil {
		return nil, err
	}
	release, err := lockPath(filepath.Join(cfg.Home, LockFile), "node home "+cfg.Home, "is a devnet or node already running on it?")
	if err != nil {
		return nil, s.abort(sv, err)
	}
	sv.onClose(release)
	var ln net.Listener
	if cfg.RESTListen != "" {
		if ln, err = sv.listen(cfg.RESTListen, "node REST API"); err != nil {
			return nil, s.abort(sv, err)
		}
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	n, err := node.New(node.Config{
		Home: cfg.Home, Moniker: cfg.Moniker, BlockTime: cfg.BlockTime, ProposeTimeout: cfg.ProposeTimeout,
		P2PListen: cfg.P2PListen, RPCListen: cfg.CometRPCListen, Peers: cfg.Peers, LogLevel: cfg.LogLevel,
		DisablePEX: cfg.DisablePEX, CheckInvariants: cfg.CheckInvariants, FaucetKey: cfg.FaucetKey,
		Registry: reg, GossipOnce: cfg.GossipOnce,
	}, log)
	if err != nil {
		return nil, s.abort(sv, err)
	}
	sv.onClose(n.Stop)
	if err := n.Start(); err != nil {
		return nil, s.abort(sv, err)
	}
	sv.onClose(func() error { log.Info("stopping node"); return nil }) // runs before Stop
	nd := &Node{n: n, cfg: cfg, svc: sv}
	if ln != nil {
		rlog := log.With("service", "rpc")
		limits := cfg.RESTLimits
		if limits.IsZero() {
			limits = DefaultRESTLimits()
		}
		api := rpc.NewServer(n, node.HTTPError, reg, rlog)
		if cfg.FaucetLimit.Rate != 0 || cfg.FaucetLimit.Burst != 0 {
			api.SetFaucetLimit(cfg.FaucetLimit)
		}
		sv.serveHTTP(ln, api, "node REST API", rlog, limits)
		nd.api = ln.Addr()
		nd.client = rpc.NewClient(nd.URL())
	}
	s.Node = nd
	return nd, nil
}

// Chain is the embedded chain node, for tools that read its stores or
// submit to its mempool directly (benchmarks).
func (n *Node) Chain() *node.Node { return n.n }

// ChainID is the chain's id.
func (n *Node) ChainID() string { return n.n.ChainID() }

// Height is the application's committed height.
func (n *Node) Height() int64 {
	h, _ := n.n.App().Height()
	return h
}

// WaitHeight blocks until the application has committed height h.
func (n *Node) WaitHeight(ctx context.Context, h int64) error { return n.n.WaitHeight(ctx, h) }

// APIAddr is where the REST API listens (nil without one).
func (n *Node) APIAddr() net.Addr { return n.api }

// URL is the REST API's base URL ("" without one).
func (n *Node) URL() string {
	if n.api == nil {
		return ""
	}
	return "http://" + n.api.String()
}

// Client is a REST client of this node (nil without a REST API).
func (n *Node) Client() *rpc.Client { return n.client }

// NodeInfo describes a running node: what `aitbc node start` prints.
type NodeInfo struct {
	Moniker   string   `json:"moniker"`
	ChainID   string   `json:"chain_id"`
	NodeID    string   `json:"node_id"`
	Height    int64    `json:"height"`
	Validator bool     `json:"validator"`
	P2P       string   `json:"p2p_listen"`       // CometBFT P2P listen address
	REST      string   `json:"rest_listen"`      // where the REST API listens, host:port
	CometRPC  string   `json:"comet_rpc_listen"` // CometBFT RPC listen address, "" when off
	Peers     []string `json:"persistent_peers"`
}

// Info describes the node now.
func (n *Node) Info() NodeInfo {
	st := n.n.Sync()
	rest := ""
	if n.api != nil {
		rest = n.api.String()
	}
	return NodeInfo{
		Moniker: n.cfg.Moniker, ChainID: n.n.ChainID(), NodeID: n.n.NodeID(), Height: st.LatestBlockHeight,
		Validator: st.Validator, P2P: n.cfg.P2PListen, REST: rest, CometRPC: n.cfg.CometRPCListen, Peers: n.cfg.Peers,
	}
}

// GenesisAccount is an account funded in a new chain's genesis.
type GenesisAccount struct {
	Name    string // informational
	Address address.Address
	Balance coin.Amount
}

// ChainSpec describes a new single-validator chain.
type ChainSpec struct {
	ChainID  string
	Accounts []GenesisAccount
	// Modules are module genesis sections that replace the defaults
	// (e.g. {"faucet": {"enabled": false}}).
	Modules map[string]json.RawMessage
}

// ChainExists reports whether home holds an initialised chain (a genesis).
func ChainExists(home string) bool { return node.Exists(home) }

// InitChain makes home a single-validator chain home (keys, genesis with
// the default parameters and spec's accounts) unless it already holds a
// chain; it reports whether it made one.
func InitChain(home string, spec ChainSpec) (bool, error) {
	if node.Exists(home) {
		return false, nil
	}
	g := app.Genesis{Params: app.DefaultParams(), Modules: spec.Modules}
	for _, a := range spec.Accounts {
		g.Accounts = append(g.Accounts, app.GenesisAccount{Name: a.Name, Address: a.Address, Balance: a.Balance})
	}
	if _, err := node.InitSingle(home, node.GenesisSpec{ChainID: spec.ChainID, App: g}); err != nil {
		return false, err
	}
	return true, nil
}

// FaucetKey reads the faucet key of a chain home, making one when there is
// none (node.LoadOrGenFaucetKey): what a devnet's node signs drips with.
func FaucetKey(home string) (ed25519.PrivateKey, error) { return node.LoadOrGenFaucetKey(home) }

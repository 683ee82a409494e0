package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// Node is a running (or ready to run) chain node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	store *state.Store
	app   *app.App
	comet *cmtnode.Node
	gen   *types.GenesisDoc

	gossip     *verifyingReactor // nil if CometBFT's reactor could not be wrapped
	sigs       *sigCombiner      // batches concurrent single submissions' signature checks
	stopGossip context.CancelFunc

	describers map[string]module.Describer // by module name, for transaction bodies
	faucet     *faucetSigner               // nil without Config.FaucetKey
}

// New opens the node's state and builds the CometBFT node, which replays
// any block the app has not committed (the ABCI handshake). The home must
// have been initialised (InitSingle, or a testnet generator).
func New(c Config, log *slog.Logger) (*Node, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !Exists(c.Home) {
		return nil, fmt.Errorf("node: no genesis in %s: initialise the home first", c.Home)
	}
	cc := c.comet()
	if err := cc.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("node: config: %w", err)
	}
	gen, err := types.GenesisDocFromFile(cc.GenesisFile())
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := os.MkdirAll(cc.DBDir(), 0o700); err != nil {
		return nil, err
	}
	store, err := state.Open(appDBDir(c.Home))
	if err != nil {
		return nil, err
	}
	// Proposals hold no more than this node executed in one block interval
	// recently (app/work.go); the block's bytes are capped at genesis.
	opts := []app.Option{app.WithWorkBudget(cc.Consensus.TimeoutCommit, time.Now)}
	if c.CheckInvariants {
		opts = append(opts, app.WithInvariants())
	}
	var am *appMetrics
	if c.Registry != nil {
		am = newAppMetrics()
		opts = append(opts, app.WithBlockObserver(am))
	}
	a, err := app.New(store, gen.ChainID, log.With("module", "app"), opts...)
	if err != nil {
		store.Close()
		return nil, err
	}
	metricsProvider := cmtnode.DefaultMetricsProvider(cc.Instrumentation) // off: no-op metrics
	if am != nil {
		am.app = a
		if err := am.register(c.Registry); err != nil {
			store.Close()
			return nil, err
		}
		if metricsProvider, err = cometMetrics(c.Registry, gen.ChainID); err != nil {
			store.Close()
			return nil, err
		}
	}
	nodeKey, err := p2p.LoadOrGenNodeKey(cc.NodeKeyFile())
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("node: node key: %w", err)
	}
	pv := privval.LoadOrGenFilePV(cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile())
	cn, err := cmtnode.NewNode(cc, pv, nodeKey,
		// One lock per connection lets CheckTx run beside FinalizeBlock, and
		// CheckTx calls run beside each other (abciclient.go); the app
		// locks itself.
		concurrentCheckTxCreator{a},
		func() (*types.GenesisDoc, error) { return gen, nil },
		cfg.DefaultDBProvider,
		metricsProvider,
		newCometLogger(log, c.LogLevel),
	)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	n := &Node{cfg: c, log: log, store: store, app: a, comet: cn, gen: gen, describers: describersOf(a.Modules()), faucet: newFaucetSigner(c.FaucetKey)}
	n.gossip = installVerifyingReactor(cn.Switch(), a, c.GossipOnce)
	n.sigs = newSigCombiner(func(raws [][]byte) []error { return preVerifyParallel(a, raws) })
	return n, nil
}

// Start starts consensus, P2P and (if configured) CometBFT's RPC.
func (n *Node) Start() error {
	if n.gossip != nil {
		ctx, cancel := context.WithCancel(context.Background())
		n.stopGossip = cancel
		go n.gossip.run(ctx)
	}
	if err := n.comet.Start(); err != nil {
		n.halt()
		n.releaseUnstarted()
		return fmt.Errorf("node: start: %w", err)
	}
	h, _ := n.app.Height()
	n.log.Info("node started", "chain_id", n.gen.ChainID, "height", h, "node_id", n.comet.NodeInfo().ID(), "p2p", n.cfg.comet().P2P.ListenAddress)
	return nil
}

// Stop stops the node and closes its state. Safe to call once.
func (n *Node) Stop() error {
	var errs []error
	if n.comet.IsRunning() {
		if err := n.comet.Stop(); err != nil {
			errs = append(errs, err)
		}
		n.comet.Wait()
	}
	n.halt()
	// CometBFT's stores are closed by OnStop; close the app's.
	if err := n.store.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// releaseUnstarted frees what CometBFT's NewNode opened (its block, state
// and evidence stores) and what a failed Start had bound (its RPC listener
// when the P2P port was taken), so that the same home can be opened again
// in this process: CometBFT's Stop does nothing for a node that never
// started, and its OnStop, called directly, does exactly this release. Its
// complaints about services that never ran are silenced.
func (n *Node) releaseUnstarted() {
	nop := cmtlog.NewNopLogger()
	n.comet.SetLogger(nop)
	n.comet.Switch().SetLogger(nop)
	n.comet.OnStop()
}

// halt stops the gossip worker, if it runs.
func (n *Node) halt() {
	if n.stopGossip != nil {
		n.stopGossip()
		<-n.gossip.done
		n.stopGossip = nil
	}
}

// Run starts the node and stops it when ctx ends.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(); err != nil {
		n.store.Close()
		return err
	}
	<-ctx.Done()
	return n.Stop()
}

// App returns the chain application.
func (n *Node) App() *app.App { return n.app }

// ChainID returns the chain id.
func (n *Node) ChainID() string { return n.gen.ChainID }

// NodeID returns the P2P node id.
func (n *Node) NodeID() string { return string(n.comet.NodeInfo().ID()) }

// ValidatorAddress returns this node's consensus address (hex).
func (n *Node) ValidatorAddress() string {
	pub, err := n.comet.PrivValidator().GetPubKey()
	if err != nil {
		return ""
	}
	return hex.EncodeToString(pub.Address())
}

// Comet exposes the embedded CometBFT node, for tests and tools.
func (n *Node) Comet() *cmtnode.Node { return n.comet }

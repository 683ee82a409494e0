// Package node runs an AITBC chain node: a CometBFT node embedded in the
// process, driving the AITBC application (internal/chain/app) through a
// local ABCI connection, plus the queries the REST API serves. It also
// lays out a node's home directory: keys, genesis and data.
//
// Imported by the devnet and node commands and by integration tests.
package node

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/chain/app"
)

// Config configures a node. Home holds config/ (keys, genesis) and data/.
type Config struct {
	Home      string        // chain home directory
	Moniker   string        // node name shown to peers
	BlockTime time.Duration // time between blocks (CometBFT timeout_commit)
	P2PListen string        // e.g. tcp://127.0.0.1:8005; "" disables nothing, CometBFT needs one
	RPCListen string        // CometBFT RPC, e.g. tcp://127.0.0.1:26657; "" disables it
	Peers     []string      // persistent peers id@host:port
	LogLevel  string        // "error" (default), "info" or "debug" for CometBFT's own logs

	// DisablePEX turns peer exchange off: the node dials only Peers and
	// never learns other addresses (fixed topologies, partition tests).
	DisablePEX bool
	// GossipOnce stops relaying transactions received from a peer to
	// persistent peers, so that in a full mesh of persistent peers (what
	// `aitbc testnet init` writes) each transaction crosses each link
	// once, from the node it was submitted to. Leave it off in other
	// topologies (sentry nodes, partial meshes): there a validator may
	// only hear of a transaction through a relay.
	GossipOnce bool
	// ProposeTimeout is how long a round waits for a proposal; 0 is 2s.
	ProposeTimeout time.Duration
	// CheckInvariants runs every module's invariants after each block and
	// halts the node when one breaks (tests and devnets; it reads every
	// record each block).
	CheckInvariants bool
	// FaucetKey, when set, signs the drips the node submits for HTTP
	// callers (POST /api/v1/faucet): devnets and testnets. It needs no
	// balance; nil: the node answers that route 501.
	FaucetKey ed25519.PrivateKey
	// Registry, when set, receives the node's metrics: CometBFT's
	// (namespace cometbft: height, block interval, mempool, peers, rounds)
	// and the application's (aitbc_chain_*). Each node needs its own; nil:
	// no metrics.
	Registry prometheus.Registerer
}

// Paths of a node home.
func genesisFile(home string) string { return filepath.Join(home, "config", "genesis.json") }
func appDBDir(home string) string    { return filepath.Join(home, "data", "aitbc-app.db") }

// GenesisFile returns the genesis path under home.
func GenesisFile(home string) string { return genesisFile(home) }

// Exists reports whether home already holds a genesis.
func Exists(home string) bool {
	_, err := os.Stat(genesisFile(home))
	return err == nil
}

func (c Config) comet() *cfg.Config {
	cc := cfg.DefaultConfig()
	cc.SetRoot(c.Home)
	cc.Moniker = c.Moniker
	if cc.Moniker == "" {
		cc.Moniker = "aitbc-node"
	}
	if c.BlockTime > 0 {
		cc.Consensus.TimeoutCommit = c.BlockTime
	}
	// A proof-of-authority set of known validators: a round that waits for
	// a dead proposer costs TimeoutPropose, so keep it short.
	cc.Consensus.TimeoutPropose = 2 * time.Second
	if c.ProposeTimeout > 0 {
		cc.Consensus.TimeoutPropose = c.ProposeTimeout
	}
	cc.Consensus.CreateEmptyBlocks = true
	cc.P2P.ListenAddress = c.P2PListen
	if cc.P2P.ListenAddress == "" {
		cc.P2P.ListenAddress = "tcp://127.0.0.1:8005"
	}
	cc.P2P.AddrBookStrict = false
	cc.P2P.AllowDuplicateIP = true
	cc.P2P.PersistentPeers = joinComma(c.Peers)
	cc.P2P.PexReactor = !c.DisablePEX
	// CometBFT limits each peer connection to 5 MB/s each way by default;
	// a validator must receive a full block (MaxBlockBytes) and its share of
	// gossiped transactions well within a block interval: a full block is
	// 0.25 s of a connection at 64 MB/s.
	cc.P2P.SendRate = 64 << 20
	// A connection flushes what it has queued at most this often (CometBFT:
	// 100 ms, made for gossip on the open internet). Every consensus hop
	// (proposal, votes, a catch-up block and its commit) waits for a flush,
	// so at 100 ms a node that left block sync a few blocks behind caught up
	// by gossip at about 3 blocks a second, barely faster than a 300-400 ms
	// chain makes them, and trailed for up to minutes (TestNodeInitJoins-
	// ARunningNetwork failed so under load); at 10 ms it catches up at about
	// 10 a second. Busy connections fill their buffers and flush anyway.
	cc.P2P.FlushThrottleTimeout = 10 * time.Millisecond
	cc.P2P.RecvRate = 64 << 20
	cc.RPC.ListenAddress = c.RPCListen
	// CometBFT's own RPC (off or on loopback; AITBC's REST API is the
	// public one) would take 900 connections and 100 event subscribers by
	// default: descriptors the process's budget (internal/system/limits.go)
	// keeps for CometBFT's WAL, stores and peers. Operators' tools need few.
	cc.RPC.MaxOpenConnections = 256
	cc.RPC.MaxSubscriptionClients = 16
	// Big bursts of transfers need a deep mempool; CometBFT's default
	// (5,000) rejects them.
	cc.Mempool.Size = 100_000
	cc.Mempool.MaxTxsBytes = 1 << 30
	cc.Mempool.CacheSize = 200_000
	// The app indexes what the explorer needs in its own store.
	cc.TxIndex.Indexer = "null"
	// CometBFT would keep every block's FinalizeBlock response (one result
	// per transaction) for its /block_results RPC, which AITBC does not
	// use: its REST API reads results from the app's index. Keep the last.
	cc.Storage.DiscardABCIResponses = true
	// CometBFT's metrics are built into the node's own registry (see
	// cometMetrics) and served by the REST API's /metrics; CometBFT's own
	// server would use the process-wide registry on another port.
	cc.Instrumentation.Prometheus = false
	return cc
}

func joinComma(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += ","
		}
		out += v
	}
	return out
}

// GenesisSpec describes a new chain.
type GenesisSpec struct {
	ChainID     string
	GenesisTime time.Time
	App         app.Genesis
}

// InitSingle creates a one-validator home (keys, genesis) if home has no
// genesis yet, and returns the validator's consensus address (hex). The
// validator receives the fee rewards unless spec.App says otherwise.
func InitSingle(home string, spec GenesisSpec) (string, error) {
	if Exists(home) {
		return "", errors.New("node: home already initialised")
	}
	cc := Config{Home: home}.comet()
	for _, d := range []string{filepath.Join(home, "config"), filepath.Join(home, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("node: %w", err)
		}
	}
	pv := privval.LoadOrGenFilePV(cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile())
	if _, err := p2p.LoadOrGenNodeKey(cc.NodeKeyFile()); err != nil {
		return "", fmt.Errorf("node: node key: %w", err)
	}
	pub, err := pv.GetPubKey()
	if err != nil {
		return "", err
	}
	val := types.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: "validator-0"}
	if err := WriteGenesis(home, spec, []types.GenesisValidator{val}); err != nil {
		return "", err
	}
	return pub.Address().String(), nil
}

// MaxBlockBytes caps a block (consensus parameter, fixed at genesis):
// about 106,000 transfers, so that the seeds' 2 s interval is not what
// limits throughput: a block must hold the transfers offered in one
// interval, and at 2 MB (13,250 transfers) 2 s blocks capped the chain at
// about 6,600 transfers/s whatever the machine. 16 MB is 50,000
// transfers/s (the target on two cores) at 2 s. What a proposer actually
// puts in a block is also capped by work (app.WithWorkBudget: what it
// executed in one block interval recently), because a block filled to the
// bytes cap after a burst must be received and executed by every validator
// before the next can be made (docs/PERFORMANCE.md, "Blocks sized by work").
const MaxBlockBytes = 16 << 20

// WriteGenesis writes the CometBFT genesis document for spec and validators.
func WriteGenesis(home string, spec GenesisSpec, vals []types.GenesisValidator) error {
	if err := spec.App.Params.Validate(); err != nil {
		return err
	}
	appState, err := json.MarshalIndent(spec.App, "", "  ")
	if err != nil {
		return err
	}
	t := spec.GenesisTime
	if t.IsZero() {
		t = time.Now().UTC()
	}
	params := types.DefaultConsensusParams()
	params.Block.MaxBytes = MaxBlockBytes
	doc := &types.GenesisDoc{
		ChainID:         spec.ChainID,
		GenesisTime:     t,
		ConsensusParams: params,
		Validators:      vals,
		AppState:        appState,
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return fmt.Errorf("node: genesis: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(genesisFile(home)), 0o700); err != nil {
		return err
	}
	return doc.SaveAs(genesisFile(home))
}

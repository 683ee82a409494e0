package testnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/system"
)

// NodeConfigFile is the name of a node's AITBC configuration inside its
// home directory. `aitbc node start --home DIR` reads DIR/aitbc-node.json.
const NodeConfigFile = "aitbc-node.json"

// Duration is a time.Duration written in JSON as a Go duration string
// ("500ms", "2s").
type Duration time.Duration

// MarshalJSON writes d as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "1.5s" (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("testnet: duration: %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("testnet: duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// NodeConfig is a node's persisted configuration, <home>/aitbc-node.json.
// Keys, genesis and data live beside it in the same home (config/, data/).
type NodeConfig struct {
	Moniker        string   `json:"moniker"`
	BlockTime      Duration `json:"block_time"`                // CometBFT timeout_commit
	ProposeTimeout Duration `json:"propose_timeout,omitempty"` // 0: the node's default (2s)
	P2PListen      string   `json:"p2p_listen"`                // tcp://127.0.0.1:8005
	RESTListen     string   `json:"rest_listen"`               // node REST API, 127.0.0.1:8006
	CometRPCListen string   `json:"comet_rpc_listen"`          // tcp://127.0.0.1:26657; "" turns it off
	// PersistentPeers are dialled at start and redialled when lost:
	// "node-id@127.0.0.1:8105".
	PersistentPeers []string `json:"persistent_peers"`
	// PEX turns peer exchange on (default). Off, the node talks only to
	// its persistent peers and to nodes that dial it.
	PEX      bool   `json:"pex"`
	LogLevel string `json:"log_level"` // CometBFT's own log level: error, info, debug
	// CheckInvariants audits the chain after every block and halts the
	// node on a broken invariant (test networks).
	CheckInvariants bool `json:"check_invariants,omitempty"`
	// GossipOnce: transactions received from a peer are not relayed to
	// persistent peers (node.Config.GossipOnce); only for a full mesh.
	GossipOnce bool `json:"gossip_once,omitempty"`
}

// DefaultNodeConfig is a single node on the seeds' ports.
func DefaultNodeConfig() NodeConfig {
	return NodeConfig{
		Moniker:         "aitbc-node",
		BlockTime:       Duration(2 * time.Second),
		P2PListen:       "tcp://127.0.0.1:8005",
		RESTListen:      "127.0.0.1:8006",
		CometRPCListen:  "tcp://127.0.0.1:26657",
		PersistentPeers: []string{},
		PEX:             true,
		LogLevel:        "error",
	}
}

// NodeConfigPath returns home/aitbc-node.json.
func NodeConfigPath(home string) string { return filepath.Join(home, NodeConfigFile) }

// ErrNoNodeConfig is returned by LoadNodeConfig when home has no
// aitbc-node.json.
var ErrNoNodeConfig = errors.New("testnet: no " + NodeConfigFile)

// LoadNodeConfig reads home/aitbc-node.json over the defaults: a field the
// file leaves out keeps its default. Unknown fields are an error, so that
// a misspelt key does not go unnoticed.
func LoadNodeConfig(home string) (NodeConfig, error) {
	c := DefaultNodeConfig()
	f, err := os.Open(NodeConfigPath(home))
	if errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("%w in %s", ErrNoNodeConfig, home)
	}
	if err != nil {
		return c, fmt.Errorf("testnet: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("testnet: %s: %w", NodeConfigPath(home), err)
	}
	return c, c.Validate()
}

// Save writes c to home/aitbc-node.json.
func (c NodeConfig) Save(home string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(NodeConfigPath(home), append(b, '\n'), 0o600)
}

// Validate checks the addresses, peers and log level.
func (c NodeConfig) Validate() error {
	if c.BlockTime < 0 || c.ProposeTimeout < 0 {
		return errors.New("testnet: negative block_time or propose_timeout")
	}
	if !strings.HasPrefix(c.P2PListen, "tcp://") {
		return fmt.Errorf("testnet: p2p_listen %q: want tcp://host:port", c.P2PListen)
	}
	if c.CometRPCListen != "" && !strings.HasPrefix(c.CometRPCListen, "tcp://") && !strings.HasPrefix(c.CometRPCListen, "unix://") {
		return fmt.Errorf("testnet: comet_rpc_listen %q: want tcp://host:port or empty", c.CometRPCListen)
	}
	if c.RESTListen == "" || strings.Contains(c.RESTListen, "://") {
		return fmt.Errorf("testnet: rest_listen %q: want host:port", c.RESTListen)
	}
	for _, p := range c.PersistentPeers {
		id, addr, ok := strings.Cut(p, "@")
		if !ok || len(id) != 40 || addr == "" {
			return fmt.Errorf("testnet: persistent peer %q: want <40 hex node id>@host:port", p)
		}
	}
	switch c.LogLevel {
	case "", "error", "info", "debug":
	default:
		return fmt.Errorf("testnet: log_level %q: want error, info or debug", c.LogLevel)
	}
	return nil
}

// System returns the configuration that runs this node, with its REST
// API, in home (system.StartNode; `aitbc node start`).
func (c NodeConfig) System(home string) system.NodeConfig {
	return system.NodeConfig{
		Home:            home,
		Moniker:         c.Moniker,
		BlockTime:       time.Duration(c.BlockTime),
		ProposeTimeout:  time.Duration(c.ProposeTimeout),
		P2PListen:       c.P2PListen,
		CometRPCListen:  c.CometRPCListen,
		RESTListen:      c.RESTListen,
		Peers:           append([]string(nil), c.PersistentPeers...),
		LogLevel:        c.LogLevel,
		DisablePEX:      !c.PEX,
		CheckInvariants: c.CheckInvariants,
		GossipOnce:      c.GossipOnce,
	}
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("testnet: %w", err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("testnet: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	return nil
}

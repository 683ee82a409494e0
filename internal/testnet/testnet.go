// Package testnet lays out and runs multi-node AITBC networks on one
// machine: `aitbc testnet init` generates every node's keys, one genesis
// with all validators, and a per-node configuration file
// (<home>/aitbc-node.json) with distinct loopback ports and persistent
// peers (`aitbc node start --home` runs one node from such a home, with
// its REST API, through internal/system); a manifest (testnet.json) lists
// every node's REST URL, so that the CLI can ask all of them; and a
// test-only genesis key controls the funded genesis-ops account. It
// launches node processes (Cluster, Proc) but runs no node itself.
//
// Imported by the CLI (testnet, node, cross-node commands), by the fault
// tests in test/fault and by the localnet benchmark.
package testnet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	"github.com/cosmos/go-bip39"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/node"
)

// File names inside a testnet directory.
const (
	ManifestFile   = "testnet.json"
	GenesisKeyFile = "genesis-key.json"
)

// Default port scheme: node i listens on
//
//	P2P           8005  + offset + 100·i
//	REST API      8006  + offset + 100·i
//	CometBFT RPC  26657 + offset + 100·i
//
// so node0 has the seeds' ports (8005, 8006, 26657), node1 8105, 8106,
// 26757, and so on. PortOffset shifts the whole scheme (for example when
// a devnet already holds 8005/8006).
const (
	DefaultP2PPort      = 8005
	DefaultRESTPort     = 8006
	DefaultCometRPCPort = 26657
	PortStep            = 100
)

// GenesisWallet is the name of the account funded at genesis, as in the
// seeds' scripts (`--from genesis-ops`).
const GenesisWallet = "genesis-ops"

// DefaultGenesisBalance is what genesis-ops holds: one billion AITBC.
const DefaultGenesisBalance = 1_000_000_000 * coin.Unit

// Options describe a new testnet.
type Options struct {
	Dir            string        // output directory (required); node homes are Dir/node0, Dir/node1, ...
	ChainID        string        // default aitbc-testnet
	Validators     int           // default 4
	NonValidators  int           // full nodes that follow the chain without voting
	Host           string        // listen and dial host, default 127.0.0.1
	PortOffset     int           // added to every default port
	FreePorts      bool          // ask the OS for free ports instead of the scheme (tests)
	NoCometRPC     bool          // do not open CometBFT's own RPC port
	BlockTime      time.Duration // default 1s
	ProposeTimeout time.Duration // 0: the node's default (2s)
	DisablePEX     bool          // nodes dial only their persistent peers
	LogLevel       string        // CometBFT log level written into each node config
	// CheckInvariants makes every node audit each block (fault tests).
	CheckInvariants bool
	// GossipOnce makes every node send each transaction over each link
	// once (node.Config.GossipOnce): safe here, the nodes form a full mesh
	// of persistent peers.
	GossipOnce     bool
	GenesisTime    time.Time   // default now
	GenesisBalance coin.Amount // genesis-ops balance, default DefaultGenesisBalance
	// Accounts are funded at genesis besides genesis-ops (load generators,
	// benchmarks).
	Accounts []app.GenesisAccount
	Params   *app.Params // default app.DefaultParams()
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("testnet: output directory required")
	}
	if o.ChainID == "" {
		o.ChainID = "aitbc-testnet"
	}
	if o.Validators == 0 {
		o.Validators = 4
	}
	if o.Validators < 1 || o.NonValidators < 0 || o.Validators+o.NonValidators > 64 {
		return fmt.Errorf("testnet: %d validators and %d non-validators: want 1-64 nodes with at least one validator", o.Validators, o.NonValidators)
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = "error"
	}
	if o.GenesisTime.IsZero() {
		o.GenesisTime = time.Now().UTC().Truncate(time.Millisecond)
	}
	if o.GenesisBalance == 0 {
		o.GenesisBalance = DefaultGenesisBalance
	}
	return nil
}

// Manifest is Dir/testnet.json: what the CLI needs to reach every node.
type Manifest struct {
	ChainID     string     `json:"chain_id"`
	GenesisTime time.Time  `json:"genesis_time"`
	GenesisKey  string     `json:"genesis_key_file"` // relative to the testnet directory
	Nodes       []NodeInfo `json:"nodes"`

	dir string
}

// NodeInfo is one node of a Manifest.
type NodeInfo struct {
	Name             string `json:"name"` // node0, node1, ...
	Home             string `json:"home"` // relative to the testnet directory
	Validator        bool   `json:"validator"`
	NodeID           string `json:"node_id"`
	ConsensusAddress string `json:"consensus_address,omitempty"` // hex, validators only
	P2P              string `json:"p2p"`                         // host:port
	RESTURL          string `json:"rest_url"`                    // http://host:port
	CometRPCURL      string `json:"comet_rpc_url,omitempty"`     // http://host:port
}

// Peer returns the node's persistent-peer string, id@host:port.
func (n NodeInfo) Peer() string { return n.NodeID + "@" + n.P2P }

// Dir is the testnet directory the manifest was loaded from or written to.
func (m *Manifest) Dir() string { return m.dir }

// HomeOf returns the absolute home directory of node i.
func (m *Manifest) HomeOf(i int) string { return filepath.Join(m.dir, m.Nodes[i].Home) }

// RESTURLs lists every node's REST base URL, in node order.
func (m *Manifest) RESTURLs() []string {
	out := make([]string, len(m.Nodes))
	for i, n := range m.Nodes {
		out[i] = n.RESTURL
	}
	return out
}

// Validators returns the indexes of the validator nodes.
func (m *Manifest) Validators() []int {
	var out []int
	for i, n := range m.Nodes {
		if n.Validator {
			out = append(out, i)
		}
	}
	return out
}

// LoadManifest reads dir/testnet.json.
func LoadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("testnet: %w (create one with `aitbc testnet init --output %s`)", err, dir)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("testnet: %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	m.dir = dir
	return &m, nil
}

// Save writes the manifest to its directory.
func (m *Manifest) Save() error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(m.dir, ManifestFile), append(b, '\n'), 0o644)
}

// GenesisKey is Dir/genesis-key.json: the recovery phrase of the account
// funded at genesis. It exists so that scripts and tests can spend from
// genesis-ops on a throwaway network; it is a secret in plain text.
type GenesisKey struct {
	Warning  string          `json:"warning"`
	Name     string          `json:"name"`
	Address  address.Address `json:"address"`
	Mnemonic string          `json:"mnemonic"` // BIP-39, derived as the keystore does
	Balance  coin.Amount     `json:"balance"`
}

// PrivateKey derives the key of the genesis account.
func (k GenesisKey) PrivateKey() (ed25519.PrivateKey, error) {
	return keystore.KeyFromMnemonic(k.Mnemonic)
}

// LoadGenesisKey reads the genesis key of the testnet in dir.
func LoadGenesisKey(dir string) (GenesisKey, error) {
	var k GenesisKey
	b, err := os.ReadFile(filepath.Join(dir, GenesisKeyFile))
	if err != nil {
		return k, fmt.Errorf("testnet: %w", err)
	}
	if err := json.Unmarshal(b, &k); err != nil {
		return k, fmt.Errorf("testnet: %s: %w", GenesisKeyFile, err)
	}
	return k, nil
}

const genesisKeyWarning = "TEST ONLY: this recovery phrase controls the genesis-ops account of this throwaway testnet. " +
	"Never fund a key written to disk in plain text on a network that matters."

// ports is one node's listening ports.
type ports struct{ p2p, rest, cometRPC int }

func (o *Options) portsFor(i int) (ports, error) {
	if !o.FreePorts {
		off := o.PortOffset + PortStep*i
		p := ports{DefaultP2PPort + off, DefaultRESTPort + off, DefaultCometRPCPort + off}
		if p.p2p < 1 || p.cometRPC > 65535 {
			return p, fmt.Errorf("testnet: node %d: ports out of range with offset %d", i, o.PortOffset)
		}
		return p, nil
	}
	var p ports
	for _, dst := range []*int{&p.p2p, &p.rest, &p.cometRPC} {
		v, err := FreePort(o.Host)
		if err != nil {
			return p, err
		}
		*dst = v
	}
	return p, nil
}

// Ports for processes started later are drawn from below Linux's default
// ephemeral range (32768–60999). A port the OS hands out for ":0" is free
// only until the listener closes; the kernel can then give it to one of
// the many outgoing connections a test makes before the child process binds
// it ("address already in use"). Outgoing connections never take ports
// below the ephemeral range.
const (
	freePortMin = 20000
	freePortMax = 32767
)

// handedOut holds every port FreePort returned in this process. A port
// stays free from FreePort's check until its user binds it, which for a
// child node is seconds later; parallel tests in one process must not be
// handed the same port in that window. It is process-wide because the
// ports are.
var handedOut sync.Map // int → struct{}

// FreePort returns a TCP port on host that is free now, chosen at random
// below the ephemeral range (see freePortMin), and never one it returned
// before in this process.
func FreePort(host string) (int, error) {
	for range 200 {
		p := freePortMin + mrand.IntN(freePortMax-freePortMin+1)
		if _, taken := handedOut.LoadOrStore(p, struct{}{}); taken {
			continue
		}
		if !reservePort(p) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("testnet: free port: no free port in %d-%d on %s", freePortMin, freePortMax, host)
}

// portHold is how long a port FreePort handed out stays reserved against
// other processes: long enough for the test that took it to bind it and
// run, short enough that the range never runs out.
const portHold = 15 * time.Minute

// reservePort claims p across processes: test packages run in parallel,
// each handing out ports from the same range, and two of them drawing the
// same port seconds before either binds it made one's node or daemon
// fail to start (or talk to the other's). A marker file per port in the
// temporary directory, created exclusively, is the claim; one older than
// portHold is stale and taken over (removed, then created exclusively
// again, so only one process wins it). Without a usable directory the
// claim is granted: the listen check still applies.
func reservePort(p int) bool {
	return reservePortIn(filepath.Join(os.TempDir(), "aitbc-test-ports"), p)
}

func reservePortIn(dir string, p int) bool {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	name := filepath.Join(dir, strconv.Itoa(p))
	for range 2 {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			f.Close()
			return true
		}
		if !errors.Is(err, fs.ErrExist) {
			return true
		}
		st, err := os.Stat(name)
		if err != nil || time.Since(st.ModTime()) < portHold {
			return false
		}
		_ = os.Remove(name) // stale: one of the processes racing here creates it anew
	}
	return false
}

// cometPaths returns CometBFT's file layout under home.
func cometPaths(home string) *cfg.Config {
	c := cfg.DefaultConfig()
	c.SetRoot(home)
	return c
}

// genKeys creates home's directories, a fresh validator key and node key.
func genKeys(home string) (nodeID string, pub crypto.PubKey, err error) {
	cc := cometPaths(home)
	for _, d := range []string{filepath.Join(home, "config"), filepath.Join(home, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", nil, fmt.Errorf("testnet: %w", err)
		}
	}
	pv := privval.GenFilePV(cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile())
	pv.Save()
	nk, err := p2p.LoadOrGenNodeKey(cc.NodeKeyFile())
	if err != nil {
		return "", nil, fmt.Errorf("testnet: node key: %w", err)
	}
	pk, err := pv.GetPubKey()
	if err != nil {
		return "", nil, fmt.Errorf("testnet: validator key: %w", err)
	}
	return string(nk.ID()), pk, nil
}

// Init generates a testnet in o.Dir: one home per node with its keys,
// the shared genesis (every validator, genesis-ops and o.Accounts funded),
// an aitbc-node.json per node whose persistent peers are all the other
// nodes, the manifest and the test-only genesis key. It refuses a
// directory that already holds a testnet.
func Init(o Options) (*Manifest, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(o.Dir, ManifestFile)); err == nil {
		return nil, fmt.Errorf("testnet: %s already holds a testnet (%s); remove it or choose another --output", o.Dir, ManifestFile)
	}
	total := o.Validators + o.NonValidators
	for i := 0; i < total; i++ {
		if _, err := os.Stat(filepath.Join(o.Dir, nodeName(i))); err == nil {
			return nil, fmt.Errorf("testnet: %s already exists", filepath.Join(o.Dir, nodeName(i)))
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	m := &Manifest{ChainID: o.ChainID, GenesisTime: o.GenesisTime, GenesisKey: GenesisKeyFile, dir: o.Dir}

	// Keys and addresses first: every config lists every peer.
	var vals []types.GenesisValidator
	var portList []ports
	for i := 0; i < total; i++ {
		home := filepath.Join(o.Dir, nodeName(i))
		id, pub, err := genKeys(home)
		if err != nil {
			return nil, err
		}
		p, err := o.portsFor(i)
		if err != nil {
			return nil, err
		}
		portList = append(portList, p)
		ni := NodeInfo{
			Name: nodeName(i), Home: nodeName(i), Validator: i < o.Validators, NodeID: id,
			P2P:     net.JoinHostPort(o.Host, strconv.Itoa(p.p2p)),
			RESTURL: "http://" + net.JoinHostPort(o.Host, strconv.Itoa(p.rest)),
		}
		if !o.NoCometRPC {
			ni.CometRPCURL = "http://" + net.JoinHostPort(o.Host, strconv.Itoa(p.cometRPC))
		}
		if ni.Validator {
			ni.ConsensusAddress = pub.Address().String()
			vals = append(vals, types.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: ni.Name})
		}
		m.Nodes = append(m.Nodes, ni)
	}

	gk, err := newGenesisKey(o.GenesisBalance)
	if err != nil {
		return nil, err
	}
	params := app.DefaultParams()
	if o.Params != nil {
		params = *o.Params
	}
	g := app.Genesis{Params: params, Accounts: append([]app.GenesisAccount{{Name: GenesisWallet, Address: gk.Address, Balance: gk.Balance}}, o.Accounts...)}
	spec := node.GenesisSpec{ChainID: o.ChainID, GenesisTime: o.GenesisTime, App: g}
	// One genesis document, byte for byte the same in every home.
	if err := node.WriteGenesis(m.HomeOf(0), spec, vals); err != nil {
		return nil, err
	}
	genesis, err := os.ReadFile(node.GenesisFile(m.HomeOf(0)))
	if err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	for i := 1; i < total; i++ {
		if err := writeFileAtomic(node.GenesisFile(m.HomeOf(i)), genesis, 0o600); err != nil {
			return nil, err
		}
	}

	for i := range m.Nodes {
		nc := o.nodeConfig(m, i, portList[i])
		if err := nc.Save(m.HomeOf(i)); err != nil {
			return nil, err
		}
	}
	b, err := json.MarshalIndent(gk, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(o.Dir, GenesisKeyFile), append(b, '\n'), 0o600); err != nil {
		return nil, err
	}
	if err := m.Save(); err != nil {
		return nil, err
	}
	return m, nil
}

// nodeConfig is node i's configuration: its ports and every other node of
// m as a persistent peer.
func (o *Options) nodeConfig(m *Manifest, i int, p ports) NodeConfig {
	nc := DefaultNodeConfig()
	nc.Moniker = m.Nodes[i].Name
	nc.BlockTime = Duration(o.BlockTime)
	nc.ProposeTimeout = Duration(o.ProposeTimeout)
	nc.P2PListen = "tcp://" + net.JoinHostPort(o.Host, strconv.Itoa(p.p2p))
	nc.RESTListen = net.JoinHostPort(o.Host, strconv.Itoa(p.rest))
	nc.CometRPCListen = ""
	if !o.NoCometRPC {
		nc.CometRPCListen = "tcp://" + net.JoinHostPort(o.Host, strconv.Itoa(p.cometRPC))
	}
	nc.PEX = !o.DisablePEX
	nc.LogLevel = o.LogLevel
	nc.CheckInvariants = o.CheckInvariants
	nc.GossipOnce = o.GossipOnce
	nc.PersistentPeers = []string{}
	for j, other := range m.Nodes {
		if j != i {
			nc.PersistentPeers = append(nc.PersistentPeers, other.Peer())
		}
	}
	return nc
}

// AddNodeOptions describe a node added to an existing testnet.
type AddNodeOptions struct {
	FreePorts  bool // ask the OS for ports instead of the scheme
	PortOffset int  // the offset the testnet was created with
	NoCometRPC bool
	DisablePEX bool
	BlockTime  time.Duration // default: node0's
	LogLevel   string
}

// AddNode creates a new non-validator node in the testnet of m: fresh
// keys, the testnet's genesis, every existing node as a persistent peer.
// Started, it joins the network and catches up from genesis by block
// sync. The manifest is updated and saved; the new node's index is
// returned. Existing nodes' configurations are not changed: they accept
// the newcomer's inbound connection.
func AddNode(m *Manifest, ao AddNodeOptions) (int, error) {
	i := len(m.Nodes)
	base, err := LoadNodeConfig(m.HomeOf(0))
	if err != nil {
		return 0, err
	}
	host, _, err := net.SplitHostPort(m.Nodes[0].P2P)
	if err != nil {
		return 0, fmt.Errorf("testnet: node0 p2p %q: %w", m.Nodes[0].P2P, err)
	}
	home := filepath.Join(m.dir, nodeName(i))
	if _, err := os.Stat(home); err == nil {
		return 0, fmt.Errorf("testnet: %s already exists", home)
	}
	o := Options{Host: host, PortOffset: ao.PortOffset, FreePorts: ao.FreePorts, NoCometRPC: ao.NoCometRPC,
		DisablePEX: ao.DisablePEX, BlockTime: time.Duration(base.BlockTime), ProposeTimeout: time.Duration(base.ProposeTimeout), LogLevel: ao.LogLevel}
	if ao.BlockTime > 0 {
		o.BlockTime = ao.BlockTime
	}
	if o.LogLevel == "" {
		o.LogLevel = base.LogLevel
	}
	p, err := o.portsFor(i)
	if err != nil {
		return 0, err
	}
	id, _, err := genKeys(home)
	if err != nil {
		return 0, err
	}
	genesis, err := os.ReadFile(node.GenesisFile(m.HomeOf(0)))
	if err != nil {
		return 0, fmt.Errorf("testnet: %w", err)
	}
	if err := writeFileAtomic(node.GenesisFile(home), genesis, 0o600); err != nil {
		return 0, err
	}
	ni := NodeInfo{Name: nodeName(i), Home: nodeName(i), NodeID: id,
		P2P: net.JoinHostPort(host, strconv.Itoa(p.p2p)), RESTURL: "http://" + net.JoinHostPort(host, strconv.Itoa(p.rest))}
	if !o.NoCometRPC {
		ni.CometRPCURL = "http://" + net.JoinHostPort(host, strconv.Itoa(p.cometRPC))
	}
	m.Nodes = append(m.Nodes, ni)
	if err := o.nodeConfig(m, i, p).Save(home); err != nil {
		m.Nodes = m.Nodes[:i]
		return 0, err
	}
	if err := m.Save(); err != nil {
		return 0, err
	}
	return i, nil
}

func nodeName(i int) string { return "node" + strconv.Itoa(i) }

// newGenesisKey draws a 24-word phrase and derives its account.
func newGenesisKey(balance coin.Amount) (GenesisKey, error) {
	ent := make([]byte, keystore.EntropyBits/8)
	if _, err := rand.Read(ent); err != nil {
		return GenesisKey{}, fmt.Errorf("testnet: %w", err)
	}
	m, err := bip39.NewMnemonic(ent)
	if err != nil {
		return GenesisKey{}, fmt.Errorf("testnet: mnemonic: %w", err)
	}
	addr, err := keystore.AddressFromMnemonic(m)
	if err != nil {
		return GenesisKey{}, err
	}
	return GenesisKey{Warning: genesisKeyWarning, Name: GenesisWallet, Address: addr, Mnemonic: m, Balance: balance}, nil
}

package testnet_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/testnet"
)

func TestInitLaysOutFourValidatorsAndAFullNode(t *testing.T) {
	dir := t.TempDir()
	m, err := testnet.Init(testnet.Options{Dir: dir, Validators: 4, NonValidators: 1, BlockTime: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 5 || len(m.Validators()) != 4 || m.Nodes[4].Validator {
		t.Fatalf("nodes %+v", m.Nodes)
	}
	// The port scheme: node i on 8005+100i, 8006+100i, 26657+100i.
	if m.Nodes[0].P2P != "127.0.0.1:8005" || m.Nodes[0].RESTURL != "http://127.0.0.1:8006" || m.Nodes[2].P2P != "127.0.0.1:8205" ||
		m.Nodes[2].CometRPCURL != "http://127.0.0.1:26857" {
		t.Fatalf("ports %+v", m.Nodes)
	}
	// One genesis, byte for byte, with the four validators.
	g0, err := os.ReadFile(filepath.Join(dir, "node0", "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 5; i++ {
		gi, _ := os.ReadFile(filepath.Join(m.HomeOf(i), "config", "genesis.json"))
		if !bytes.Equal(g0, gi) {
			t.Fatalf("genesis of node%d differs", i)
		}
	}
	for _, v := range m.Validators() {
		if !bytes.Contains(g0, []byte(m.Nodes[v].ConsensusAddress)) {
			t.Fatalf("genesis lacks validator %s", m.Nodes[v].Name)
		}
	}
	// Each node config: its own ports, every other node as a peer.
	for i := range m.Nodes {
		c, err := testnet.LoadNodeConfig(m.HomeOf(i))
		if err != nil {
			t.Fatal(err)
		}
		if c.Moniker != m.Nodes[i].Name || "tcp://"+m.Nodes[i].P2P != c.P2PListen || time.Duration(c.BlockTime) != 500*time.Millisecond || !c.PEX {
			t.Fatalf("node%d config %+v", i, c)
		}
		if len(c.PersistentPeers) != 4 || strings.Contains(strings.Join(c.PersistentPeers, ","), m.Nodes[i].NodeID) {
			t.Fatalf("node%d peers %v", i, c.PersistentPeers)
		}
	}
	// The genesis key restores to the funded genesis-ops address.
	k, err := testnet.LoadGenesisKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := k.PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if address.FromPubKey(priv.Public().(ed25519.PublicKey)) != k.Address || !strings.Contains(k.Warning, "TEST ONLY") {
		t.Fatalf("genesis key %s does not match its phrase, or lacks the warning", k.Address)
	}
	var g struct {
		AppState app.Genesis `json:"app_state"`
	}
	if err := json.Unmarshal(g0, &g); err != nil {
		t.Fatal(err)
	}
	if g.AppState.Accounts[0].Address != k.Address || g.AppState.Accounts[0].Name != testnet.GenesisWallet {
		t.Fatalf("genesis accounts %+v, key %s", g.AppState.Accounts, k.Address)
	}

	// A second init into the same directory is refused.
	if _, err := testnet.Init(testnet.Options{Dir: dir}); err == nil {
		t.Fatal("second init succeeded")
	}

	// A node added later: next ports, same genesis, all five as peers.
	i, err := testnet.AddNode(m, testnet.AddNodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if i != 5 || m.Nodes[5].P2P != "127.0.0.1:8505" || m.Nodes[5].Validator {
		t.Fatalf("added %d %+v", i, m.Nodes[5])
	}
	g5, _ := os.ReadFile(filepath.Join(m.HomeOf(5), "config", "genesis.json"))
	c5, _ := testnet.LoadNodeConfig(m.HomeOf(5))
	if !bytes.Equal(g0, g5) || len(c5.PersistentPeers) != 5 {
		t.Fatalf("added node: genesis equal %v, peers %v", bytes.Equal(g0, g5), c5.PersistentPeers)
	}
	m2, err := testnet.LoadManifest(dir)
	if err != nil || len(m2.Nodes) != 6 {
		t.Fatalf("manifest after add: %v %v", m2, err)
	}
}

func TestNodeConfigRejectsTyposAndKeepsDefaults(t *testing.T) {
	home := t.TempDir()
	if _, err := testnet.LoadNodeConfig(home); !errors.Is(err, testnet.ErrNoNodeConfig) {
		t.Fatalf("missing file: %v", err)
	}
	write := func(s string) {
		if err := os.WriteFile(testnet.NodeConfigPath(home), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"moniker": "x", "block_time": "300ms"}`)
	c, err := testnet.LoadNodeConfig(home)
	if err != nil || c.Moniker != "x" || time.Duration(c.BlockTime) != 300*time.Millisecond || c.RESTListen != "127.0.0.1:8006" || !c.PEX {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{
		`{"monikr": "x"}`,
		`{"block_time": "soon"}`,
		`{"p2p_listen": "127.0.0.1:1"}`,
		`{"persistent_peers": ["127.0.0.1:8005"]}`,
		`{"log_level": "loud"}`,
	} {
		write(bad)
		if _, err := testnet.LoadNodeConfig(home); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	c.PEX = false
	if err := c.Save(home); err != nil {
		t.Fatal(err)
	}
	back, err := testnet.LoadNodeConfig(home)
	if err != nil || back.PEX || !back.System(home).DisablePEX || back.System(home).RESTListen != "127.0.0.1:8006" {
		t.Fatalf("round trip %+v %v", back, err)
	}
}

func TestInitJoinWritesAFullNodeHomeAndRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	m, err := testnet.Init(testnet.Options{Dir: dir, Validators: 1})
	if err != nil {
		t.Fatal(err)
	}
	genesis := filepath.Join(m.HomeOf(0), "config", "genesis.json")
	peer := m.Nodes[0].NodeID + "@" + m.Nodes[0].P2P
	home := filepath.Join(t.TempDir(), "joiner")
	for name, o := range map[string]testnet.JoinOptions{
		"no peers":      {Home: home, Genesis: genesis},
		"bad peer":      {Home: home, Genesis: genesis, Peers: []string{"127.0.0.1:8005"}},
		"no genesis":    {Home: home, Genesis: filepath.Join(dir, "missing.json"), Peers: []string{peer}},
		"not a genesis": {Home: home, Genesis: filepath.Join(dir, testnet.ManifestFile), Peers: []string{peer}},
		"no home":       {Genesis: genesis, Peers: []string{peer}},
	} {
		if _, err := testnet.InitJoin(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := os.Stat(filepath.Join(home, "config", "genesis.json")); err == nil {
			t.Fatalf("%s: refused, but left a genesis behind", name)
		}
	}
	id, err := testnet.InitJoin(testnet.JoinOptions{Home: home, Genesis: genesis, Peers: []string{peer},
		Config: testnet.NodeConfig{Moniker: "joiner", RESTListen: "127.0.0.1:9006", CometRPCListen: "off"}})
	if err != nil || len(id) != 40 {
		t.Fatalf("init join: %q %v", id, err)
	}
	c, err := testnet.LoadNodeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if c.Moniker != "joiner" || c.RESTListen != "127.0.0.1:9006" || c.CometRPCListen != "" || len(c.PersistentPeers) != 1 || c.PersistentPeers[0] != peer {
		t.Fatalf("config %+v", c)
	}
	g0, _ := os.ReadFile(genesis)
	g1, _ := os.ReadFile(filepath.Join(home, "config", "genesis.json"))
	if !bytes.Equal(g0, g1) {
		t.Fatal("the joined node's genesis differs from the network's")
	}
	if _, err := testnet.InitJoin(testnet.JoinOptions{Home: home, Genesis: genesis, Peers: []string{peer}}); err == nil {
		t.Fatal("a second init over the same home was accepted")
	}
}

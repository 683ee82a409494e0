package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

// services runs the off-chain programs of AITBC as processes against a
// testnet: a wallet daemon, a coordinator and a miner, each given a list
// of nodes in --node.
type services struct {
	t     *testing.T
	home  string
	env   []string
	coord string
	procs map[string]*exec.Cmd
	logs  map[string]string
}

func (s *services) start(name string, args ...string) {
	s.t.Helper()
	cmd := exec.Command(aitbcBin, args...)
	cmd.Env = s.env
	path := filepath.Join(s.home, name+".log")
	f, err := os.Create(path)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.procs[name], s.logs[name] = cmd, path
	s.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		f.Close()
		if s.t.Failed() {
			// The service's own words are what explain a failure here.
			b, _ := os.ReadFile(path)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			s.t.Logf("---- %s log tail (%s) ----\n%s", name, path, b)
		}
	})
}

// waitListening waits until the named service accepts connections on addr
// and has written each of files.
func (s *services) waitListening(name, addr string, files ...string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				ready = false
			}
		}
		if ready {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s is not listening on %s (or has not written %v) after 30 s", name, addr, files)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *services) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(aitbcBin, args...)
	cmd.Env = s.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("aitbc %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func (s *services) log(name string) string {
	b, _ := os.ReadFile(s.logs[name])
	return string(b)
}

func (s *services) address(wallet string) string {
	for _, l := range strings.Split(s.run("list"), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == wallet+":" {
			return f[1]
		}
	}
	s.t.Fatalf("wallet %s not listed", wallet)
	return ""
}

func eventually(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// TestServicesFailOverWhenTheirNodeDies points a wallet daemon, a
// coordinator and a miner (each its own process) at node0 with node1 as
// the next in --node, starts paid jobs, and SIGKILLs node0: every service
// must go on through node1, every job settles on chain exactly once, and a
// transfer sent through the wallet daemon after the kill is committed.
func TestServicesFailOverWhenTheirNodeDies(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, netOptions{})
	ctx := context.Background()
	home := t.TempDir()
	s := &services{t: t, home: home, procs: map[string]*exec.Cmd{}, logs: map[string]string{}}
	nodes := n.m.Nodes[0].RESTURL + "," + n.m.Nodes[1].RESTURL
	walletAddr, coordAddr := freeAddr(t), freeAddr(t)
	s.coord = "http://" + coordAddr
	s.env = append(os.Environ(), "AITBC_HOME="+home, "AITBC_NODE="+nodes, "AITBC_WALLET_URL=http://"+walletAddr,
		"AITBC_COORDINATOR="+s.coord, "AITBC_OUTPUT=text")

	gk, err := testnet.LoadGenesisKey(n.m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	s.run("wallet", "restore", "--name", "genesis-ops", "--mnemonic", gk.Mnemonic, "--password", "123")
	s.start("wallet-daemon", "wallet", "daemon", "--listen", walletAddr, "--min-password-length", "0") // the seeds' short test passwords
	// The CLI reads the daemon's API key from the home when it starts: the
	// daemon must have written it, and be listening, first.
	s.waitListening("wallet-daemon", walletAddr, filepath.Join(home, "wallet", "api-key"))
	for _, w := range []string{"coord", "miner-a"} {
		s.run("create", "--name", w, "--password", "pw")
		s.run("send", "--from", "genesis-ops", "--to", s.address(w), "--amount", "1000", "--password", "123", "--wait")
	}
	var tenant struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(s.run("coordinator", "tenant", "add", "--name", "genesis-ops", "--address", gk.Address.String(), "--output", "json")), &tenant); err != nil {
		t.Fatal(err)
	}
	s.start("coordinator", "coordinator", "start", "--wallet", "coord", "--password", "pw", "--listen", coordAddr, "--log-level", "warn")
	eventually(t, "coordinator up", time.Minute, func() bool {
		_, err := coordinator.NewClient(s.coord, "").Health(ctx)
		return err == nil
	})
	txh := strings.TrimSpace(s.run("deposit", "add", "--wallet", "genesis-ops", "--amount", "500", "--password", "123"))
	s.run("transaction", "status", "--tx-id", txh, "--wait", "30s")
	s.start("miner-a", "miner", "start", "--wallet", "miner-a", "--password", "pw", "--backend", "builtin", "--slots", "2", "--heartbeat", "2s")
	eventually(t, "miner connected", 2*time.Minute, func() bool {
		h, err := coordinator.NewClient(s.coord, "").Health(ctx)
		return err == nil && h.Miners == 1
	})

	cc := coordinator.NewClient(s.coord, tenant.APIKey)
	submit := func(k int) []string {
		ids := make([]string, k)
		for i := range ids {
			v, err := cc.Submit(ctx, coordinator.JobRequest{Model: "tolstoy-1m", Prompt: fmt.Sprintf("Chapter %d", i), MaxTokens: 200})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = v.JobID
		}
		return ids
	}
	settled := func(ids []string) int {
		k := 0
		for _, id := range ids {
			if v, err := cc.Status(ctx, id); err == nil && v.Status == "settled" {
				k++
			}
		}
		return k
	}
	before := submit(30)
	eventually(t, "first jobs settle", 2*time.Minute, func() bool { return settled(before) >= 3 })
	settledAtKill := settled(before)
	n.kill(0)
	killed := time.Now()
	after := submit(10)
	all := append(before, after...)
	eventually(t, "every job settled after node0 died", 3*time.Minute, func() bool { return settled(all) == len(all) })
	t.Logf("node0 SIGKILLed with %d of %d jobs settled; all %d jobs settled %.1f s later through node1", settledAtKill, len(before), len(all), time.Since(killed).Seconds())

	// Each job settled once on chain, read from a surviving node.
	node1 := n.client(1)
	for _, id := range all {
		j, err := jobs.QueryJob(ctx, node1, id)
		if err != nil || j.Status != "settled" || j.Paid+j.Fee+j.Commission+j.Refund != j.Escrow {
			t.Fatalf("job %s on chain: %+v %v", id, j, err)
		}
	}

	// The wallet daemon signs and submits through node1 now.
	bob, _ := address.Parse(s.address("miner-a"))
	h := strings.TrimSpace(s.run("send", "--from", "genesis-ops", "--to", bob.String(), "--amount", "1", "--password", "123"))
	st := s.run("transaction", "status", "--tx-id", h, "--wait", "30s")
	if !strings.Contains(st, "committed") {
		t.Fatalf("transfer after the kill: %s", st)
	}
	if !strings.Contains(s.log("wallet-daemon"), "using the next one") {
		t.Error("the wallet daemon did not log a failover (was the transfer sent through it?)")
	}
	// The miner reaches the chain with its next heartbeat (every 2 s).
	for _, name := range []string{"coordinator", "miner-a"} {
		eventually(t, name+" logs its failover to node1", 30*time.Second, func() bool {
			return strings.Contains(s.log(name), "using the next one")
		})
	}
}

// TestNodeInitJoinsARunningNetwork makes a node home with `aitbc node
// init` (genesis file and a peer, as an operator outside the testnet
// directory would) and starts it: it block-syncs from genesis, reports
// itself a full node that was behind, and ends on the validator's blocks.
func TestNodeInitJoinsARunningNetwork(t *testing.T) {
	t.Parallel()
	n := startNetwork(t, netOptions{validators: 1})
	n.waitAll(n.all(), 10, progressWait)
	home := filepath.Join(t.TempDir(), "joiner")
	s := &services{t: t, home: t.TempDir(), procs: map[string]*exec.Cmd{}, logs: map[string]string{}, env: os.Environ()}
	rest := freeAddr(t)
	peer := n.m.Nodes[0].NodeID + "@" + n.m.Nodes[0].P2P
	var out struct {
		NodeID string `json:"node_id"`
	}
	if err := json.Unmarshal([]byte(s.run("node", "init", "--home", home, "--genesis", filepath.Join(n.m.HomeOf(0), "config", "genesis.json"),
		"--peers", peer, "--p2p-listen", "tcp://"+freeAddr(t), "--rest-listen", rest, "--comet-rpc-listen", "off", "--output", "json")), &out); err != nil || out.NodeID == "" {
		t.Fatalf("node init: %+v %v", out, err)
	}
	// A second init over the same home is refused.
	if err := exec.Command(aitbcBin, "node", "init", "--home", home, "--genesis", filepath.Join(n.m.HomeOf(0), "config", "genesis.json"), "--peers", peer).Run(); err == nil {
		t.Fatal("node init over an existing node home succeeded")
	}
	s.start("joiner", "node", "start", "--home", home)
	c := rpc.NewClient("http://" + rest)
	ctx := context.Background()
	var sawBehind bool
	eventually(t, "the new node level with the validator", catchUpWait, func() bool {
		st, err := c.Sync(ctx)
		if err != nil {
			return false
		}
		if st.Validator {
			t.Fatal("the joined node says it is a validator")
		}
		sawBehind = sawBehind || st.CatchingUp
		return !st.CatchingUp && st.LatestBlockHeight >= n.height(0)-1 && st.Peers == 1
	})
	st, _ := c.Sync(ctx)
	h, _ := c.Health(ctx)
	if h.NodeID != out.NodeID {
		t.Fatalf("node id %s, init said %s", h.NodeID, out.NodeID)
	}
	for k := int64(1); k <= st.LatestBlockHeight; k++ {
		a, err1 := c.Block(ctx, k)
		b, err2 := n.client(0).Block(ctx, k)
		if err1 != nil || err2 != nil || a.Hash != b.Hash || a.AppHash != b.AppHash {
			t.Fatalf("height %d: joiner %s/%s, validator %s/%s (%v %v)", k, a.Hash, a.AppHash, b.Hash, b.AppHash, err1, err2)
		}
	}
	t.Logf("node init + node start: joined at height 0, synced to %d (catching_up seen: %v), same block and app hashes as the validator at every height", st.LatestBlockHeight, sawBehind)
}

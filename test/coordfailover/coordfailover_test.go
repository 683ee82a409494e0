// Package coordfailover kills one of two coordinators that share a
// PostgreSQL store, as real OS processes (SIGKILL), while paid jobs run:
// the chain and wallet daemon in one `aitbc devnet` process, two
// `aitbc coordinator start --store postgres://...` processes signing with
// one key, two miner processes that list both coordinators. Every job
// still settles, once, on chain; the killed coordinator's miner moves to
// the other one.
package coordfailover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aitbc-coordfailover-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "aitbc")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/aitbc").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

func port(t *testing.T) string {
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

type world struct {
	t     *testing.T
	home  string
	env   []string
	procs map[string]*exec.Cmd
}

func (w *world) start(name string, args ...string) {
	w.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = w.env
	logf, err := os.Create(filepath.Join(w.home, name+".log"))
	if err != nil {
		w.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.procs[name] = cmd
	w.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
		logf.Close()
		if w.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			w.t.Logf("--- %s log (tail):\n%s", name, tail(string(b), 30))
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (w *world) kill(name string) {
	cmd := w.procs[name]
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

func (w *world) cli(args ...string) string {
	w.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = w.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		w.t.Fatalf("aitbc %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if ok() {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, within)
	return 0
}

func grep(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func miners(url string) int {
	h, err := coordinator.NewClient(url, "").Health(context.Background())
	if err != nil {
		return -1
	}
	return h.Miners
}

// TestSIGKILLedCoordinatorsJobsSettleOnceThroughTheOther: jobs are
// submitted to both coordinators; coordinator 1 is SIGKILLed with jobs in
// flight. Its miner reconnects to coordinator 2, which takes coordinator
// 1's jobs over when their leases (15 s) run out: every job settles, once,
// and the customer reads every status through coordinator 2.
func TestSIGKILLedCoordinatorsJobsSettleOnceThroughTheOther(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet, two coordinators, two miners and PostgreSQL as processes")
	}
	dsn := pgtest.DSN(t)
	home := t.TempDir()
	w := &world{t: t, home: home, procs: map[string]*exec.Cmd{}}
	rpcAddr, walletAddr, c1Addr, c2Addr := port(t), port(t), port(t), port(t)
	c1, c2 := "http://"+c1Addr, "http://"+c2Addr
	w.env = append(os.Environ(), "AITBC_HOME="+home, "AITBC_NODE=http://"+rpcAddr, "AITBC_WALLET_URL=http://"+walletAddr,
		"AITBC_COORDINATOR="+c1, "AITBC_OUTPUT=text")
	node := rpc.NewClient("http://" + rpcAddr)
	w.start("devnet", "devnet", "--block-time", "300ms", "--check-invariants", "--coordinator-listen", "off", "--web-listen", "off", "--exchange-listen", "off", "--oracle-listen", "off", "--rpc-listen", rpcAddr,
		"--wallet-listen", walletAddr, "--p2p-listen", "tcp://"+port(t), "--comet-rpc-listen", "off", "--log-level", "error")
	waitFor(t, "devnet node", time.Minute, func() bool { _, err := node.Health(context.Background()); return err == nil })

	genesis := strings.Fields(strings.TrimSpace(grep(w.cli("list"), "genesis-ops:")))[1]
	for _, m := range []string{"miner-a", "miner-b"} {
		w.cli("create", "--name", m, "--password", "pw")
		a := strings.Fields(grep(w.cli("list"), m+":"))[1]
		w.cli("send", "--from", "genesis-ops", "--to", a, "--amount", "1000", "--password", "123", "--wait")
	}
	var tenant struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(w.cli("coordinator", "tenant", "add", "--name", "genesis-ops", "--address", genesis, "--store", dsn, "--output", "json")), &tenant); err != nil {
		t.Fatal(err)
	}
	for name, listen := range map[string]string{"coordinator-1": c1Addr, "coordinator-2": c2Addr} {
		w.start(name, "coordinator", "start", "--wallet", "devnet-coordinator", "--password", "123", "--listen", listen, "--store", dsn, "--log-level", "info")
	}
	for _, u := range []string{c1, c2} {
		waitFor(t, "coordinator "+u, time.Minute, func() bool { return miners(u) >= 0 })
	}
	txh := strings.TrimSpace(w.cli("deposit", "add", "--wallet", "genesis-ops", "--amount", "1000", "--password", "123"))
	w.cli("transaction", "status", "--tx-id", txh, "--wait", "30s")
	w.start("miner-a", "miner", "start", "--wallet", "miner-a", "--password", "pw", "--backend", "builtin", "--slots", "1", "--heartbeat", "1h", "--coordinator", c1+","+c2)
	w.start("miner-b", "miner", "start", "--wallet", "miner-b", "--password", "pw", "--backend", "builtin", "--slots", "1", "--heartbeat", "1h", "--coordinator", c2+","+c1)
	waitFor(t, "a miner on each coordinator", 2*time.Minute, func() bool { return miners(c1) == 1 && miners(c2) == 1 })

	cl1, cl2 := coordinator.NewClient(c1, tenant.APIKey), coordinator.NewClient(c2, tenant.APIKey)
	var ids, viaC1 []string
	temp := float32(0.8)
	for i := range 12 {
		cl := cl1
		if i%3 == 2 {
			cl = cl2
		}
		v, err := cl.Submit(context.Background(), coordinator.JobRequest{Model: "tolstoy-1m", Prompt: fmt.Sprintf("Chapter %d", i), MaxTokens: 400, Temperature: &temp, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.JobID)
		if cl == cl1 {
			viaC1 = append(viaC1, v.JobID)
		}
	}
	waitFor(t, "some jobs settled", 2*time.Minute, func() bool { return countOf(cl2, ids, "settled") >= 1 })
	pending := len(viaC1) - countOf(cl2, viaC1, "settled")
	w.kill("coordinator-1")
	killed := time.Now()
	t.Logf("SIGKILLed coordinator 1 with %d of the %d jobs submitted to it not settled (%d of %d in all settled)", pending, len(viaC1), countOf(cl2, ids, "settled"), len(ids))
	if pending == 0 {
		t.Fatal("every job of coordinator 1 settled before the kill: nothing was left to fail over")
	}
	moved := waitFor(t, "both miners on coordinator 2", time.Minute, func() bool { return miners(c2) == 2 })
	waitFor(t, "every job settled", 4*time.Minute, func() bool { return countOf(cl2, ids, "settled") == len(ids) })
	t.Logf("failover: miner on coordinator 2 %.1f s after the kill; all jobs settled %.1f s after it", moved.Seconds(), time.Since(killed).Seconds())
	for _, id := range ids {
		j, err := jobs.QueryJob(context.Background(), node, id)
		if err != nil || j.Status != "settled" || j.Miner == nil || j.Paid+j.Fee+j.Commission+j.Refund != j.Escrow {
			t.Fatalf("job %s on chain: %+v %v", id, j, err)
		}
	}
	// The chain's books balance.
	au, err := node.Audit(context.Background())
	if err != nil || !au.OK {
		t.Fatalf("audit: %v %v", err, au.Err())
	}
}

// countOf counts the jobs among ids whose status (read through cl) is one
// of statuses.
func countOf(cl *coordinator.Client, ids []string, statuses ...string) int {
	n := 0
	for _, id := range ids {
		v, err := cl.Status(context.Background(), id)
		if err != nil {
			continue
		}
		for _, s := range statuses {
			if v.Status == s {
				n++
			}
		}
	}
	return n
}

// Package jobfault kills the off-chain services of a paid job while jobs
// run, as real OS processes: the chain and wallet daemon in one `aitbc
// devnet` process, a coordinator process and two miner processes, all on
// loopback. It checks that every job still completes, settles once, and
// that a killed miner is paid only for what it settled.
package jobfault

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

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aitbc-jobfault-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "aitbc")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/aitbc").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
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

// world is one devnet process plus the coordinator and miners started
// beside it.
type world struct {
	t                 *testing.T
	home              string
	env               []string
	nodeURL, coordURL string
	coordListen       string
	apiKey            string
	node              *rpc.Client
	procs             map[string]*exec.Cmd
	minerAddr         map[string]address.Address
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
	})
}

func (w *world) kill(name string) {
	cmd := w.procs[name]
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// cli runs an aitbc command and returns its stdout.
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
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, within)
	return 0
}

func setup(t *testing.T) *world {
	home := t.TempDir()
	w := &world{t: t, home: home, procs: map[string]*exec.Cmd{}, minerAddr: map[string]address.Address{}}
	rpcAddr, walletAddr := port(t), port(t)
	w.coordListen = port(t)
	w.nodeURL, w.coordURL = "http://"+rpcAddr, "http://"+w.coordListen
	w.env = append(os.Environ(), "AITBC_HOME="+home, "AITBC_NODE="+w.nodeURL, "AITBC_WALLET_URL=http://"+walletAddr,
		"AITBC_COORDINATOR="+w.coordURL, "AITBC_OUTPUT=text")
	w.node = rpc.NewClient(w.nodeURL)
	w.start("devnet", "devnet", "--block-time", "300ms", "--check-invariants", "--coordinator-listen", "off", "--web-listen", "off", "--exchange-listen", "off", "--oracle-listen", "off", "--rpc-listen", rpcAddr,
		"--wallet-listen", walletAddr, "--p2p-listen", "tcp://"+port(t), "--comet-rpc-listen", "off", "--log-level", "error")
	waitFor(t, "devnet node", time.Minute, func() bool { _, err := w.node.Health(context.Background()); return err == nil })

	genesis := strings.Fields(strings.TrimSpace(grep(w.cli("list"), "genesis-ops:")))[1]
	for _, m := range []string{"miner-a", "miner-b"} {
		w.cli("create", "--name", m, "--password", "pw")
		a := strings.Fields(grep(w.cli("list"), m+":"))[1]
		w.minerAddr[m], _ = address.Parse(a)
		w.cli("send", "--from", "genesis-ops", "--to", a, "--amount", "1000", "--password", "123", "--wait")
	}
	var tenant struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(w.cli("coordinator", "tenant", "add", "--name", "genesis-ops", "--address", genesis, "--output", "json")), &tenant); err != nil {
		t.Fatal(err)
	}
	w.apiKey = tenant.APIKey
	w.startCoordinator()
	txh := strings.TrimSpace(w.cli("deposit", "add", "--wallet", "genesis-ops", "--amount", "1000", "--password", "123"))
	w.cli("transaction", "status", "--tx-id", txh, "--wait", "30s")
	for _, m := range []string{"miner-a", "miner-b"} {
		w.start(m, "miner", "start", "--wallet", m, "--password", "pw", "--backend", "builtin", "--slots", "1", "--heartbeat", "1h")
	}
	waitFor(t, "two miners connected", 2*time.Minute, func() bool { return w.connected() == 2 })
	return w
}

func grep(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func (w *world) startCoordinator() {
	w.start("coordinator", "coordinator", "start", "--wallet", "devnet-coordinator", "--password", "123", "--listen", w.coordListen, "--log-level", "warn")
	waitFor(w.t, "coordinator", time.Minute, func() bool {
		_, err := coordinator.NewClient(w.coordURL, "").Health(context.Background())
		return err == nil
	})
}

func (w *world) connected() int {
	h, err := coordinator.NewClient(w.coordURL, "").Health(context.Background())
	if err != nil {
		return -1
	}
	return h.Miners
}

func (w *world) client() *coordinator.Client { return coordinator.NewClient(w.coordURL, w.apiKey) }

func (w *world) submit(n int) []string {
	w.t.Helper()
	ids := make([]string, n)
	temp := float32(0.8)
	for i := range ids {
		v, err := w.client().Submit(context.Background(), coordinator.JobRequest{Model: "tolstoy-1m", Prompt: fmt.Sprintf("Chapter %d", i), MaxTokens: 200, Temperature: &temp, Seed: uint64(i + 1)})
		if err != nil {
			w.t.Fatal(err)
		}
		ids[i] = v.JobID
	}
	return ids
}

func (w *world) count(ids []string, statuses ...string) int {
	n := 0
	for _, id := range ids {
		v, err := w.client().Status(context.Background(), id)
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

// settledOnce checks every job on chain: settled, paid once, and it
// returns what each miner was paid in total.
func (w *world) settledOnce(ids []string) map[address.Address]coin.Amount {
	w.t.Helper()
	paid := map[address.Address]coin.Amount{}
	for _, id := range ids {
		j, err := jobs.QueryJob(context.Background(), w.node, id)
		if err != nil || j.Status != "settled" || j.Miner == nil || j.Paid+j.Fee+j.Commission+j.Refund != j.Escrow {
			w.t.Fatalf("job %s on chain: %+v %v", id, j, err)
		}
		paid[*j.Miner] += j.Paid
	}
	return paid
}

// checkPay checks that each miner's balance rose by what its settled jobs
// paid it plus, across the miners, exactly the work rewards the rewards
// module paid miners meanwhile (a miner's share of the block reward for
// verified work, paid at each epoch's end: docs/ECONOMICS.md); it returns
// those rewards.
func (w *world) checkPay(before, after map[address.Address]coin.Amount, rb, ra rewards.View, paid map[address.Address]coin.Amount) coin.Amount {
	w.t.Helper()
	var extra coin.Amount
	for a, b := range before {
		if after[a] < b {
			w.t.Errorf("miner %s: balance fell from %s to %s", a, b, after[a])
			continue
		}
		got, p := after[a]-b, paid[a]
		if got < p {
			w.t.Errorf("miner %s: balance rose by %s, settled jobs paid it %s", a, got, p)
			continue
		}
		extra += got - p
	}
	if work := ra.ToMiners - rb.ToMiners; extra != work {
		w.t.Errorf("miners' balances rose by %s beyond their jobs' pay; the rewards module paid miners %s for work", extra, work)
	}
	return extra
}

// rewards reads the rewards module's totals.
func (w *world) rewards() rewards.View {
	v, err := rewards.Query(context.Background(), w.node)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *world) balances() map[address.Address]coin.Amount {
	out := map[address.Address]coin.Amount{}
	for _, a := range w.minerAddr {
		acc, err := w.node.Account(context.Background(), a)
		if err != nil {
			w.t.Fatal(err)
		}
		out[a] = acc.Balance
	}
	return out
}

func TestCoordinatorKilledMidJobsRecovers(t *testing.T) {
	w := setup(t)
	before, rewardsBefore := w.balances(), w.rewards()
	ids := w.submit(40)
	waitFor(t, "some jobs done", time.Minute, func() bool { return w.count(ids, "completed", "settled") >= 3 })
	done := w.count(ids, "completed", "settled")
	w.kill("coordinator")
	killed := time.Now()
	t.Logf("killed the coordinator (SIGKILL) with %d of 40 jobs done", done)

	w.startCoordinator()
	up := time.Since(killed)
	reconnect := waitFor(t, "miners reconnect", time.Minute, func() bool { return w.connected() == 2 })
	progress := waitFor(t, "a job completes after the restart", time.Minute, func() bool { return w.count(ids, "completed", "settled") > done })
	t.Logf("recovery: API back %.1f s after the kill (restart included), miners reconnected %.1f s later, first job completed %.1f s after restart",
		up.Seconds(), reconnect.Seconds(), (reconnect + progress).Seconds())
	waitFor(t, "all 40 jobs settled", 3*time.Minute, func() bool { return w.count(ids, "settled") == len(ids) })

	paid := w.settledOnce(ids)
	after, rewardsAfter := w.balances(), w.rewards()
	extra := w.checkPay(before, after, rewardsBefore, rewardsAfter, paid)
	t.Logf("all 40 jobs settled once on chain; miners paid %v (and %s of work rewards)", paid, extra)
}

func TestMinerKilledMidJobIsReplacedAndNotPaid(t *testing.T) {
	w := setup(t)
	before, rewardsBefore := w.balances(), w.rewards()
	ids := w.submit(30)
	victim := w.minerAddr["miner-a"]
	waitFor(t, "miner-a running a job", time.Minute, func() bool {
		ms, err := coordinator.NewClient(w.coordURL, "").Miners(context.Background())
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.Address == victim.String() && m.Running > 0 {
				return true
			}
		}
		return false
	})
	w.kill("miner-a")
	t.Logf("killed miner-a (SIGKILL) while it ran a job")
	waitFor(t, "all 30 jobs settled", 3*time.Minute, func() bool { return w.count(ids, "settled") == len(ids) })
	paid := w.settledOnce(ids)
	after, rewardsAfter := w.balances(), w.rewards()
	w.checkPay(before, after, rewardsBefore, rewardsAfter, paid)
	reassigned := 0
	for _, id := range ids {
		v, _ := w.client().Status(context.Background(), id)
		if v.Attempt > 1 {
			reassigned++
			if v.Miner == victim.String() {
				t.Errorf("job %s settled by the killed miner after reassignment", id)
			}
		}
	}
	if reassigned == 0 {
		t.Error("no job was reassigned: the kill did not land mid-job")
	}
	t.Logf("all 30 jobs settled; %d reassigned after the kill; paid %v", reassigned, paid)
}

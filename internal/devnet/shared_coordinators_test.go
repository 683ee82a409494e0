package devnet_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
	"github.com/aitbc/aitbc/internal/walletd"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

// testLog logs to stderr with AITBC_TEST_LOG set, else nowhere.
func testLog() *slog.Logger {
	if os.Getenv("AITBC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// trackingListener remembers its connections so that a test can drop them
// all at once, hijacked WebSocket sessions included, as a killed process's
// peers see it.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// gatedRunner answers like fixedRunner once gate is closed; until then a
// job waits (or ends with its context).
type gatedRunner struct{ gate chan struct{} }

func (gatedRunner) Name() string                             { return "gated" }
func (gatedRunner) Models(context.Context) ([]string, error) { return []string{"tolstoy-1m"}, nil }
func (r gatedRunner) Run(ctx context.Context, j *minerproto.Job, onToken func(string) error) (miner.Output, error) {
	select {
	case <-r.gate:
	case <-ctx.Done():
		return miner.Output{}, ctx.Err()
	}
	return fixedRunner{}.Run(ctx, j, onToken)
}

// TestSharedCoordinatorsSurviveOneDying: two coordinators on one
// PostgreSQL database and one chain, with one chain key, each with a miner
// that knows both. A tenant registered through one is known to the other.
// Jobs are submitted to both; coordinator 1 dies (no clean shutdown) with
// one job running on its miner (and two queued, unless coordinator 2's
// free miner took them on offer already). Its miner moves to coordinator
// 2, which takes the dead one's jobs over after their lease: every job
// settles, each once, on chain, and the books balance.
func TestSharedCoordinatorsSurviveOneDying(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and PostgreSQL")
	}
	dsn := pgtest.DSN(t)
	e := start(t, devnet.Config{Miners: 2})
	ctx := t.Context()
	w := e.d.Wallets.Service()
	wait := func(hash string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if res, err := e.node.WaitTx(wctx, hash, 50*time.Millisecond); err != nil || res.Status != "committed" {
			t.Fatalf("tx %s: %+v %v", hash, res, err)
		}
	}
	fund := func(name string, amount coin.Amount) walletd.WalletInfo {
		t.Helper()
		info, err := w.Create(ctx, name, "pw")
		if err != nil {
			t.Fatal(err)
		}
		sub, err := w.Send(ctx, devnet.GenesisWallet, "123", info.Address, amount, 0)
		if err != nil {
			t.Fatal(err)
		}
		wait(sub.TxHash)
		return info
	}
	coordW := fund("shared-coordinator", 100*coin.Unit)
	const lease = 2 * time.Second

	type coord struct {
		svc  *coordinator.Service
		hs   *httptest.Server
		kill func()
	}
	startCoord := func(owner string) coord {
		t.Helper()
		st, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{Owner: owner, Lease: lease})
		if err != nil {
			t.Fatal(err)
		}
		c, err := coordinator.New(ctx, coordinator.Config{Store: st, Chain: rpc.NewClient(e.d.RPCURL()), Address: coordW.Address, Lease: lease,
			Sender: walletd.WalletSender{S: w, Name: "shared-coordinator", Password: "pw"}, Registry: prometheus.NewRegistry(),
			RefreshEvery: 200 * time.Millisecond, TickEvery: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = c.Run(cctx); close(done) }()
		hs := httptest.NewUnstartedServer(c.Handler())
		tl := &trackingListener{Listener: hs.Listener}
		hs.Listener = tl
		hs.Start()
		var once bool
		kill := func() {
			if once {
				return
			}
			once = true
			tl.closeAll() // as the kernel does for a killed process: WebSocket sessions too
			hs.Close()
			stop()
			<-done
			st.Close()
		}
		t.Cleanup(kill)
		return coord{c, hs, kill}
	}
	c1, c2 := startCoord("c1"), startCoord("c2")
	call := func(c coord, method, path, key string, body, out any) error {
		h := http.Header{}
		if key != "" {
			h.Set("X-API-Key", key)
		}
		return httpx.Do(ctx, nil, method, c.hs.URL+path, h, body, out)
	}

	// The customer's tenant, made through coordinator 1, works on both.
	cust := fund("customer", 1000*coin.Unit)
	sub, err := w.SignAndSubmit(ctx, "customer", "pw", jobs.NewDepositMsg(coordW.Address, 100*coin.Unit), 0)
	if err != nil {
		t.Fatal(err)
	}
	wait(sub.TxHash)
	_, key, err := c1.svc.AddTenant(ctx, "customer", cust.Address)
	if err != nil {
		t.Fatal(err)
	}

	// The devnet's miners leave its own coordinator for the shared pair.
	gate := make(chan struct{})
	ks, err := keystore.ForHome(e.home, e.cfg.Keystore...)
	if err != nil {
		t.Fatal(err)
	}
	var ms []*miner.Miner
	for i, spec := range []struct {
		urls   string
		runner miner.Runner
	}{{c1.hs.URL + "," + c2.hs.URL, gatedRunner{gate}}, {c2.hs.URL + "," + c1.hs.URL, fixedRunner{}}} {
		e.d.StopMiner(i)
		k, err := ks.Unlock(devnet.MinerWallet(i), "123")
		if err != nil {
			t.Fatal(err)
		}
		mv, err := miners.Query(ctx, e.node, k.Address())
		if err != nil {
			t.Fatal(err)
		}
		m, err := miner.New(miner.Config{Coordinator: spec.urls, Key: k, Chain: e.node, Runner: spec.runner,
			Sender: walletd.WalletSender{S: w, Name: devnet.MinerWallet(i), Password: "123"}, Models: mv.Models, PricePer1k: mv.PricePer1k,
			Stake: mv.Stake, GPU: mv.GPU, GPUMemoryMB: mv.GPUMemoryMB, HeartbeatEvery: time.Minute, Logger: testLog()})
		if err != nil {
			t.Fatal(err)
		}
		mctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = m.Run(mctx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
		ms = append(ms, m)
	}
	waitUntil := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitUntil("both miners connected", 60*time.Second, func() bool {
		return ms[0].Status().Connected && ms[0].Status().Coordinator == c1.hs.URL && ms[1].Status().Connected
	})

	submit := func(c coord) string {
		t.Helper()
		var v coordinator.JobView
		if err := call(c, "POST", "/v1/jobs", key, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 8}, &v); err != nil {
			t.Fatalf("submit: %v", err)
		}
		return v.JobID
	}
	status := func(c coord, id string) coordinator.JobView {
		t.Helper()
		var v coordinator.JobView
		if err := call(c, "GET", "/v1/jobs/"+id+"/status", key, nil, &v); err != nil {
			t.Fatalf("status of %s: %v", id, err)
		}
		return v
	}
	var ids []string
	for range 3 {
		ids = append(ids, submit(c1))
	}
	waitUntil("a job running on miner 1", 60*time.Second, func() bool { return status(c2, ids[0]).Status == "running" })
	for range 2 {
		ids = append(ids, submit(c2))
	}
	for _, id := range ids[3:] {
		waitUntil("coordinator 2's jobs settled", 60*time.Second, func() bool { return status(c2, id).Status == "settled" })
	}
	// (Coordinator 1's queued jobs may have moved to coordinator 2 by now:
	// its only miner is busy and coordinator 2's is free. The running one
	// stays with coordinator 1 until it dies.)
	if v := status(c2, ids[0]); v.Status != "running" {
		t.Fatalf("coordinator 1's running job is %s", v.Status)
	}

	c1.kill()
	close(gate)
	for _, id := range ids {
		waitUntil("job "+id+" settled after the failover", 90*time.Second, func() bool { return status(c2, id).Status == "settled" })
	}
	waitUntil("miner 1 serving coordinator 2", 30*time.Second, func() bool {
		st := ms[0].Status()
		return st.Connected && st.Coordinator == c2.hs.URL
	})
	for _, id := range ids {
		cj, err := jobs.QueryJob(ctx, e.node, id)
		if err != nil || cj.Status != "settled" || cj.Miner == nil || cj.Paid == 0 || cj.Coordinator != coordW.Address {
			t.Fatalf("job %s on chain: %+v %v", id, cj, err)
		}
	}
}

// TestDevnetWithTwoCoordinators: `aitbc devnet --coordinators 2 --store
// postgres://...` runs two coordinators on one database; the miners spread
// over them; the genesis tenant's key works on both, and a job submitted
// to the second settles. Without a PostgreSQL store it refuses to start.
func TestDevnetWithTwoCoordinators(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := devnet.Start(ctx, devnet.Config{Home: t.TempDir(), Coordinators: 2, RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0",
		CoordinatorListen: "127.0.0.1:0", CometRPCListen: "off", P2PListen: freeP2P(t)}); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("two coordinators on an SQLite store: %v", err)
	}
	e := start(t, devnet.Config{Miners: 2, Coordinators: 2, Store: pgtest.DSN(t)})
	if len(e.d.CoordinatorURLs) != 2 || len(e.d.Coordinators) != 2 {
		t.Fatalf("coordinators %v", e.d.CoordinatorURLs)
	}
	for i, c := range e.d.Coordinators {
		if n := len(c.ConnectedMiners()); n != 1 {
			t.Fatalf("coordinator %d has %d miners, want 1 each", i+1, n)
		}
	}
	var v coordinator.JobView
	call := func(method, path string, body, out any) error {
		return httpx.Do(ctx, nil, method, e.d.CoordinatorURLs[1]+path, http.Header{"X-Api-Key": {e.d.APIKey}}, body, out)
	}
	if err := call("POST", "/v1/jobs", map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 8}, &v); err != nil {
		t.Fatalf("submit to coordinator 2: %v", err)
	}
	for deadline := time.Now().Add(45 * time.Second); v.Status != "settled"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%s%s)", v.JobID, v.Status, v.Waiting, v.Error)
		}
		if err := call("GET", "/v1/jobs/"+v.JobID+"/status", nil, &v); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.call("GET", "/v1/jobs/"+v.JobID+"/status", e.d.APIKey, nil, &v); err != nil || v.Status != "settled" {
		t.Fatalf("coordinator 1 reads the job as %s: %v", v.Status, err)
	}
}

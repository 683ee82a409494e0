package devnet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
)

func freeP2P(t *testing.T) string {
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", p)
}

type env struct {
	t    *testing.T
	d    *devnet.Devnet
	node *rpc.Client
	home string
	cfg  devnet.Config
	// stopped is set by stop: the devnet went away on purpose, and its
	// successor on the same home audits the chain instead.
	stopped bool
}

// stop closes the devnet mid-test, as if its process went away.
func (e *env) stop() {
	e.stopped = true
	e.d.Close()
}

func start(t *testing.T, cfg devnet.Config) *env {
	t.Helper()
	if cfg.Home == "" {
		cfg.Home = t.TempDir()
	}
	if cfg.BlockTime == 0 {
		cfg.BlockTime = 150 * time.Millisecond
	}
	cfg.CheckInvariants = true // Commit fails, halting the chain, if a block breaks the books
	cfg.RPCListen, cfg.WalletListen, cfg.CoordinatorListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.CometRPCListen, cfg.P2PListen = "off", freeP2P(t)
	cfg.Keystore = []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, d: d, node: rpc.NewClient(d.RPCURL()), home: cfg.Home, cfg: cfg}
	t.Cleanup(func() {
		if e.stopped {
			return
		}
		// Whatever the test did, the books balance at its end.
		actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if au, err := e.node.Audit(actx); err != nil || !au.OK {
			t.Errorf("audit at the end of the test: %v %v", err, au.Err())
		}
		e.d.Close()
	})
	return e
}

func (e *env) call(method, path, key string, body, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := http.Header{}
	if key != "" {
		h.Set("X-API-Key", key)
	}
	return httpx.Do(ctx, nil, method, e.d.CoordinatorURL()+path, h, body, out)
}

func (e *env) submit(key string, req map[string]any) coordinator.JobView {
	e.t.Helper()
	var v coordinator.JobView
	if err := e.call("POST", "/v1/jobs", key, req, &v); err != nil {
		e.t.Fatalf("submit: %v", err)
	}
	return v
}

// waitStatus polls the job until it reaches one of the statuses.
func (e *env) waitStatus(key, id string, within time.Duration, statuses ...string) coordinator.JobView {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var v coordinator.JobView
	for time.Now().Before(deadline) {
		if err := e.call("GET", "/v1/jobs/"+id+"/status", key, nil, &v); err != nil {
			e.t.Fatalf("status: %v", err)
		}
		for _, s := range statuses {
			if v.Status == s {
				return v
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("job %s is %s (%s%s) after %s, want %v", id, v.Status, v.Waiting, v.Error, within, statuses)
	return v
}

func (e *env) balance(a address.Address) coin.Amount {
	acc, err := e.node.Account(context.Background(), a)
	if err != nil {
		e.t.Fatal(err)
	}
	return acc.Balance
}

func (e *env) deposit() coin.Amount {
	d, err := jobs.QueryDeposit(context.Background(), e.node, e.d.Genesis, e.d.Coordinator.Address())
	if err != nil {
		e.t.Fatal(err)
	}
	return d.Amount
}

func (e *env) burned() coin.Amount {
	ci, err := e.node.Chain(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if ci.Supply+ci.Burned != ci.GenesisTotal+ci.Minted {
		e.t.Fatalf("supply %s + burned %s != genesis %s + minted %s", ci.Supply, ci.Burned, ci.GenesisTotal, ci.Minted)
	}
	return ci.Burned
}

func TestJobSettlesAndRefundsRemainder(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1})
	m := e.d.Miners[0].Address()
	minerBefore, depBefore, burnedBefore := e.balance(m), e.deposit(), e.burned()

	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 40, "temperature": 0})
	if job.Status != "queued" || job.Payment != "deposit" {
		t.Fatalf("submitted: %+v", job)
	}
	v := e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled")

	var res coordinator.JobView
	if err := e.call("GET", "/v1/jobs/"+job.JobID+"/results", e.d.APIKey, nil, &res); err != nil {
		t.Fatal(err)
	}
	// Greedy tolstoy-1m from "It was" starts "It was awkward of the French." (model README).
	if res.Result == nil || !bytes.HasPrefix([]byte(*res.Result), []byte(" awkward of the French.")) {
		t.Fatalf("result %q", derefS(res.Result))
	}
	if res.Receipt == nil || res.TokensOut == 0 || res.TokensOut > 40 {
		t.Fatalf("results: %+v", res)
	}
	// The receipt verifies offline with the miner's on-chain key, and its
	// hash is anchored on chain by the settlement.
	rcpt, err := jobs.DecodeReceipt(res.Receipt.CBOR)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := miners.Query(context.Background(), e.node, m)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := hex.DecodeString(mi.PubKey)
	if err := rcpt.Verify(ed25519.PublicKey(pub)); err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	anchor, err := jobs.QueryReceipt(context.Background(), e.node, res.Receipt.Hash)
	if err != nil || !anchor.Anchored || anchor.JobID != job.JobID {
		t.Fatalf("receipt anchor: %+v %v", anchor, err)
	}
	// Money moved exactly: miner +price, deposit −(price+fee+commission),
	// burned + half the fee (the block's fee split) + the burned half of
	// the coordinator's three tx fees.
	price := jobs.PriceFor(uint64(v.TokensOut), coin.Unit)
	fee := jobs.DefaultParams().Fee(price)
	comm := jobs.DefaultParams().Commission(price)
	if v.Settlement == nil || v.Settlement.Paid != price || v.Settlement.Fee != fee {
		t.Fatalf("settlement %+v, want paid %s fee %s", v.Settlement, price, fee)
	}
	if got := e.balance(m) - minerBefore; got != price {
		t.Errorf("miner got %s, want %s", got, price)
	}
	if got := depBefore - e.deposit(); got != price+fee+comm {
		t.Errorf("customer paid %s from the deposit, want %s", got, price+fee+comm)
	}
	// The coordinator's create_for, assign and settle take one to three
	// transactions (its chain writer batches what queues up together).
	txFeeBurn := coin.Unit / 1000 / 2
	if got := e.burned() - burnedBefore; got < fee/2+txFeeBurn || got > fee/2+3*txFeeBurn || (got-fee/2)%txFeeBurn != 0 {
		t.Errorf("burned %s, want half the fee %s + 1 to 3 × the tx fee share %s", got, fee/2, txFeeBurn)
	}
	cj, err := jobs.QueryJob(context.Background(), e.node, job.JobID)
	if err != nil || cj.Status != "settled" || cj.Paid+cj.Fee+cj.Commission+cj.Refund != cj.Escrow || cj.Commission != comm {
		t.Fatalf("on-chain job %+v %v", cj, err)
	}
}

func derefS(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestTenantIsolationAndBadInput(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1})
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "Natasha", "max_tokens": 8})

	// A second tenant, with no deposit.
	other, _, _ := ed25519.GenerateKey(nil) // the public key
	_, otherKey, err := e.d.Coordinator.AddTenant(context.Background(), "other", address.FromPubKey(other))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/jobs/" + job.JobID, "/v1/jobs/" + job.JobID + "/status", "/v1/jobs/" + job.JobID + "/results", "/v1/receipts?job_id=" + job.JobID} {
		if err := e.call("GET", path, otherKey, nil, nil); !httpx.IsCode(err, "job_not_found") {
			t.Errorf("other tenant GET %s: %v, want job_not_found", path, err)
		}
	}
	var list struct{ Jobs []coordinator.JobView }
	if err := e.call("GET", "/v1/jobs", otherKey, nil, &list); err != nil || len(list.Jobs) != 0 {
		t.Errorf("other tenant lists %d jobs (%v)", len(list.Jobs), err)
	}
	// The token stream and resource allocations are per tenant too.
	if err := coordinator.NewClient(e.d.CoordinatorURL(), otherKey).Stream(context.Background(), job.JobID, func(coordinator.Event) {}); !errors.Is(err, coordinator.ErrJobNotFound) {
		t.Errorf("other tenant streams the job: %v", err)
	}
	owner := coordinator.NewClient(e.d.CoordinatorURL(), e.d.APIKey)
	if _, err := owner.Allocate(context.Background(), coordinator.AllocateRequest{AgentID: "agent-1", DurationS: 60}); err != nil {
		t.Fatal(err)
	}
	intruder := coordinator.NewClient(e.d.CoordinatorURL(), otherKey)
	if got, err := intruder.Allocations(context.Background(), ""); err != nil || len(got) != 0 {
		t.Errorf("other tenant sees allocations %v (%v)", got, err)
	}
	if _, err := intruder.Deallocate(context.Background(), "agent-1"); !httpx.IsCode(err, "allocation_not_found") {
		t.Errorf("other tenant releases the allocation: %v", err)
	}
	if _, err := owner.Deallocate(context.Background(), "agent-1"); err != nil {
		t.Errorf("owner's allocation gone: %v", err)
	}
	if err := e.call("GET", "/v1/jobs/"+fmt.Sprintf("%032x", 1), e.d.APIKey, nil, nil); !httpx.IsCode(err, "job_not_found") {
		t.Errorf("unknown job: %v", err)
	}

	for name, tc := range map[string]struct {
		key  string
		body map[string]any
		code string
	}{
		"no key":          {"", map[string]any{"model": "tolstoy-1m", "prompt": "x"}, "unauthorized"},
		"wrong key":       {"aitbc_nope", map[string]any{"model": "tolstoy-1m", "prompt": "x"}, "unauthorized"},
		"empty prompt":    {e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "  "}, "empty_prompt"},
		"no model":        {e.d.APIKey, map[string]any{"prompt": "x"}, "invalid_request"},
		"unknown model":   {e.d.APIKey, map[string]any{"model": "llama3.2:latest", "prompt": "x"}, "model_not_served"},
		"price too low":   {e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "x", "max_tokens": 1000, "max_price": "0.000001"}, "max_price_too_low"},
		"ttl too short":   {e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "x", "ttl": 1}, "invalid_ttl"},
		"ttl too long":    {e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "x", "ttl": 10_000_000}, "invalid_ttl"},
		"too many tokens": {e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "x", "max_tokens": 1 << 20}, "invalid_max_tokens"},
		"prompt too long": {e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": string(make([]byte, 70_000))}, "prompt_too_long"},
		"no deposit":      {otherKey, map[string]any{"model": "tolstoy-1m", "prompt": "x"}, "insufficient_deposit"},
		"unknown field":   {e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "x", "colour": "red"}, "invalid_request"},
		"bad amount":      {e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "x", "max_price": "-5"}, "invalid_request"},
	} {
		if err := e.call("POST", "/v1/jobs", tc.key, tc.body, nil); !httpx.IsCode(err, tc.code) {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled")
}

// slowRunner delays every token, so that a test can stop its miner mid-job.
type slowRunner struct {
	miner.Runner
	delay   time.Duration
	started chan string
}

func (s *slowRunner) Run(ctx context.Context, j *minerproto.Job, onToken func(string) error) (miner.Output, error) {
	select {
	case s.started <- j.ID:
	default:
	}
	return s.Runner.Run(ctx, j, func(text string) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.delay):
		}
		return onToken(text)
	})
}

func TestMinerDiesMidJobAndJobResumes(t *testing.T) {
	started := []chan string{make(chan string, 4), make(chan string, 4)}
	e := start(t, devnet.Config{Miners: 2, MinerSlots: 1, WrapRunner: func(i int, r miner.Runner) miner.Runner {
		return &slowRunner{Runner: r, delay: 40 * time.Millisecond, started: started[i]}
	}})
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "Prince Andrew", "max_tokens": 48, "temperature": 0})
	var dead, alive int
	select {
	case <-started[0]:
		dead, alive = 0, 1
	case <-started[1]:
		dead, alive = 1, 0
	case <-time.After(30 * time.Second):
		t.Fatal("no miner started the job")
	}
	deadAddr, aliveAddr := e.d.Miners[dead].Address(), e.d.Miners[alive].Address()
	deadBefore := e.balance(deadAddr)
	time.Sleep(200 * time.Millisecond) // a few tokens in
	e.d.StopMiner(dead)
	t.Logf("stopped miner %s while it ran job %s", deadAddr, job.JobID)
	v := e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled")
	if v.Miner != aliveAddr.String() || v.Attempt < 2 {
		t.Fatalf("job settled by %s after %d attempts, want %s after a reassignment", v.Miner, v.Attempt, aliveAddr)
	}
	cj, _ := jobs.QueryJob(context.Background(), e.node, job.JobID)
	if cj.Miner == nil || *cj.Miner != aliveAddr || cj.Assignments < 2 {
		t.Fatalf("on chain: miner %v after %d assignments", cj.Miner, cj.Assignments)
	}
	if got := e.balance(deadAddr); got != deadBefore {
		t.Fatalf("the dead miner's balance moved from %s to %s", deadBefore, got)
	}
}

func TestUnfinishedJobIsRefundedAtTTL(t *testing.T) {
	started := make(chan string, 1)
	e := start(t, devnet.Config{Miners: 1, WrapRunner: func(_ int, r miner.Runner) miner.Runner {
		return &slowRunner{Runner: r, delay: time.Second, started: started}
	}})
	depBefore := e.deposit()
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 200, "ttl": 10})
	<-started
	e.d.StopMiner(0) // nobody can finish it now
	v := e.waitStatus(e.d.APIKey, job.JobID, 40*time.Second, "expired")
	t.Logf("job %s: %s", v.JobID, v.Error)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cj, err := jobs.QueryJob(context.Background(), e.node, job.JobID)
		if err == nil && cj.Status == "expired" && cj.Refund == cj.Escrow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("on chain: %+v %v", cj, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := e.deposit(); got != depBefore {
		t.Fatalf("deposit %s after refund, want %s", got, depBefore)
	}
}

func TestManyConcurrentJobsAllSettle(t *testing.T) {
	e := start(t, devnet.Config{Miners: 3, MinerSlots: 4})
	const n = 200
	ids := make([]string, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			var v coordinator.JobView
			err := e.call("POST", "/v1/jobs", e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": fmt.Sprintf("Chapter %d", i), "max_tokens": 12, "seed": i + 1, "temperature": 0.8}, &v)
			ids[i] = v.JobID
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	per := map[string]int{}
	for _, id := range ids {
		v := e.waitStatus(e.d.APIKey, id, 3*time.Minute, "settled")
		per[v.Miner]++
	}
	t.Logf("200 jobs settled; per miner: %v", per)
	if len(per) != 3 {
		t.Errorf("work went to %d miners, want all 3", len(per))
	}
}

func TestCoordinatorRestartLosesNothing(t *testing.T) {
	started := make(chan string, 1)
	cfg := devnet.Config{Miners: 1, WrapRunner: func(_ int, r miner.Runner) miner.Runner {
		return &slowRunner{Runner: r, delay: 30 * time.Millisecond, started: started}
	}}
	e := start(t, cfg)
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 100})
	<-started
	e.stop() // the whole process goes away mid-job
	t.Log("devnet stopped mid-job; starting again on the same home")

	cfg.Home = e.home
	cfg.WrapRunner = nil
	e2 := start(t, cfg)
	v := e2.waitStatus(e2.d.APIKey, job.JobID, time.Minute, "settled")
	if v.TokensOut == 0 || v.Settlement == nil || v.Settlement.Paid == 0 {
		t.Fatalf("after restart: %+v", v)
	}
}

func TestAllocationHoldsCapacityForItsTenant(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1, MinerSlots: 1})
	ctx := context.Background()
	owner := coordinator.NewClient(e.d.CoordinatorURL(), e.d.APIKey)
	a, err := owner.Allocate(ctx, coordinator.AllocateRequest{AgentID: "gpu-worker-1", GPU: 1, MemoryMB: 8192, DurationS: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if a.Miner != e.d.Miners[0].Address().String() || a.MemoryChecked {
		t.Fatalf("allocation %+v (a CPU miner cannot check GPU memory)", a)
	}
	if _, err := owner.Allocate(ctx, coordinator.AllocateRequest{AgentID: "gpu-worker-1"}); !httpx.IsCode(err, "allocation_exists") {
		t.Fatalf("second allocation for the agent: %v", err)
	}
	if _, err := owner.Allocate(ctx, coordinator.AllocateRequest{AgentID: "gpu-worker-2"}); !httpx.IsCode(err, "no_capacity") {
		t.Fatalf("allocation beyond capacity: %v", err)
	}
	// Another tenant, funded, with a deposit: its job waits while the
	// slot is held, and runs once it is released.
	svc := e.d.Wallets.Service()
	info, err := svc.Create(ctx, "other", "pw")
	if err != nil {
		t.Fatal(err)
	}
	sent, err := svc.Send(ctx, devnet.GenesisWallet, "123", info.Address, 100*coin.Unit, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.WaitTx(ctx, sent.TxHash, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	coord := e.d.Coordinator.Address()
	dep, _ := tx.NewMsg(jobs.TypeDeposit, jobs.MsgDeposit{Coordinator: coord[:], Amount: 10 * coin.Unit})
	dsub, err := svc.SignAndSubmit(ctx, "other", "pw", dep, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.WaitTx(ctx, dsub.TxHash, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := e.d.Coordinator.AddTenant(ctx, "other", info.Address)
	if err != nil {
		t.Fatal(err)
	}
	blocked := e.submit(otherKey, map[string]any{"model": "tolstoy-1m", "prompt": "Natasha", "max_tokens": 8})
	// The owner's own job runs on the held slot meanwhile.
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 8})
	e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled")
	v := e.waitStatus(otherKey, blocked.JobID, 5*time.Second, "queued")
	if !strings.Contains(v.Waiting, "busy") {
		t.Fatalf("other tenant's job should wait for the held slot, waiting: %q", v.Waiting)
	}
	list, err := owner.Allocations(ctx, "")
	if err != nil || len(list) != 1 {
		t.Fatalf("allocations %v %v", list, err)
	}
	if _, err := owner.Deallocate(ctx, "gpu-worker-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Deallocate(ctx, "gpu-worker-1"); !httpx.IsCode(err, "allocation_not_found") {
		t.Fatalf("double release: %v", err)
	}
	e.waitStatus(otherKey, blocked.JobID, time.Minute, "settled")
	u, err := owner.Utilization(ctx, "all", time.Hour)
	// The held slot shows as full use at its peak; on average less.
	if err != nil || u.Samples < 3 || u.Miners != 1 || u.PeakPct != 100 || u.AvgPercent <= 0 || u.AvgPercent >= 100 {
		t.Fatalf("utilization %+v %v", u, err)
	}
}

package devnet_test

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/swarm"
	"github.com/aitbc/aitbc/internal/walletd"
)

// waitSpanAgents waits (for blocks, not a time) until n span servers are
// active on chain with their endpoints, and returns them.
func waitSpanAgents(t *testing.T, e *env, n int) []agents.View {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		l, err := agents.List(ctx, e.node, agents.Filter{Model: engine.DefaultModel, Capability: "span", ActiveOnly: true})
		ready := 0
		for _, a := range l.Agents {
			if a.Endpoint != "" {
				ready++
			}
		}
		if err == nil && ready == n {
			return l.Agents
		}
		select {
		case <-ctx.Done():
			t.Fatalf("span agents on chain: %+v, %v", l, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestSplitJobThroughTheCoordinator: with --span-miners 2 and no miner
// serving tolstoy-1m whole, a job (asked to split, and one not asked)
// runs through the span servers the coordinator finds on chain. Its text
// equals the whole model's; the chain pays each server its share of
// layers × tokens to the unit, and the escrow is paid out exactly; the
// stage receipts verify offline.
func TestSplitJobThroughTheCoordinator(t *testing.T) {
	e := start(t, devnet.Config{SpanMiners: 2, SpanListen: "127.0.0.1:0", Miners: -1})
	servers := waitSpanAgents(t, e, 2)
	ci, err := e.node.Chain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 30, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, split := range []bool{true, false} {
		before := map[address.Address]coin.Amount{}
		for _, a := range servers {
			before[a.Address] = e.balance(a.Address)
		}
		req := map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 30, "temperature": 0}
		if split {
			req["split"] = true
		}
		job := e.submit(e.d.APIKey, req)
		e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled", "failed", "expired")
		var res coordinator.JobView
		if err := e.call("GET", "/v1/jobs/"+job.JobID+"/results", e.d.APIKey, nil, &res); err != nil {
			t.Fatal(err)
		}
		if res.Status != "settled" || !res.Split || res.Result == nil {
			t.Fatalf("split %v: job %s (split %v, error %q)", split, res.Status, res.Split, res.Error)
		}
		if *res.Result != want.Text {
			t.Fatalf("split output %q, whole model %q", *res.Result, want.Text)
		}
		var set jobs.MsgSettleStages
		if err := tx.Unmarshal(res.StageSettlement, &set); err != nil {
			t.Fatal(err)
		}
		id, _ := hex.DecodeString(job.JobID)
		if err := set.Check(jobs.StageJob{ID: id, ChainID: ci.ChainID, Model: "tolstoy-1m", MaxTokens: 30}); err != nil {
			t.Fatalf("stage receipts do not verify offline: %v", err)
		}
		if set.Route != 2 || len(set.Stages) != 2 {
			t.Fatalf("%d stages, %d in the route; want the two halves", len(set.Stages), set.Route)
		}
		cj, err := jobs.QueryJob(context.Background(), e.node, job.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if cj.Paid+cj.Fee+cj.Commission+cj.Refund != cj.Escrow || cj.Paid != jobs.PriceFor(uint64(len(want.Tokens)), coordinator.DefaultSplitPrice) {
			t.Fatalf("escrow %s paid out as %s + fee %s + commission %s + refund %s", cj.Escrow, cj.Paid, cj.Fee, cj.Commission, cj.Refund)
		}
		h := set.Hash()
		if cj.ReceiptHash != hex.EncodeToString(h[:]) {
			t.Fatalf("the chain anchors %s, the settlement hashes to %x", cj.ReceiptHash, h)
		}
		// Each server's balance grew by its share, less the fees of any
		// heartbeat it sent meanwhile (one a minute).
		fee := ci.MinFee
		var sum coin.Amount
		for _, pay := range set.StagePayments(cj.Paid) {
			got := e.balance(pay.Server) - before[pay.Server]
			short := pay.Amount - got
			if got > pay.Amount || short%fee != 0 || short/fee > 3 {
				t.Errorf("server %s got %s, its share is %s", pay.Server, got, pay.Amount)
			}
			sum += pay.Amount
		}
		if sum != cj.Paid {
			t.Fatalf("shares sum to %s, paid %s", sum, cj.Paid)
		}
	}
}

// dying is a span server that dies after its after-th forward request:
// from then on every connection is dropped unanswered, as a killed
// process's would be.
type dying struct {
	h     http.Handler
	after int64
	n     atomic.Int64
}

func (d *dying) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && d.n.Add(1) > d.after || d.n.Load() > d.after {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	d.h.ServeHTTP(w, r)
}

// TestSplitJobFailsOverMidGeneration: two servers serve layers 2-3 (the
// devnet's, preferred, and a slower-answering one the test adds); the
// devnet's dies mid-generation. The customer's text still equals the whole
// model's (no gap, no repeat), the route ends on the replacement, and the
// dead server is paid once for the positions its last receipt counts.
func TestSplitJobFailsOverMidGeneration(t *testing.T) {
	die := &dying{after: 12} // the prompt, then 11 tokens
	e := start(t, devnet.Config{SpanMiners: 2, SpanListen: "127.0.0.1:0", Miners: -1, WrapSpan: func(i int, h http.Handler) http.Handler {
		if i == 1 {
			die.h = h
			return die
		}
		return h
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := e.d.Wallets.Service()
	if _, err := svc.Create(ctx, "span-extra", "pw"); err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.ForHome(e.home, keystore.WithKDF(keystore.InsecureTestKDF()))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ks.Unlock("span-extra", "pw")
	if err != nil {
		t.Fatal(err)
	}
	extra := address.FromPubKey(key.PublicKey())
	sub, err := svc.SignAndSubmit(ctx, devnet.GenesisWallet, "123", bank.NewSendMsg(extra, 10*coin.Unit), 0)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := e.node.WaitTx(ctx, sub.TxHash, 50*time.Millisecond); err != nil || r.Status != "committed" {
		t.Fatalf("funding: %+v %v", r, err)
	}
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	sp := swarm.ServedSpan{Name: engine.DefaultModel, Model: m, First: 2, Last: 4}
	srv, err := swarm.NewServer([]swarm.ServedSpan{sp}, swarm.ServerConfig{Threads: 1, Signer: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Its info answers 300 ms late: routing by measured round trip
	// prefers the devnet's 2-3 server while it lives.
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			time.Sleep(300 * time.Millisecond)
		}
		srv.Handler().ServeHTTP(w, r)
	})
	sctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	hash, err := swarm.ModelHash(m)
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(2)
	go func() { defer wg.Done(); _ = swarm.ServeHandler(sctx, ln, slow) }()
	go func() {
		defer wg.Done()
		_ = swarm.Announce(sctx, walletd.WalletSender{S: svc, Name: "span-extra", Password: "pw"}, []swarm.ServedSpan{sp}, "http://"+ln.Addr().String(), hash, time.Hour, nil)
	}()
	servers := waitSpanAgents(t, e, 3)
	var dead address.Address
	for _, a := range servers {
		if a.Endpoint == e.d.SpanURLs[1] {
			dead = a.Address
		}
	}
	want, err := m.Generate(ctx, engine.GenerateRequest{Prompt: "The old man", MaxTokens: 40, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadBefore, extraBefore := e.balance(dead), e.balance(extra)
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "The old man", "max_tokens": 40, "temperature": 0, "split": true})
	e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled", "failed", "expired")
	var res coordinator.JobView
	if err := e.call("GET", "/v1/jobs/"+job.JobID+"/results", e.d.APIKey, nil, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != "settled" || res.Result == nil || *res.Result != want.Text {
		t.Fatalf("job %s (%q), text %v; want %q", res.Status, res.Error, res.Result, want.Text)
	}
	var set jobs.MsgSettleStages
	if err := tx.Unmarshal(res.StageSettlement, &set); err != nil {
		t.Fatal(err)
	}
	if set.Route != 2 || len(set.Stages) != 3 || set.Stages[1].ServerAddr() != extra || set.Stages[2].ServerAddr() != dead {
		t.Fatalf("stages %+v (route %d): want the route ending on the replacement, then the dead server", set.Stages, set.Route)
	}
	if want := uint64(len(want.PromptTokens) + 11); set.Stages[2].Tokens != want {
		t.Fatalf("the dead server's receipt counts %d positions, it ran %d", set.Stages[2].Tokens, want)
	}
	cj, err := jobs.QueryJob(ctx, e.node, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := e.node.Chain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fee := ci.MinFee
	for _, pay := range set.StagePayments(cj.Paid) {
		var got coin.Amount
		switch pay.Server {
		case dead:
			got = e.balance(dead) - deadBefore
		case extra:
			got = e.balance(extra) - extraBefore
		default:
			continue
		}
		if short := pay.Amount - got; got > pay.Amount || short%fee != 0 || short/fee > 3 {
			t.Errorf("server %s got %s, its share is %s", pay.Server, got, pay.Amount)
		}
	}

	// Bad input, refused at submission with nothing escrowed: what a split
	// job cannot be, and, once the replacement is gone too, a route that
	// cannot be completed, naming the layers without a server.
	depBefore := e.deposit()
	for _, c := range []struct {
		req  map[string]any
		code string
		says string
	}{
		{map[string]any{"model": "tolstoy-1m", "prompt": "x", "temperature": 0.8, "split": true}, "invalid_request", "greedy"},
		{map[string]any{"model": "tolstoy-1m", "messages": []map[string]string{{"role": "user", "content": "x"}}, "split": true}, "invalid_request", "prompt"},
	} {
		err := e.call("POST", "/v1/jobs", e.d.APIKey, c.req, nil)
		var ae *httpx.APIError
		if !errors.As(err, &ae) || ae.Code != c.code || !strings.Contains(ae.Message, c.says) {
			t.Errorf("%v: %v, want %s saying %q", c.req, err, c.code, c.says)
		}
	}
	stop()
	wg.Wait()
	err = e.call("POST", "/v1/jobs", e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "x", "split": true}, nil)
	var ae *httpx.APIError
	if !errors.As(err, &ae) || ae.Code != "model_not_served" || !strings.Contains(ae.Message, "no server for layers 2, 3 of tolstoy-1m") {
		t.Errorf("a route without layers 2-3: %v", err)
	}
	if got := e.deposit(); got != depBefore {
		t.Errorf("refused submissions moved the deposit from %s to %s", depBefore, got)
	}
}

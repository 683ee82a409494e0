package coordinator

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// The fakes here model the chain rule the coordinator relies on: money
// leaves a coordinator's reach only release_delay after the block that
// announced it (a deposit withdrawal, a customer's cancellation of an open
// wallet-paid job), while the coordinator's own create_for, assign, settle
// and cancel act at once.

const testModel = "m"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fakeJob struct {
	ChainJob
	fromDeposit bool
}

type fakeDeposit struct {
	amount, withdrawing coin.Amount
	withdrawAt          time.Time
}

type pendingTx struct {
	signer address.Address
	msg    tx.Msg
}

// fakeChain is a ChainView and the coordinator's Sender.
type fakeChain struct {
	mu        sync.Mutex
	clock     *fakeClock
	coord     address.Address
	delay     time.Duration
	height    int64
	blockTime time.Time
	deposits  map[address.Address]*fakeDeposit
	balances  map[address.Address]coin.Amount
	jobs      map[string]*fakeJob
	mempool   []pendingTx
	miners    []ChainMiner
	sent      []string // types of the coordinator's transactions, in order
	failed    []string // "type: why" of transactions the block refused
	censor    bool     // the coordinator's transactions never make it into a block
	sendGate  chan struct{}
	lastDep   map[address.Address]ChainDeposit // deposit answers of the previous block (lagging reads)
	lag       bool
}

func newFakeChain(clock *fakeClock, coord address.Address, delay time.Duration) *fakeChain {
	return &fakeChain{clock: clock, coord: coord, delay: delay, blockTime: clock.Now(), height: 1,
		deposits: map[address.Address]*fakeDeposit{}, balances: map[address.Address]coin.Amount{}, jobs: map[string]*fakeJob{},
		lastDep: map[address.Address]ChainDeposit{}}
}

func (c *fakeChain) Params(context.Context) (ChainParams, error) {
	return ChainParams{ChainID: "aitbc-test", Jobs: jobs.DefaultParams(), ReleaseDelay: c.delay}, nil
}

func (c *fakeChain) Job(_ context.Context, id string) (ChainJob, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j := c.jobs[id]
	if j == nil {
		return ChainJob{}, fmt.Errorf("fake chain: %w", jobs.ErrJobNotFound)
	}
	out := j.ChainJob
	out.Height, out.BlockTime = c.height, c.blockTime
	return out, nil
}

func (c *fakeChain) Deposit(_ context.Context, customer, _ address.Address) (ChainDeposit, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lag {
		return c.lastDep[customer], nil
	}
	return c.depositLocked(customer), nil
}

func (c *fakeChain) depositLocked(customer address.Address) ChainDeposit {
	d := c.deposits[customer]
	if d == nil {
		return ChainDeposit{Height: c.height, BlockTime: c.blockTime}
	}
	return ChainDeposit{Amount: d.amount, Withdrawing: d.withdrawing, WithdrawAt: d.withdrawAt, Height: c.height, BlockTime: c.blockTime}
}

func (c *fakeChain) Miners(context.Context) ([]ChainMiner, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ChainMiner(nil), c.miners...), nil
}

// Send is the coordinator's Sender: its transactions go to the mempool.
func (c *fakeChain) Send(ctx context.Context, msg tx.Msg) (string, error) {
	if c.sendGate != nil {
		select {
		case <-c.sendGate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A batch's items apply (or fail) one by one, as on chain.
	items := []tx.Msg{msg}
	if msg.Type == jobs.TypeBatch {
		var b jobs.MsgBatch
		if err := msg.DecodeBody(&b); err != nil {
			return "", err
		}
		items = b.Msgs
	}
	for _, m := range items {
		c.sent = append(c.sent, m.Type)
		if !c.censor {
			c.mempool = append(c.mempool, pendingTx{signer: c.coord, msg: m})
		}
	}
	return fmt.Sprintf("0x%04d", len(c.sent)), nil
}

// customerTx puts a customer's transaction in the mempool.
func (c *fakeChain) customerTx(t testing.TB, signer address.Address, typ string, body any) {
	t.Helper()
	msg, err := tx.NewMsg(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mempool = append(c.mempool, pendingTx{signer: signer, msg: msg})
}

// commit makes a block at the clock's time: the mempool in order, then
// matured withdrawals, cancellations and expiries.
func (c *fakeChain) commit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a := range c.deposits {
		c.lastDep[a] = c.depositLocked(a)
	}
	c.height++
	c.blockTime = c.clock.Now()
	for _, p := range c.mempool {
		if err := c.apply(p); err != nil {
			c.failed = append(c.failed, p.msg.Type+": "+err.Error())
		}
	}
	c.mempool = nil
	for cust, d := range c.deposits {
		if !d.withdrawAt.IsZero() && !c.blockTime.Before(d.withdrawAt) {
			pay := min(d.withdrawing, d.amount)
			d.amount -= pay
			c.balances[cust] += pay
			d.withdrawing, d.withdrawAt = 0, time.Time{}
		}
	}
	for _, j := range c.jobs {
		switch {
		case j.Status == ChainOpen && !j.CancelAt.IsZero() && !c.blockTime.Before(j.CancelAt):
			c.refund(j, ChainCanceled)
		case (j.Status == ChainOpen || j.Status == ChainAssigned) && !c.blockTime.Before(j.Expires):
			c.refund(j, ChainExpired)
		}
	}
}

func (c *fakeChain) refund(j *fakeJob, status string) {
	j.Status, j.Refund = status, j.Escrow
	if j.fromDeposit {
		c.deposits[j.Customer].amount += j.Escrow
	} else {
		c.balances[j.Customer] += j.Escrow
	}
}

func (c *fakeChain) apply(p pendingTx) error {
	id := func(b []byte) string { return hex.EncodeToString(b) }
	switch p.msg.Type {
	case jobs.TypeDeposit:
		var m jobs.MsgDeposit
		if err := p.msg.DecodeBody(&m); err != nil {
			return err
		}
		d := c.deposits[p.signer]
		if d == nil {
			d = &fakeDeposit{}
			c.deposits[p.signer] = d
		}
		d.amount += m.Amount
	case jobs.TypeWithdraw:
		var m jobs.MsgWithdraw
		if err := p.msg.DecodeBody(&m); err != nil {
			return err
		}
		d := c.deposits[p.signer]
		if d == nil || d.amount < d.withdrawing+m.Amount {
			return errors.New("withdrawal exceeds the deposit")
		}
		d.withdrawing += m.Amount
		d.withdrawAt = c.blockTime.Add(c.delay) // a later announcement restarts the clock
	case jobs.TypeCreateFor:
		var m jobs.MsgCreateFor
		if err := p.msg.DecodeBody(&m); err != nil {
			return err
		}
		cust, _ := address.FromBytes(m.Customer)
		d := c.deposits[cust]
		if d == nil || d.amount < m.Spec.MaxPrice { // the whole amount, withdrawing included
			return jobs.ErrDepositLow
		}
		d.amount -= m.Spec.MaxPrice
		c.create(m.Spec, cust, p.signer, true)
	case jobs.TypeCreate:
		var m jobs.MsgCreate
		if err := p.msg.DecodeBody(&m); err != nil {
			return err
		}
		coord, _ := address.FromBytes(m.Coordinator)
		c.create(m.Spec, p.signer, coord, false)
	case jobs.TypeAssign:
		var m jobs.MsgAssign
		if err := p.msg.DecodeBody(&m); err != nil {
			return err
		}
		j := c.jobs[id(m.ID)]
		switch {
		case j == nil:
			return jobs.ErrJobNotFound
		case p.signer != j.Coordinator:
			return jobs.ErrNotCoordinator
		case j.Status != ChainOpen && j.Status != ChainAssigned, !c.blockTime.Before(j.Expires):
			return jobs.ErrJobState
		}
		miner, _ := address.FromBytes(m.Miner)
		j.Status, j.Miner, j.CancelAt = ChainAssigned, &miner, time.Time{} // an assignment voids a pending cancellation
	case jobs.TypeSettle:
		var m jobs.MsgSettle
		if err := p.msg.DecodeBody(&m); err != nil {
			return err
		}
		j := c.jobs[id(m.Receipt.JobID)]
		if j == nil || j.Status != ChainAssigned || string(m.Receipt.Miner) != string(j.Miner[:]) {
			return jobs.ErrJobState
		}
		split := jobs.Split(jobs.DefaultParams(), j.Escrow, m.Receipt.Price)
		c.balances[*j.Miner] += split.Price
		j.Status, j.Paid, j.Fee, j.Refund = ChainSettled, split.Price, split.Fee, split.Refund
		if j.fromDeposit {
			c.deposits[j.Customer].amount += split.Refund
		} else {
			c.balances[j.Customer] += split.Refund
		}
	case jobs.TypeCancel:
		var m jobs.MsgCancel
		if err := p.msg.DecodeBody(&m); err != nil {
			return err
		}
		j := c.jobs[id(m.ID)]
		switch {
		case j == nil:
			return jobs.ErrJobNotFound
		case j.Status != ChainOpen:
			return jobs.ErrJobState
		case p.signer == j.Coordinator:
			c.refund(j, ChainCanceled) // the coordinator may cancel at once
		case p.signer == j.Customer && !j.fromDeposit:
			if j.CancelAt.IsZero() {
				j.CancelAt = c.blockTime.Add(c.delay) // only scheduled: the coordinator may still assign it
			}
		case p.signer == j.Customer:
			c.refund(j, ChainCanceled)
		default:
			return jobs.ErrNotCustomer
		}
	default:
		return fmt.Errorf("fake chain: %s not modelled", p.msg.Type)
	}
	return nil
}

func (c *fakeChain) create(s jobs.Spec, cust, coord address.Address, fromDeposit bool) {
	c.jobs[hex.EncodeToString(s.ID)] = &fakeJob{fromDeposit: fromDeposit, ChainJob: ChainJob{
		ID: hex.EncodeToString(s.ID), Status: ChainOpen, Customer: cust, Coordinator: coord, Model: s.Model,
		PromptHash: hex.EncodeToString(s.PromptHash), MaxTokens: s.MaxTokens, Escrow: s.MaxPrice,
		Expires: c.blockTime.Add(time.Duration(s.TTLSeconds) * time.Second),
	}}
}

func (c *fakeChain) job(id string) fakeJob {
	c.mu.Lock()
	defer c.mu.Unlock()
	if j := c.jobs[id]; j != nil {
		return *j
	}
	return fakeJob{}
}

func (c *fakeChain) sentTypes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.sent...)
}

func (c *fakeChain) mempoolTypes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.mempool {
		out = append(out, p.msg.Type)
	}
	return out
}

func (c *fakeChain) balance(a address.Address) coin.Amount {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.balances[a]
}

// harness is a coordinator over an in-memory store, a fake chain and a
// fake clock, with its loops running.
type harness struct {
	t      testing.TB
	ctx    context.Context
	s      *Service
	chain  *fakeChain
	clock  *fakeClock
	st     store.Store
	tenant *store.Tenant
	apiKey string
	kill   func() // stops the coordinator's loops without a clean shutdown
}

func newKey(t testing.TB) (ed25519.PrivateKey, address.Address) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, address.FromPubKey(pub)
}

// testLogger logs to stderr with AITBC_TEST_LOG set, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("AITBC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newHarness(t testing.TB, delay time.Duration, tune ...func(*Config)) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	_, coord := newKey(t)
	chain := newFakeChain(clock, coord, delay)
	return newHarnessOn(t, chain, tune...)
}

// newHarnessOn starts a coordinator over an existing fake chain and, if
// st is given, store (a restart).
func newHarnessOn(t testing.TB, chain *fakeChain, tune ...func(*Config)) *harness {
	t.Helper()
	st, err := store.OpenSQLite(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return startHarness(t, chain, st, tune...)
}

func startHarness(t testing.TB, chain *fakeChain, st store.Store, tune ...func(*Config)) *harness {
	t.Helper()
	cfg := Config{Store: st, View: chain, Sender: chain, Address: chain.coord, Logger: testLogger(), Now: chain.clock.Now,
		AckTimeout: time.Hour, RefreshEvery: time.Hour, TickEvery: time.Hour, MaxAttempts: 3}
	for _, f := range tune {
		f(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Let the follow-up loop's first pass end: a registry read it began
	// before a test registers a miner would drop that miner's session.
	waitFor(t, "the first follow-up pass", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.followPass > 0
	})
	h := &harness{t: t, ctx: ctx, s: s, chain: chain, clock: chain.clock, st: st, kill: cancel}
	_, cust := newKey(t)
	if h.tenant, h.apiKey, err = s.AddTenant(ctx, "customer", cust); err != nil {
		t.Fatal(err)
	}
	return h
}

// fund gives the tenant a committed deposit.
func (h *harness) fund(amount coin.Amount) {
	h.chain.customerTx(h.t, h.tenant.Address, jobs.TypeDeposit, jobs.MsgDeposit{Coordinator: h.chain.coord[:], Amount: amount})
	h.chain.commit()
}

// block commits a block and lets the coordinator read the chain once.
func (h *harness) block() {
	h.chain.commit()
	h.s.followJobs(h.ctx)
}

// followAll runs enough follow passes that queued jobs are looked at too.
func (h *harness) followAll() {
	for range queuedFollowEvery {
		h.s.followJobs(h.ctx)
	}
}

func (h *harness) submit(r JobRequest) *store.Job {
	h.t.Helper()
	j, err := h.s.Submit(h.ctx, h.tenant, r)
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return j
}

func (h *harness) job(id string) *store.Job {
	h.t.Helper()
	j, err := h.s.Job(h.ctx, h.tenant, id)
	if err != nil {
		h.t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// waitFor polls cond until it holds; it fails the test after a long
// while (a condition that never comes, not a slow one).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) waitStatus(id, status string) *store.Job {
	h.t.Helper()
	var j *store.Job
	waitFor(h.t, "job "+status, func() bool {
		j = h.job(id)
		return j.Status == status
	})
	return j
}

// waitSent waits until the coordinator has sent n transactions of type typ.
func (h *harness) waitSent(typ string, n int) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%d %s sent", n, typ), func() bool {
		c := 0
		for _, s := range h.chain.sentTypes() {
			if s == typ {
				c++
			}
		}
		return c >= n
	})
}

// fakeMiner is a miner session driven by the test.
type fakeMiner struct {
	h     *harness
	key   ed25519.PrivateKey
	addr  address.Address
	price coin.Amount
	mc    *minerConn
}

func (h *harness) addMiner(price coin.Amount) *fakeMiner {
	h.t.Helper()
	key, addr := newKey(h.t)
	h.chain.mu.Lock()
	h.chain.miners = append(h.chain.miners, ChainMiner{Address: addr, PubKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)),
		Models: []string{testModel}, PricePer1k: price, Stake: 100 * coin.Unit, Status: "active"})
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	m := &fakeMiner{h: h, key: key, addr: addr, price: price}
	m.connect()
	return m
}

// connect opens a new session for the miner.
func (m *fakeMiner) connect() {
	m.h.t.Helper()
	m.mc = &minerConn{addr: m.addr, pub: m.key.Public().(ed25519.PublicKey), models: []string{testModel}, slots: 1,
		backend: "fake", send: make(chan minerproto.Envelope, 64)}
	if err := m.h.s.admit(m.mc); err != nil {
		m.h.t.Fatal(err)
	}
}

// next returns the next message the coordinator sends the miner.
func (m *fakeMiner) next() minerproto.Envelope {
	m.h.t.Helper()
	select {
	case e := <-m.mc.send:
		return e
	case <-time.After(20 * time.Second):
		m.h.t.Fatal("miner: no message from the coordinator")
	}
	return minerproto.Envelope{}
}

// nextJob waits for a job and acknowledges it.
func (m *fakeMiner) nextJob() *minerproto.Job {
	m.h.t.Helper()
	e := m.next()
	if e.Type != minerproto.TypeJob {
		m.h.t.Fatalf("miner: got %s, want a job", e.Type)
	}
	m.send(minerproto.Envelope{Type: minerproto.TypeAck, JobID: e.Job.ID, Attempt: e.Job.Attempt})
	return e.Job
}

func (m *fakeMiner) send(e minerproto.Envelope) { m.h.s.handle(m.h.ctx, m.mc, e) }

func (m *fakeMiner) tokens(j *minerproto.Job, texts ...string) {
	for i, t := range texts {
		m.send(minerproto.Envelope{Type: minerproto.TypeToken, JobID: j.ID, Attempt: j.Attempt, Seq: i + 1, Text: t})
	}
}

// finish sends the result with a receipt signed by the miner.
func (m *fakeMiner) finish(j *minerproto.Job, text string, tokensOut int) {
	m.h.t.Helper()
	id, _ := hex.DecodeString(j.ID)
	ph, _ := hex.DecodeString(j.PromptHash)
	cust, _ := address.Parse(j.Customer)
	res := sha256.Sum256([]byte(text))
	r := jobs.Receipt{JobID: id, ChainID: j.ChainID, Miner: m.addr[:], Customer: cust[:], Model: j.Model, PromptHash: ph, ResultHash: res[:],
		TokensIn: 2, TokensOut: uint64(tokensOut), StartMs: 1, EndMs: 2, Price: jobs.PriceFor(uint64(tokensOut), m.price)}
	r.Sign(m.key)
	b, err := r.Encode()
	if err != nil {
		m.h.t.Fatal(err)
	}
	m.send(minerproto.Envelope{Type: minerproto.TypeResult, JobID: j.ID, Attempt: j.Attempt, Text: text, TokensIn: 2, TokensOut: tokensOut, FinishReason: "stop", Receipt: b})
}

// drain reads a subscription to its end and returns its events.
func drain(t testing.TB, ch <-chan Event) []Event {
	t.Helper()
	var out []Event
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-time.After(20 * time.Second):
			last := Event{}
			if len(out) > 0 {
				last = out[len(out)-1]
			}
			t.Fatalf("stream did not end; %d events so far, the last %+v", len(out), last)
		}
	}
}

// recv returns the next event of a subscription.
func recv(t testing.TB, ch <-chan Event) Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

// recvToken skips status events up to the next token.
func recvToken(t testing.TB, ch <-chan Event) Event {
	t.Helper()
	for {
		if e := recv(t, ch); e.Type != EventStatus {
			return e
		}
	}
}

func tokensOf(evs []Event) (text string, n int) {
	for _, e := range evs {
		if e.Type == EventToken {
			text += e.Text
			n++
		}
	}
	return text, n
}

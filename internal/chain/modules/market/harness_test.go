package market_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

const chainID = "aitbc-market-test"

// acct is a chain account with its key and next nonce.
type acct struct {
	name  string
	priv  ed25519.PrivateKey
	addr  address.Address
	nonce uint64
}

func newAcct(name string, seed byte) *acct {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	return &acct{name: name, priv: priv, addr: address.FromPubKey(priv.Public().(ed25519.PublicKey))}
}

// chain is a single application driven block by block, with every block
// audited (app.WithInvariants: Commit fails on a broken invariant).
type chain struct {
	t      testing.TB
	store  *state.Store
	app    *app.App
	height int64
	now    int64 // block time of the next block, unix s
	fee    coin.Amount
}

var proposer = newAcct("validator", 99)

// newChain starts a chain funding each account with bal, with market
// parameters mp (nil: defaults) and a release delay of 0 for jobs.
func newChain(t testing.TB, mp *market.Params, bal coin.Amount, accts ...*acct) *chain {
	t.Helper()
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := app.New(st, chainID, nil, app.WithInvariants())
	if err != nil {
		t.Fatal(err)
	}
	jp := jobs.DefaultParams()
	jp.ReleaseDelay = 0
	jb, _ := json.Marshal(jp)
	// No block reward: every balance and record here is what the market
	// (and the jobs it pays for) moved, so "no state change" means that.
	rp := rewards.DefaultParams()
	rp.InitialReward = 0
	rb, _ := json.Marshal(rp)
	g := app.Genesis{Params: app.DefaultParams(), Modules: map[string]json.RawMessage{"jobs": jb, rewards.Name: rb}}
	if mp != nil {
		b, _ := json.Marshal(mp)
		g.Modules["market"] = b
	}
	for _, x := range accts {
		g.Accounts = append(g.Accounts, app.GenesisAccount{Address: x.addr, Balance: bal})
	}
	gb, _ := json.Marshal(g)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: gb, Time: time.Unix(1_700_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	return &chain{t: t, store: st, app: a, now: 1_700_000_001, fee: app.DefaultParams().MinFee}
}

// tx signs msg from who with its next nonce.
func (c *chain) tx(who *acct, msg tx.Msg) []byte {
	x := &tx.Tx{ChainID: chainID, Nonce: who.nonce, Fee: c.fee, Msg: msg}
	x.Sign(who.priv)
	b, err := x.Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// result is one transaction's outcome in a block.
type result struct {
	code      uint32
	codespace string
	log       string
}

// Err rebuilds the registered error of a refused transaction.
func (r result) Err() error {
	if r.code == 0 {
		return nil
	}
	if e := errs.Lookup(r.codespace, r.code); e != nil {
		return fmt.Errorf("%w: %s", e, r.log)
	}
	return errors.New(r.log)
}

// block commits a block of raw transactions at c.now and moves the clock
// one second. Nonces of the signers of successful transactions advance.
func (c *chain) block(signers []*acct, raws ...[]byte) []result {
	c.t.Helper()
	c.height++
	r, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: c.height, Time: time.Unix(c.now, 0), Txs: raws, ProposerAddress: proposer.addr[:],
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err) // a broken invariant stops here
	}
	c.now++
	out := make([]result, len(raws))
	for i, x := range r.TxResults {
		out[i] = result{x.Code, x.Codespace, x.Log}
		if x.Code == 0 && signers != nil {
			signers[i].nonce++
		}
	}
	return out
}

// do runs one message from who in its own block and returns its error.
func (c *chain) do(who *acct, msg tx.Msg) error {
	c.t.Helper()
	return c.block([]*acct{who}, c.tx(who, msg))[0].Err()
}

// must runs a message that has to succeed.
func (c *chain) must(who *acct, msg tx.Msg) {
	c.t.Helper()
	if err := c.do(who, msg); err != nil {
		c.t.Fatalf("%s %s: %v", who.name, msg.Type, err)
	}
}

// advance moves block time by d seconds with one empty block at the end
// (timed work due in between is swept by it).
func (c *chain) advance(d int64) {
	c.t.Helper()
	c.now += d - 1
	c.block(nil)
}

func (c *chain) balance(a address.Address) coin.Amount {
	var b coin.Amount
	if err := c.app.Committed(func(q module.Query) error {
		var err error
		b, err = c.app.Bank().Balance(q.State, a)
		return err
	}); err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *chain) burned() coin.Amount {
	var s coin.Amount
	_ = c.app.Committed(func(q module.Query) error {
		sp, err := c.app.Bank().Supply(q.State)
		s = sp.Burned
		return err
	})
	return s
}

// route calls a module route against committed state, as the REST server
// does.
type req struct {
	path  map[string]string
	query map[string]string
}

func (r req) PathValue(n string) string { return r.path[n] }
func (r req) Param(n string) string     { return r.query[n] }

func (c *chain) query(path string, r req) (any, error) {
	c.t.Helper()
	var mk *market.Keeper
	for _, m := range c.app.Modules() {
		if k, ok := m.(*market.Keeper); ok {
			mk = k
		}
	}
	for _, rt := range mk.Routes() {
		if rt.Path == path {
			var out any
			err := c.app.Committed(func(q module.Query) error {
				var err error
				out, err = rt.Handle(q, r)
				return err
			})
			return out, err
		}
	}
	c.t.Fatalf("no route %s", path)
	return nil, nil
}

func (c *chain) agreement(id string) market.AgreementView {
	c.t.Helper()
	v, err := c.query("/api/v1/market/agreements/{id}", req{path: map[string]string{"id": id}})
	if err != nil {
		c.t.Fatal(err)
	}
	return v.(market.AgreementView)
}

func (c *chain) service(id string) market.ServiceDetail {
	c.t.Helper()
	v, err := c.query("/api/v1/market/services/{id}", req{path: map[string]string{"id": id}})
	if err != nil {
		c.t.Fatal(err)
	}
	return v.(market.ServiceDetail)
}

func (c *chain) provider(a address.Address) market.ProviderView {
	c.t.Helper()
	v, err := c.query("/api/v1/market/providers/{address}", req{path: map[string]string{"address": a.String()}})
	if err != nil {
		c.t.Fatal(err)
	}
	return v.(market.ProviderView)
}

// bids lists a service's bids, oldest first.
func (c *chain) bids(service string) []market.BidView {
	v, err := c.query("/api/v1/market/bids", req{query: map[string]string{"service": service}})
	if err != nil {
		c.t.Fatal(err)
	}
	return v.(market.BidList).Bids
}

func (c *chain) payouts(agreement string) []market.PayoutView {
	return c.agreement(agreement).Payouts
}

// fingerprint hashes every record a refused message might have touched:
// the market's, balances and supply, nonces, jobs, miners — all but the
// modules' sweep cursors, which move with every block.
func (c *chain) fingerprint() [32]byte {
	h := sha256.New()
	_ = c.app.Committed(func(q module.Query) error {
		for _, p := range []string{"market/", "bank/", "auth/", "jobs/j/", "jobs/d/", "miners/m/"} {
			_ = q.State.Iterate([]byte(p), false, func(k, v []byte) bool {
				if bytes.HasPrefix(k, []byte("market/e/")) {
					return true
				}
				h.Write(k)
				h.Write(v)
				return true
			})
		}
		return nil
	})
	return [32]byte(h.Sum(nil))
}

// miner registers m as a miner serving model at pricePer1k.
func (c *chain) miner(m *acct, model string, pricePer1k coin.Amount) {
	c.t.Helper()
	msg, err := miners.NewRegisterMsg(miners.Capabilities{Models: []string{model}, GPU: "NVIDIA RTX 4090", GPUMemoryMB: 24576, PricePer1k: pricePer1k}, 100*coin.Unit)
	if err != nil {
		c.t.Fatal(err)
	}
	c.must(m, msg)
}

var promptHash = sha256.Sum256([]byte("Generate a futuristic cityscape"))

// createJob creates a wallet-paid job for cust through coord with escrow,
// and returns its id; the caller binds it and settleJob settles it.
func (c *chain) createJob(cust, coord *acct, seed byte, escrow coin.Amount, model string) []byte {
	c.t.Helper()
	id := bytes.Repeat([]byte{seed}, jobs.IDLen)
	c.must(cust, jobs.NewCreateMsg(jobs.Spec{ID: id, Model: model, PromptHash: promptHash[:], MaxTokens: 500, MaxPrice: escrow, TTLSeconds: 600}, coord.addr))
	return id
}

// settleJob assigns job id to m and settles it with m's receipt for tokens.
func (c *chain) settleJob(id []byte, cust, coord, m *acct, model string, tokens uint64, pricePer1k coin.Amount) {
	c.t.Helper()
	c.must(coord, jobs.NewAssignMsg(id, m.addr))
	r := jobs.Receipt{JobID: id, ChainID: chainID, Customer: cust.addr[:], Model: model, PromptHash: promptHash[:], ResultHash: promptHash[:],
		TokensOut: tokens, Price: jobs.PriceFor(tokens, pricePer1k)}
	r.Sign(m.priv)
	c.must(coord, jobs.NewSettleMsg(r))
}

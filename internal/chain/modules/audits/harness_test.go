package audits_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

const chainID = "aitbc-audits-test"

type key struct {
	priv ed25519.PrivateKey
	addr address.Address
}

func newKey(seed byte) key {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	return key{priv, address.FromPubKey(priv.Public().(ed25519.PublicKey))}
}

var (
	alice = newKey(1) // the customer
	coord = newKey(2)
	miner = newKey(3)
	val   = newKey(4)
	v1    = newKey(11)
	v2    = newKey(12)
	v3    = newKey(13)
	keys  = []key{alice, coord, miner, val, v1, v2, v3}
)

const genesisEach = 1_000 * coin.Unit

// chain is the real application (every module, as modules.New wires
// them) on an in-memory store, every block audited by its invariants.
// Each block's hash is chosen by the test (hash), as CometBFT's would be
// by the block's contents.
type chain struct {
	t      *testing.T
	app    *app.App
	height int64
	nonces map[address.Address]uint64
	hash   func(height int64) []byte
}

func defaultHash(h int64) []byte {
	s := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("block"), uint64(h)))
	return s[:]
}

func newChain(t *testing.T, p audits.Params) *chain {
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
	ap, _ := json.Marshal(p)
	jp := jobs.DefaultParams()
	jb, _ := json.Marshal(jp)
	g := app.Genesis{Params: app.DefaultParams(), Modules: map[string]json.RawMessage{
		"audits": ap, "jobs": jb,
		"rewards": json.RawMessage(`{"initial_reward":0}`), "faucet": json.RawMessage(`{"enabled":false}`),
	}}
	g.Params.TreasuryBps = 0
	for _, k := range keys {
		g.Accounts = append(g.Accounts, app.GenesisAccount{Address: k.addr, Balance: genesisEach})
	}
	gb, _ := json.Marshal(g)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	return &chain{t: t, app: a, nonces: map[address.Address]uint64{}, hash: defaultHash}
}

func (c *chain) sign(k key, msg tx.Msg) []byte {
	x := &tx.Tx{ChainID: chainID, Nonce: c.nonces[k.addr], Fee: app.DefaultParams().MinFee, Msg: msg}
	x.Sign(k.priv)
	b, _ := x.Encode()
	return b
}

// block commits a block of the given signed messages and returns their results.
func (c *chain) block(txs ...[]byte) []*abci.ExecTxResult {
	c.t.Helper()
	c.height++
	r, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: c.height, Time: time.Unix(1_700_000_000+c.height, 0), Txs: txs, ProposerAddress: val.addr[:], Hash: c.hash(c.height),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	return r.TxResults
}

// do runs one message in its own block.
func (c *chain) do(k key, msg tx.Msg) *abci.ExecTxResult {
	c.t.Helper()
	r := c.block(c.sign(k, msg))[0]
	if r.Code == 0 {
		c.nonces[k.addr]++
	}
	return r
}

func (c *chain) ok(k key, msg tx.Msg) {
	c.t.Helper()
	if r := c.do(k, msg); r.Code != 0 {
		c.t.Fatalf("%s: %s", msg.Type, r.Log)
	}
}

// refused checks msg fails with want. The app discards a failed
// transaction's writes, its fee and nonce included; the tests check the
// records the message would have changed.
func (c *chain) refused(k key, msg tx.Msg, want *errs.Error) {
	c.t.Helper()
	r := c.do(k, msg)
	got := errs.Lookup(r.Codespace, r.Code)
	if got == nil || !errors.Is(got, want) {
		c.t.Fatalf("%s: got %s/%d %q, want %s", msg.Type, r.Codespace, r.Code, r.Log, want.Name)
	}
}

func (c *chain) balance(a address.Address) coin.Amount {
	var b coin.Amount
	_ = c.app.Committed(func(q module.Query) error {
		var err error
		b, err = c.app.Bank().Balance(q.State, a)
		return err
	})
	return b
}

func (c *chain) supply() bank.Supply {
	var s bank.Supply
	_ = c.app.Committed(func(q module.Query) error {
		var err error
		s, err = c.app.Bank().Supply(q.State)
		return err
	})
	return s
}

func keeper[K module.Module](c *chain) K {
	for _, m := range c.app.Modules() {
		if k, ok := m.(K); ok {
			return k
		}
	}
	panic("no such module")
}

func (c *chain) check(id []byte) *audits.Check {
	var ch *audits.Check
	_ = c.app.Committed(func(q module.Query) error {
		var err error
		ch, err = keeper[*audits.Keeper](c).Check(q.State, id)
		return err
	})
	return ch
}

func (c *chain) verifier(a address.Address) *audits.Verifier {
	var v *audits.Verifier
	_ = c.app.Committed(func(q module.Query) error {
		var err error
		v, err = keeper[*audits.Keeper](c).Verifier(q.State, a)
		return err
	})
	return v
}

func (c *chain) minerRecord(a address.Address) audits.MinerRecord {
	var m audits.MinerRecord
	_ = c.app.Committed(func(q module.Query) error {
		var err error
		m, err = keeper[*audits.Keeper](c).Miner(q.State, a)
		return err
	})
	return m
}

func (c *chain) operator(a address.Address) staking.Operator {
	var o *staking.Operator
	_ = c.app.Committed(func(q module.Query) error {
		var err error
		o, err = keeper[*staking.Keeper](c).GetOperator(q.State, a)
		return err
	})
	if o == nil {
		return staking.Operator{}
	}
	return *o
}

func (c *chain) facts(a address.Address) market.Facts {
	var f market.Facts
	_ = c.app.Committed(func(q module.Query) error {
		var err error
		f, err = keeper[*market.Keeper](c).Facts(q.State, a)
		return err
	})
	return f
}

func keyOf(a address.Address) key {
	for _, k := range keys {
		if k.addr == a {
			return k
		}
	}
	panic("unknown key " + a.String())
}

var fee = app.DefaultParams().MinFee

const pricePer1k = 2 * coin.Unit

var prompt = sha256.Sum256([]byte("Once upon a time"))

func jobID(b byte) []byte {
	id := make([]byte, jobs.IDLen)
	id[0] = b
	return id
}

// setup registers the miner (staked stake in the staking module) and
// the verifiers.
func (c *chain) setup(stake coin.Amount, verifiers ...key) {
	c.t.Helper()
	m, err := miners.NewRegisterMsg(miners.Capabilities{Models: []string{"tolstoy-1m", "data-processing"}, GPU: "cpu", PricePer1k: pricePer1k}, 100*coin.Unit)
	if err != nil {
		c.t.Fatal(err)
	}
	c.ok(miner, m)
	if stake > 0 {
		c.ok(miner, staking.NewStakeMsg(miner.addr, stake))
	}
	for _, v := range verifiers {
		c.ok(v, audits.NewRegisterMsg(100*coin.Unit))
	}
}

// job creates and assigns a job and returns the signed settlement (with
// an attestation when attested) for the caller to put in a block.
func (c *chain) job(id []byte, tokens uint64, attested bool) []byte {
	c.t.Helper()
	return c.jobOf(id, "tolstoy-1m", tokens, attested)
}

// jobOf is job with another model (a data-processing job's).
func (c *chain) jobOf(id []byte, model string, tokens uint64, attested bool) []byte {
	c.t.Helper()
	c.ok(alice, jobs.NewCreateMsg(jobs.Spec{ID: id, Model: model, PromptHash: prompt[:], MaxTokens: 200, MaxPrice: 10 * coin.Unit, TTLSeconds: 600}, coord.addr))
	c.ok(coord, jobs.NewAssignMsg(id, miner.addr))
	res := sha256.Sum256([]byte("It was awkward of the French."))
	r := jobs.Receipt{JobID: id, ChainID: chainID, Customer: alice.addr[:], Model: model, PromptHash: prompt[:],
		ResultHash: res[:], TokensIn: 5, TokensOut: tokens, StartMs: 1, EndMs: 2, Price: jobs.PriceFor(tokens, pricePer1k)}
	if attested {
		h := sha256.Sum256(append([]byte("attestation of "), id...))
		r.AttestHash = h[:]
	}
	r.Sign(miner.priv)
	raw := c.sign(coord, jobs.NewSettleMsg(r))
	c.nonces[coord.addr]++
	return raw
}

// settle settles in its own block and fails the test unless it succeeds.
func (c *chain) settle(raw []byte) {
	c.t.Helper()
	if r := c.block(raw)[0]; r.Code != 0 {
		c.t.Fatalf("settle: %s", r.Log)
	}
}

// conserved checks the supply: nothing created, burns accounted.
func (c *chain) conserved() {
	c.t.Helper()
	s := c.supply()
	if s.Circulating+s.Burned != coin.Amount(len(keys))*genesisEach {
		c.t.Fatalf("circulating %s + burned %s != genesis %s", s.Circulating, s.Burned, coin.Amount(len(keys))*genesisEach)
	}
	if err := c.app.Audit().Err(); err != nil {
		c.t.Fatal(err)
	}
}

func heldAddr() address.Address { return address.Module(audits.HeldAccount) }

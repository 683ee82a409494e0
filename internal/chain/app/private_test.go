package app_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
)

var (
	zkOnce   sync.Once
	zkKeys   zkKeyPair
	zkProver *zkTestProver
	zkErr    error
)

// privateKeys runs one setup for the package's tests (about a second).
func privateKeys(t *testing.T) (zkKeyPair, *zkTestProver) {
	t.Helper()
	zkOnce.Do(func() {
		zkKeys, zkProver, zkErr = zkSetup()
	})
	if zkErr != nil {
		t.Fatal(zkErr)
	}
	return zkKeys, zkProver
}

// newPrivateMarket is newMarket with the verifying key in the jobs genesis.
func newPrivateMarket(t *testing.T, vk []byte) *market {
	jp := jobs.DefaultParams()
	jp.ReleaseDelay = releaseDelay
	jb, _ := json.Marshal(jp)
	if vk != nil {
		var fields map[string]any
		_ = json.Unmarshal(jb, &fields)
		fields["private_vk"] = base64.StdEncoding.EncodeToString(vk)
		jb, _ = json.Marshal(fields)
	}
	h := newHarnessWith(t, fixedSupply(app.Genesis{
		Params:   app.DefaultParams(),
		Accounts: []app.GenesisAccount{{Address: alice.addr, Balance: 1_000 * coin.Unit}},
		Modules:  map[string]json.RawMessage{"jobs": jb},
	}))
	m := &market{harness: h, nonces: map[address.Address]uint64{}}
	for _, k := range []key{coord, minerA, minerB} {
		m.mustOK(m.do(alice, bank.NewSendMsg(k.addr, 200*coin.Unit)))
	}
	return m
}

// privateRun is a private job's hidden usage and its miner's signed
// private receipt.
type privateRun struct {
	open    chainzk.Opening
	receipt jobs.PrivateReceipt
}

func (m *market) privateRun(id []byte, miner key, tokensOut, price uint64) privateRun {
	m.t.Helper()
	bl, err := newBlinding()
	if err != nil {
		m.t.Fatal(err)
	}
	o := chainzk.Opening{TokensIn: 5, TokensOut: tokensOut, PricePer1000: price, Blinding: bl}
	c, err := chainzk.Commit(o)
	if err != nil {
		m.t.Fatal(err)
	}
	pub := receipt(id, miner, tokensOut, jobs.PriceFor(tokensOut, coin.Amount(price)))
	r := jobs.PrivateOf(&pub, c)
	r.SignWith(miner.priv.Public().(ed25519.PublicKey), func(b []byte) []byte { return ed25519.Sign(miner.priv, b) })
	return privateRun{open: o, receipt: r}
}

// prove is what the coordinator does: the statement from the chain's own
// Split, proven for the opening.
func (m *market) prove(p *zkTestProver, id []byte, run privateRun) (coin.Amount, []byte) {
	m.t.Helper()
	j := m.job(id)
	paid := jobs.PriceFor(run.open.TokensOut, coin.Amount(run.open.PricePer1000))
	var c [chainzk.CommitmentSize]byte
	copy(c[:], run.receipt.Commitment)
	st, err := jobs.PrivateStatement(jobs.DefaultParams(), j, c, paid)
	if err != nil {
		m.t.Fatal(err)
	}
	proof, err := p.Prove(st, run.open)
	if err != nil {
		m.t.Fatal(err)
	}
	return paid, proof
}

// snapshot is what a refused settlement must leave as it was.
func (m *market) snapshot(id []byte) string {
	return fmt.Sprintf("alice %s miner %s escrow %s job %+v", m.balance(alice.addr), m.balance(minerA.addr),
		m.balance(address.Module(jobs.EscrowAccount)), *m.job(id))
}

func (m *market) privacy(id []byte) jobs.PrivacyView {
	var v jobs.PrivacyView
	_ = m.app.Committed(func(q module.Query) error {
		out, err := routeOf(keeper[*jobs.Keeper](m.harness), "/api/v1/jobs/{id}/privacy").Handle(q, params{"id": fmt.Sprintf("%x", id)})
		v, _ = out.(jobs.PrivacyView)
		return err
	})
	return v
}

func TestPrivateJobSettlesWithProofAndRefusesForgeries(t *testing.T) {
	keys, prover := privateKeys(t)
	m := newPrivateMarket(t, keys.Verifying)
	price := 2*coin.Unit + 7 // per 1k tokens: 150 tokens cost 300,001.05 units, rounded down
	m.register(minerA, price, "tolstoy-1m")
	aliceBefore := m.balance(alice.addr)
	minerBefore := m.balance(minerA.addr)
	txFee := app.DefaultParams().MinFee

	id := jobID(1)
	m.mustOK(m.do(alice, jobs.NewCreatePrivateMsg(spec(id, 10*coin.Unit, 600), coord.addr)))
	if v := m.privacy(id); !v.Private || v.Commitment != "" {
		t.Fatalf("privacy before settlement: %+v", v)
	}
	coordBefore := m.balance(coord.addr)
	m.mustOK(m.assign(id, minerA))
	run := m.privateRun(id, minerA, 150, uint64(price))
	paid, proof := m.prove(prover, id, run)
	if paid != 300_001 {
		t.Fatalf("paid %s", paid)
	}

	// Every way to get paid without the proof is refused, and moves nothing.
	before := m.snapshot(id)
	forged := append([]byte(nil), proof...)
	forged[5] ^= 1
	other := m.privateRun(id, minerA, 150, uint64(price)) // same usage, another blinding: another commitment
	// The mempool refuses a forged proof: it never reaches a block.
	if r := m.check(m.sign(coord, jobs.NewSettlePrivateMsg(run.receipt, paid, forged))); r.Code != jobs.ErrPrivateProof.Code || r.Codespace != "jobs" {
		t.Fatalf("CheckTx of a forged proof: %d/%s %q", r.Code, r.Codespace, r.Log)
	}
	for _, c := range []struct {
		name string
		by   key
		msg  func() []byte
		want *errs.Error
	}{
		{"forged proof", coord, func() []byte { return m.sign(coord, jobs.NewSettlePrivateMsg(run.receipt, paid, forged)) }, jobs.ErrPrivateProof},
		{"proof for another price", coord, func() []byte { return m.sign(coord, jobs.NewSettlePrivateMsg(run.receipt, paid+1, proof)) }, jobs.ErrPrivateProof},
		{"proof for another commitment", coord, func() []byte { return m.sign(coord, jobs.NewSettlePrivateMsg(other.receipt, paid, proof)) }, jobs.ErrPrivateProof},
		{"commitment the miner did not sign", coord, func() []byte {
			r := run.receipt
			r.Commitment = other.receipt.Commitment
			return m.sign(coord, jobs.NewSettlePrivateMsg(r, paid, proof))
		}, jobs.ErrReceiptInvalid},
		{"commitment not a scalar", coord, func() []byte {
			r := run.receipt
			r.Commitment = make([]byte, 32)
			r.Commitment[0] = 0xff
			return m.sign(coord, jobs.NewSettlePrivateMsg(r, paid, proof))
		}, jobs.ErrCommitment},
		{"oversized proof", coord, func() []byte {
			return m.sign(coord, jobs.NewSettlePrivateMsg(run.receipt, paid, make([]byte, chainzk.MaxProofSize+1)))
		}, jobs.ErrPrivateProof},
		{"settled publicly", coord, func() []byte {
			return m.sign(coord, jobs.NewSettleMsg(receipt(id, minerA, 150, jobs.PriceFor(150, price))))
		}, jobs.ErrPrivateJob},
	} {
		r := m.block(c.msg()).TxResults[0]
		m.mustFail(r, c.want)
		if r.Code == 0 {
			m.nonces[c.by.addr]++
		}
		if got := m.snapshot(id); got != before {
			t.Fatalf("%s changed state:\n%s\n%s", c.name, before, got)
		}
	}

	m.mustOK(m.do(coord, jobs.NewSettlePrivateMsg(run.receipt, paid, proof)))
	j := m.job(id)
	wantFee := coin.Amount(30_000)          // 10% of 300,001, rounded down
	wantComm := coin.Amount(3_000 + 15_000) // 0.003 + 5% of 300,001, rounded down
	wantRefund := 10*coin.Unit - paid - wantFee - wantComm
	if j.Status != jobs.StatusSettled || j.Paid != paid || j.Fee != wantFee || j.Commission != wantComm || j.Refund != wantRefund {
		t.Fatalf("job %+v", j)
	}
	if got := m.balance(alice.addr); got != aliceBefore-txFee-paid-wantFee-wantComm {
		t.Errorf("customer paid %s, want %s (+ tx fee)", aliceBefore-txFee-got, paid+wantFee+wantComm)
	}
	if got := m.balance(minerA.addr); got != minerBefore+paid {
		t.Errorf("miner got %s, want %s", got-minerBefore, paid)
	}
	// The coordinator paid the fees of its assignment and its settlement
	// (a refused transaction is charged nothing), and earned its commission.
	if got, want := m.balance(coord.addr), coordBefore+wantComm-2*txFee; got != want {
		t.Errorf("coordinator has %s, want %s", got, want)
	}
	if v := m.privacy(id); !v.Private || v.Commitment != fmt.Sprintf("%x", run.receipt.Commitment) {
		t.Errorf("privacy after settlement: %+v", v)
	}
	m.checkSupply()
	m.mustFail(m.do(coord, jobs.NewSettlePrivateMsg(run.receipt, paid, proof)), jobs.ErrJobState)
}

func TestPublicJobCannotSettlePrivately(t *testing.T) {
	keys, prover := privateKeys(t)
	m := newPrivateMarket(t, keys.Verifying)
	m.register(minerA, 2*coin.Unit, "tolstoy-1m")
	id := jobID(2)
	m.mustOK(m.create(id, 10*coin.Unit, 600))
	m.mustOK(m.assign(id, minerA))
	run := m.privateRun(id, minerA, 100, 2*uint64(coin.Unit))
	paid, proof := m.prove(prover, id, run)
	before := m.snapshot(id)
	m.mustFail(m.do(coord, jobs.NewSettlePrivateMsg(run.receipt, paid, proof)), jobs.ErrNotPrivate)
	if got := m.snapshot(id); got != before {
		t.Fatalf("state changed:\n%s\n%s", before, got)
	}
}

func TestPrivateJobsNeedTheVerifyingKey(t *testing.T) {
	m := newPrivateMarket(t, nil)
	m.mustFail(m.do(alice, jobs.NewCreatePrivateMsg(spec(jobID(3), 10*coin.Unit, 600), coord.addr)), jobs.ErrPrivateDisabled)
}

// TestPrivateJobWhoseEscrowWouldBeCappedIsRefused: a private settlement
// is never capped (the proof is of the exact split); an escrow below price
// + fee + commission is refused before any proof is checked, and nothing
// moves.
func TestPrivateJobWhoseEscrowWouldBeCappedIsRefused(t *testing.T) {
	keys, _ := privateKeys(t)
	m := newPrivateMarket(t, keys.Verifying)
	m.register(minerA, 2*coin.Unit, "tolstoy-1m")
	id := jobID(4)
	m.mustOK(m.do(alice, jobs.NewCreatePrivateMsg(spec(id, coin.Unit/5, 600), coord.addr))) // 0.2 AITBC
	m.mustOK(m.assign(id, minerA))
	run := m.privateRun(id, minerA, 150, 2*uint64(coin.Unit)) // costs 0.3 AITBC before fee and commission
	proof := make([]byte, 164)                                // the escrow is checked before any proof
	before := m.snapshot(id)
	m.mustFail(m.do(coord, jobs.NewSettlePrivateMsg(run.receipt, jobs.PriceFor(150, 2*coin.Unit), proof)), jobs.ErrPrivateEscrow)
	if got := m.snapshot(id); got != before {
		t.Fatalf("state changed:\n%s\n%s", before, got)
	}
}

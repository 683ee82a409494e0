package bridge_test

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

type out struct {
	addr string
	sat  int64
}

// payoutTx is an unsigned payout spending ins (outpoints as h32 bytes and
// vouts) to outs.
func payoutTx(t *testing.T, ins []wire.OutPoint, outs ...out) *wire.MsgTx {
	t.Helper()
	m := wire.NewMsgTx(2)
	for _, op := range ins {
		m.AddTxIn(wire.NewTxIn(&op, nil, nil))
	}
	for _, o := range outs {
		a, err := btcutil.DecodeAddress(o.addr, &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := txscript.PayToAddrScript(a)
		m.AddTxOut(wire.NewTxOut(o.sat, s))
	}
	return m
}

func propose(t *testing.T, id uint64, m *wire.MsgTx) tx.Msg {
	t.Helper()
	msg, err := bridge.NewProposePayoutMsg(id, m)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// share signs every input of m as the operator with xprv.
func share(t *testing.T, p bridge.Params, m *wire.MsgTx, ins []bridge.PayoutInput, xprv string) [][]byte {
	t.Helper()
	_, hs, err := bridge.SigHashes(p, m, ins)
	if err != nil {
		t.Fatal(err)
	}
	var sigs [][]byte
	for i, in := range ins {
		k := privAt(t, xprv, in.Chain, in.Index)
		sigs = append(sigs, append(ecdsa.Sign(k, hs[i]).Serialize(), byte(txscript.SigHashAll)))
	}
	return sigs
}

// TestPayoutSignedByTwoOfThreeThroughTheChain: a 2-of-3 bridge pays a
// withdrawal only through a proposal the chain checks exactly (the
// designated proposer; the withdrawal's amount to its address; change to
// the bridge; inputs the bridge holds and has not locked; the fee) and
// shares it verifies (an operator's key, the sighash); each refusal has
// its code and changes nothing. One share is not enough to assemble or to
// record the payment; shares of operators 1 and 3 assemble a transaction
// Bitcoin's script engine accepts, recorded once, its change then the
// bridge's.
func TestPayoutSignedByTwoOfThreeThroughTheChain(t *testing.T) {
	alice, op1, op2, op3, eve := newAcct(1), newAcct(2), newAcct(3), newAcct(4), newAcct(5)
	p, xprvs := testParams(t, op1, op2, op3)
	c := newChain(t, p, alice, op1, op2, op3, eve)
	if err := c.do(alice, bridge.NewAddressMsg()); err != nil {
		t.Fatal(err)
	}
	addr := c.address(alice)
	for i, sat := range []uint64{50_000, 30_000} {
		att := bridge.NewAttestMsg(h32(byte(1+i)), 1, addr, sat, h32(9), 500)
		for _, op := range []*acct{op1, op2} {
			if err := c.do(op, att); err != nil {
				t.Fatal(err)
			}
		}
	}
	to := "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	ea, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{5}, 20), &chaincfg.RegressionNetParams)
	elsewhere := ea.EncodeAddress()
	if err := c.do(alice, bridge.NewWithdrawMsg(to, 20_000)); err != nil { // pays 19,000, fee 1,000
		t.Fatal(err)
	}
	chg, _ := p.ChangeAddress()
	change := chg.EncodeAddress()
	dep1 := wire.OutPoint{Hash: chainhash.Hash(h32(1)), Index: 1}
	dep2 := wire.OutPoint{Hash: chainhash.Hash(h32(2)), Index: 1}
	stranger := wire.OutPoint{Hash: chainhash.Hash(h32(3)), Index: 0}
	good := payoutTx(t, []wire.OutPoint{dep1}, out{to, 19_000}, out{change, 30_000})

	// proposals
	mustRefuse(t, c, eve, propose(t, 0, good), bridge.ErrNotOperator)
	mustRefuse(t, c, op2, propose(t, 0, good), bridge.ErrNotProposer) // withdrawal 0, round 0: operator 1
	mustRefuse(t, c, op1, propose(t, 7, good), bridge.ErrNoWithdrawal)
	for name, bad := range map[string]struct {
		m    *wire.MsgTx
		want error
	}{
		"pays elsewhere":     {payoutTx(t, []wire.OutPoint{dep1}, out{elsewhere, 19_000}, out{change, 30_000}), bridge.ErrPayoutMismatch},
		"wrong amount":       {payoutTx(t, []wire.OutPoint{dep1}, out{to, 18_000}, out{change, 31_000}), bridge.ErrPayoutMismatch},
		"change elsewhere":   {payoutTx(t, []wire.OutPoint{dep1}, out{to, 19_000}, out{elsewhere, 30_000}), bridge.ErrPayoutMismatch},
		"three outputs":      {payoutTx(t, []wire.OutPoint{dep1}, out{to, 19_000}, out{change, 15_000}, out{change, 15_000}), bridge.ErrPayoutTx},
		"non-bridge input":   {payoutTx(t, []wire.OutPoint{stranger}, out{to, 19_000}, out{change, 30_000}), bridge.ErrNotBridgeInput},
		"input twice":        {payoutTx(t, []wire.OutPoint{dep2, dep2}, out{to, 19_000}, out{change, 40_000}), bridge.ErrPayoutTx},
		"excessive fee":      {payoutTx(t, []wire.OutPoint{dep1}, out{to, 19_000}, out{change, 20_000}), bridge.ErrPayoutFee},
		"no fee":             {payoutTx(t, []wire.OutPoint{dep1}, out{to, 19_000}, out{change, 31_000}), bridge.ErrPayoutFee},
		"fee with no change": {payoutTx(t, []wire.OutPoint{dep2}, out{to, 19_000}), bridge.ErrPayoutFee},
	} {
		t.Run(name, func(t *testing.T) { mustRefuse(t, c, op1, propose(t, 0, bad.m), bad.want) })
	}
	rbf := good.Copy()
	rbf.TxIn[0].Sequence = 0xfffffffd
	mustRefuse(t, c, op1, propose(t, 0, rbf), bridge.ErrPayoutTx)
	mustRefuse(t, c, op1, bridge.NewPaidMsg(0, good.TxHash()), bridge.ErrNoProposal)
	garbage, _ := tx.NewMsg(bridge.TypeProposePayout, bridge.MsgProposePayout{ID: 0, Tx: []byte{1, 2, 3}})
	mustRefuse(t, c, op1, garbage, bridge.ErrPayoutTx)

	if err := c.do(op1, propose(t, 0, good)); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, c, op1, propose(t, 0, good), bridge.ErrProposed)
	// a second withdrawal cannot spend the locked deposit
	if err := c.do(alice, bridge.NewWithdrawMsg(to, 10_000)); err != nil { // id 1: operator 2 proposes
		t.Fatal(err)
	}
	mustRefuse(t, c, op2, propose(t, 1, payoutTx(t, []wire.OutPoint{dep1}, out{to, 9_000}, out{change, 40_000})), bridge.ErrInputLocked)

	// shares
	ins := []bridge.PayoutInput{{Amount: 50_000, Chain: bridge.DepositChain, Index: 0}}
	s1, s2, s3 := share(t, p, good, ins, xprvs[0]), share(t, p, good, ins, xprvs[1]), share(t, p, good, ins, xprvs[2])
	txid := good.TxHash()
	mustRefuse(t, c, eve, bridge.NewSignPayoutMsg(0, txid, s1), bridge.ErrNotOperator)
	mustRefuse(t, c, op2, bridge.NewSignPayoutMsg(0, txid, s3), bridge.ErrBadShare) // operator 3's signature as operator 2's
	mustRefuse(t, c, op2, bridge.NewSignPayoutMsg(0, txid, share(t, p, payoutTx(t, []wire.OutPoint{dep1}, out{elsewhere, 19_000}, out{change, 30_000}), ins, xprvs[1])), bridge.ErrBadShare)
	mustRefuse(t, c, op2, bridge.NewSignPayoutMsg(0, h32(7), s2), bridge.ErrPayoutMismatch)
	mustRefuse(t, c, op2, bridge.NewSignPayoutMsg(1, txid, s2), bridge.ErrNoProposal)
	mustRefuse(t, c, op2, bridge.NewSignPayoutMsg(0, txid, append(s2, s2[0])), bridge.ErrBadShare)
	mustRefuse(t, c, op2, bridge.NewSignPayoutMsg(0, txid, [][]byte{highS(t, s2[0])}), bridge.ErrBadShare) // valid, but not relayed by Bitcoin nodes
	if err := c.do(op1, bridge.NewSignPayoutMsg(0, txid, s1)); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, c, op1, bridge.NewSignPayoutMsg(0, txid, s1), bridge.ErrShared)
	mustRefuse(t, c, op1, bridge.NewPaidMsg(0, txid), bridge.ErrUnsigned)

	// one share: no valid spend, by Assemble or by hand
	pr := bridge.Proposal{Inputs: ins, Shares: []bridge.Share{{Signer: op1.addr[:], Sigs: s1}}}
	var raw bytes.Buffer
	_ = good.SerializeNoWitness(&raw)
	pr.Tx = raw.Bytes()
	if _, err := bridge.Assemble(p, pr); err == nil {
		t.Fatal("a payout assembled from one share of 2")
	}
	cust, _ := p.Custody(bridge.DepositChain, 0)
	alone := good.Copy()
	alone.TxIn[0].Witness = wire.TxWitness{nil, s1[0], cust.Script}
	if scriptOK(alone, cust, 50_000) == nil {
		t.Fatal("Bitcoin's script engine accepts one signature of a 2-of-3")
	}

	if err := c.do(op3, bridge.NewSignPayoutMsg(0, txid, s3)); err != nil {
		t.Fatal(err)
	}
	pv, err := c.route("/api/v1/bridge/withdrawals/{id}/payout").Handle(moduleQuery(c), req{"id": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if v := pv.(bridge.PayoutView); !v.Complete || len(v.Signers) != 2 || v.Txid != txid.String() {
		t.Fatalf("payout view %+v", v)
	}
	pr.Shares = append(pr.Shares, bridge.Share{Signer: op3.addr[:], Sigs: s3})
	signed, err := bridge.Assemble(p, pr)
	if err != nil {
		t.Fatal(err)
	}
	if signed.TxHash() != txid {
		t.Fatal("assembling changed the txid")
	}
	if err := scriptOK(signed, cust, 50_000); err != nil {
		t.Fatalf("shares of operators 1 and 3 do not spend the deposit: %v", err)
	}

	mustRefuse(t, c, op2, bridge.NewPaidMsg(0, h32(8)), bridge.ErrPayoutMismatch)
	if err := c.do(op2, bridge.NewPaidMsg(0, txid)); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, c, op1, bridge.NewPaidMsg(0, txid), bridge.ErrPaid)
	us, err := c.route("/api/v1/bridge/utxos").Handle(moduleQuery(c), req{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, u := range us.([]bridge.UTXOView) {
		if u.LockedBy != nil {
			t.Fatalf("%s still locked after the payment", u.Outpoint)
		}
		got[u.Outpoint] = u.Amount
	}
	want := map[string]uint64{dep2.String(): 30_000, wire.OutPoint{Hash: txid, Index: 1}.String(): 30_000}
	if len(got) != len(want) || got[dep2.String()] != 30_000 || got[wire.OutPoint{Hash: txid, Index: 1}.String()] != 30_000 {
		t.Fatalf("bridge outputs after the payment %v, want %v", got, want)
	}
	// the change is spendable by the next payout
	next := payoutTx(t, []wire.OutPoint{{Hash: txid, Index: 1}}, out{to, 9_000}, out{change, 20_000})
	if err := c.do(op2, propose(t, 1, next)); err != nil {
		t.Fatal(err)
	}
}

// scriptOK runs Bitcoin's script engine over input 0 of m spending value
// from the custody script.
func scriptOK(m *wire.MsgTx, c *bridge.Custody, value int64) error {
	prev := txscript.NewCannedPrevOutputFetcher(c.PkScript(), value)
	e, err := txscript.NewEngine(c.PkScript(), m, 0, txscript.StandardVerifyFlags, nil, txscript.NewTxSigHashes(m, prev), value, prev)
	if err != nil {
		return err
	}
	return e.Execute()
}

// highS is the same signature with S replaced by N - S: it verifies, but
// Bitcoin's relay policy refuses it.
func highS(t *testing.T, sig []byte) []byte {
	t.Helper()
	parsed, err := ecdsa.ParseDERSignature(sig[:len(sig)-1])
	if err != nil {
		t.Fatal(err)
	}
	r, s := parsed.R(), parsed.S()
	s.Negate()
	rb, sb := r.Bytes(), s.Bytes()
	der := func(b [32]byte) []byte {
		x := bytes.TrimLeft(b[:], "\x00")
		if x[0]&0x80 != 0 {
			x = append([]byte{0}, x...)
		}
		return append([]byte{0x02, byte(len(x))}, x...)
	}
	body := append(der(rb), der(sb)...)
	return append(append([]byte{0x30, byte(len(body))}, body...), byte(txscript.SigHashAll))
}

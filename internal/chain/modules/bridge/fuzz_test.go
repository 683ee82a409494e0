package bridge_test

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// FuzzDescribeAndParse: message bodies and outpoints from anyone decode
// or fail, never panic.
func FuzzDescribeAndParse(f *testing.F) {
	for _, m := range []tx.Msg{bridge.NewAddressMsg(), bridge.NewAttestMsg(h32(1), 2, "bcrt1q", 3, h32(4), 5),
		bridge.NewWithdrawMsg("bcrt1q", 10_000), bridge.NewPaidMsg(1, h32(2)), bridge.NewHaltMsg("why"),
		bridge.NewSignPayoutMsg(1, h32(3), [][]byte{{0x30, 1, 2}}), seedProposal(f)} {
		f.Add(m.Type, []byte(m.Body), "00:1")
	}
	k := bridge.NewKeeper(nil)
	f.Fuzz(func(t *testing.T, typ string, body []byte, outpoint string) {
		_, _ = k.Describe(tx.Msg{Type: typ, Body: body})
		_, _, _ = bridge.ParseOutpoint(outpoint)
	})
}

func seedTx() *wire.MsgTx {
	m := wire.NewMsgTx(2)
	m.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash(h32(1)), Index: 1}, nil, nil))
	m.AddTxOut(wire.NewTxOut(19_000, []byte{0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}))
	return m
}

func seedProposal(f *testing.F) tx.Msg {
	msg, err := bridge.NewProposePayoutMsg(1, seedTx())
	if err != nil {
		f.Fatal(err)
	}
	return msg
}

// FuzzPayoutMessages: proposal and share bodies from anyone decode or
// fail, never panic; a payout transaction that decodes encodes back to
// the same bytes (the decoder takes the canonical encoding only), so its
// txid is the one every operator signs.
func FuzzPayoutMessages(f *testing.F) {
	var raw bytes.Buffer
	if err := seedTx().SerializeNoWitness(&raw); err != nil {
		f.Fatal(err)
	}
	f.Add(raw.Bytes())
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := bridge.DecodePayoutTx(b); err == nil {
			var again bytes.Buffer
			if err := m.SerializeNoWitness(&again); err != nil || !bytes.Equal(again.Bytes(), b) {
				t.Fatalf("decoded %x, encodes back to %x (%v)", b, again.Bytes(), err)
			}
			msg, err := bridge.NewProposePayoutMsg(1, m)
			if err != nil {
				t.Fatal(err)
			}
			var body bridge.MsgProposePayout
			if err := msg.DecodeBody(&body); err != nil || !bytes.Equal(body.Tx, b) {
				t.Fatalf("proposal round trip: %v", err)
			}
		}
		var s bridge.MsgSignPayout
		_ = tx.Msg{Type: bridge.TypeSignPayout, Body: b}.DecodeBody(&s)
		var p bridge.MsgProposePayout
		_ = tx.Msg{Type: bridge.TypeProposePayout, Body: b}.DecodeBody(&p)
	})
}

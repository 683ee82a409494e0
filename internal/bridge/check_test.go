package bridge_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/bridge"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/rpc"
)

// fakeChain answers the daemon's queries with canned records: a chain
// whose records the daemon must not take on trust.
type fakeChain struct {
	view    cb.View
	pending []cb.WithdrawalView
	payout  cb.PayoutView
}

func (f *fakeChain) GetJSON(_ context.Context, path string, out any) error {
	var v any
	switch {
	case path == "/api/v1/bridge":
		v = f.view
	case strings.HasPrefix(path, "/api/v1/bridge/addresses?"):
		v = []cb.AddressView{}
	case strings.HasPrefix(path, "/api/v1/bridge/withdrawals?status=pending"):
		v = f.pending
	case strings.HasSuffix(path, "/payout"):
		v = f.payout
	default:
		return fmt.Errorf("unexpected query %s", path)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func (f *fakeChain) WaitTx(context.Context, string, time.Duration) (rpc.Transaction, error) {
	return rpc.Transaction{}, errors.New("nothing should be sent")
}

// fakeBTC is a Bitcoin node at height 500 whose blocks the daemon has
// not read (it starts there).
type fakeBTC struct{ sent int }

func (*fakeBTC) GetBlockCount() (int64, error) { return 500, nil }
func (*fakeBTC) GetBlockHash(int64) (*chainhash.Hash, error) {
	return nil, errors.New("no block should be read")
}
func (*fakeBTC) GetBlock(*chainhash.Hash) (*wire.MsgBlock, error) {
	return nil, errors.New("no block should be read")
}
func (*fakeBTC) GetTxOut(*chainhash.Hash, uint32, bool) (*btcjson.GetTxOutResult, error) {
	return nil, nil
}
func (f *fakeBTC) SendRawTransaction(*wire.MsgTx, bool) (*chainhash.Hash, error) {
	f.sent++
	return nil, errors.New("nothing should be broadcast")
}

type recordingSender struct{ msgs []tx.Msg }

func (r *recordingSender) Send(_ context.Context, m tx.Msg) (string, error) {
	r.msgs = append(r.msgs, m)
	return "", errors.New("refused by the test")
}

// TestDaemonChecksAProposalAgainstBitcoinBeforeSigning: the chain's records
// are the daemon's instructions, not its proof. A proposal that pays
// another address than the withdrawal's is refused (ErrProposal) and a
// proposal spending an output the daemon has not itself read N deep on
// Bitcoin waits: in neither case does it send a share or broadcast.
func TestDaemonChecksAProposalAgainstBitcoinBeforeSigning(t *testing.T) {
	xprv, xpub, err := cb.AccountKey(bytes.Repeat([]byte{3}, 32), "regtest")
	if err != nil {
		t.Fatal(err)
	}
	op := address.FromPubKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)).Public().(ed25519.PublicKey))
	p := cb.DefaultParams()
	p.XPubs, p.Operators, p.Threshold, p.Confirmations = []string{xpub}, []string{op.String()}, 1, 1
	to, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{5}, 20), &chaincfg.RegressionNetParams)
	thief, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{6}, 20), &chaincfg.RegressionNetParams)
	chg, err := p.Custody(cb.ChangeChain, 0)
	if err != nil {
		t.Fatal(err)
	}
	payout := func(dest btcutil.Address) (*wire.MsgTx, string) {
		m := wire.NewMsgTx(2)
		m.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{1}, Index: 0}, nil, nil))
		s, _ := txscript.PayToAddrScript(dest)
		m.AddTxOut(wire.NewTxOut(19_000, s))
		m.AddTxOut(wire.NewTxOut(30_000, chg.PkScript()))
		var buf bytes.Buffer
		_ = m.SerializeNoWitness(&buf)
		return m, hex.EncodeToString(buf.Bytes())
	}
	for name, c := range map[string]struct {
		dest    btcutil.Address
		wantErr error
	}{
		"pays elsewhere":        {thief, bridge.ErrProposal},
		"input not seen N deep": {to, nil},
	} {
		t.Run(name, func(t *testing.T) {
			m, raw := payout(c.dest)
			w := cb.WithdrawalView{ID: 0, To: to.EncodeAddress(), Amount: 20_000, Fee: 1_000, Payout: 19_000, Status: "pending", PayoutTxid: m.TxHash().String()}
			chain := &fakeChain{view: cb.View{Params: p, Enabled: true}, pending: []cb.WithdrawalView{w},
				payout: cb.PayoutView{ID: 0, Txid: m.TxHash().String(), Tx: raw, Signers: []address.Address{}, Sigs: [][]string{},
					Inputs: []cb.PayoutInputView{{Outpoint: m.TxIn[0].PreviousOutPoint.String(), Amount: 50_000, Chain: cb.DepositChain, Index: 0}}}}
			btc, sender := &fakeBTC{}, &recordingSender{}
			d, err := bridge.New(context.Background(), bridge.Config{XPrv: xprv, StateFile: filepath.Join(t.TempDir(), "s.json"), StartHeight: 500,
				BTC: btc, Chain: chain, Operator: sender})
			if err != nil {
				t.Fatal(err)
			}
			err = d.Step(context.Background())
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("step: %v, want %v", err, c.wantErr)
			}
			if len(sender.msgs) != 0 || btc.sent != 0 {
				t.Fatalf("sent %d messages (%v) and %d transactions for a proposal it could not check", len(sender.msgs), sender.msgs, btc.sent)
			}
		})
	}
}

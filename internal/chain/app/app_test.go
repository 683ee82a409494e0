package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
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
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

const chainID = "aitbc-test"

type key struct {
	priv ed25519.PrivateKey
	addr address.Address
}

func newKey(seed byte) key {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	return key{priv, address.FromPubKey(priv.Public().(ed25519.PublicKey))}
}

type harness struct {
	t        *testing.T
	store    *state.Store
	app      *app.App
	height   int64
	proposer []byte
	opts     []app.Option // besides WithInvariants
}

var (
	alice = newKey(1)
	bob   = newKey(2)
	val   = newKey(3)
)

func newHarness(t *testing.T) *harness {
	return newHarnessWith(t, fixedSupply(app.Genesis{
		Params:   app.DefaultParams(),
		Accounts: []app.GenesisAccount{{Address: alice.addr, Balance: 1_000 * coin.Unit}},
	}))
}

// fixedSupply turns off issuance (a block reward of zero) and the
// treasury's share of fees in g, so that the supply only falls by burns
// and a block's fees go half to the burn, half to the proposer: the tests
// of transfers and jobs check their figures without the rewards module's.
// The faucet is off too (its genesis funding would add to the supply).
// The rewards tests (rewards_test.go) run the default economics.
func fixedSupply(g app.Genesis) app.Genesis {
	g.Params.TreasuryBps = 0
	if g.Modules == nil {
		g.Modules = map[string]json.RawMessage{}
	}
	g.Modules["rewards"] = json.RawMessage(`{"initial_reward":0}`)
	g.Modules["faucet"] = json.RawMessage(`{"enabled":false}`)
	return g
}

// newHarnessWith starts a chain from genesis g. Every block it commits is
// audited: Commit fails, and so the test, when an invariant breaks.
func newHarnessWith(t *testing.T, g app.Genesis, opts ...app.Option) *harness {
	t.Helper()
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, store: st, proposer: val.addr[:], opts: opts}
	h.open()
	gb, _ := json.Marshal(g)
	if _, err := h.app.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: gb}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) open() {
	a, err := app.New(h.store, chainID, nil, append([]app.Option{app.WithInvariants()}, h.opts...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.app = a
	info, _ := a.Info(context.Background(), &abci.RequestInfo{})
	h.height = info.LastBlockHeight
}

func send(from key, to address.Address, amount coin.Amount, nonce uint64, fee coin.Amount, chain string) []byte {
	x := &tx.Tx{ChainID: chain, Nonce: nonce, Fee: fee, Msg: bank.NewSendMsg(to, amount)}
	x.Sign(from.priv)
	b, err := x.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

func (h *harness) check(raw []byte) *abci.ResponseCheckTx {
	r, err := h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw, Type: abci.CheckTxType_New})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) block(txs ...[]byte) *abci.ResponseFinalizeBlock {
	h.t.Helper()
	h.height++
	r, err := h.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: h.height, Time: time.Unix(1_700_000_000+h.height, 0), Txs: txs, ProposerAddress: h.proposer,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) balance(a address.Address) coin.Amount {
	var b coin.Amount
	_ = h.app.Committed(func(q module.Query) error {
		var err error
		b, err = h.app.Bank().Balance(q.State, a)
		return err
	})
	return b
}

// supply returns the circulating supply and the burned total.
func (h *harness) supply() (coin.Amount, coin.Amount) {
	var s bank.Supply
	_ = h.app.Committed(func(q module.Query) error {
		var err error
		s, err = h.app.Bank().Supply(q.State)
		return err
	})
	return s.Circulating, s.Burned
}

// audit fails the test unless every invariant holds now.
func (h *harness) audit() {
	h.t.Helper()
	if err := h.app.Audit().Err(); err != nil {
		h.t.Fatal(err)
	}
}

func wantCode(t *testing.T, name string, code uint32, codespace string, want *errs.Error) {
	t.Helper()
	got := errs.Lookup(codespace, code)
	if got == nil || !errors.Is(got, want) {
		t.Errorf("%s: got %s/%d (%v), want %s", name, codespace, code, got, want.Name)
	}
}

func TestTransferMovesFundsAndBurnsFeeShare(t *testing.T) {
	h := newHarness(t)
	fee := app.DefaultParams().MinFee
	raw := send(alice, bob.addr, 100*coin.Unit, 0, fee, chainID)
	if r := h.check(raw); r.Code != 0 {
		t.Fatalf("CheckTx: %s", r.Log)
	}
	res := h.block(raw)
	if c := res.TxResults[0].Code; c != 0 {
		t.Fatalf("tx failed: %s", res.TxResults[0].Log)
	}
	if got := h.balance(bob.addr); got != 100*coin.Unit {
		t.Errorf("bob = %s, want 100", got)
	}
	if got, want := h.balance(alice.addr), 900*coin.Unit-fee; got != want {
		t.Errorf("alice = %s, want %s", got, want)
	}
	burn := fee / 2
	if got := h.balance(val.addr); got != fee-burn {
		t.Errorf("proposer reward = %s, want %s", got, fee-burn)
	}
	supply, burned := h.supply()
	if burned != burn || supply != 1000*coin.Unit-burn {
		t.Errorf("supply %s burned %s, want %s and %s", supply, burned, 1000*coin.Unit-burn, burn)
	}
}

func TestSupplyEqualsGenesisMinusBurnedAlways(t *testing.T) {
	h := newHarness(t)
	fees := []coin.Amount{1000, 1001, 1003, 5555, 123456}
	var nonce uint64
	for _, fee := range fees {
		raw := send(alice, bob.addr, 1, nonce, fee, chainID)
		nonce++
		if r := h.block(raw); r.TxResults[0].Code != 0 {
			t.Fatal(r.TxResults[0].Log)
		}
		supply, burned := h.supply()
		if supply+burned != 1000*coin.Unit {
			t.Fatalf("supply %d + burned %d != genesis %d", supply, burned, 1000*coin.Unit)
		}
		total := h.balance(alice.addr) + h.balance(bob.addr) + h.balance(val.addr)
		if total != supply {
			t.Fatalf("sum of balances %d != supply %d", total, supply)
		}
	}
}

func TestBadTransactionsRejectedWithoutStateChange(t *testing.T) {
	h := newHarness(t)
	fee := app.DefaultParams().MinFee
	good := send(alice, bob.addr, 10*coin.Unit, 0, fee, chainID)
	h.block(good)
	_, beforeHash := h.app.Height()
	aliceBefore := h.balance(alice.addr)

	badSig := func() []byte {
		x, _ := tx.Decode(send(alice, bob.addr, 1, 1, fee, chainID))
		x.Sig[5] ^= 0xff
		b, _ := x.Encode()
		return b
	}()
	unknownMsg := func() []byte {
		x := &tx.Tx{ChainID: chainID, Nonce: 1, Fee: fee, Msg: tx.Msg{Type: "nosuch/thing", Body: []byte{0x80}}}
		x.Sign(alice.priv)
		b, _ := x.Encode()
		return b
	}()
	zeroAmount := func() []byte {
		m, _ := tx.NewMsg(bank.TypeSend, bank.MsgSend{To: bob.addr[:], Amount: 0})
		x := &tx.Tx{ChainID: chainID, Nonce: 1, Fee: fee, Msg: m}
		x.Sign(alice.priv)
		b, _ := x.Encode()
		return b
	}()
	poor := newKey(9)
	cases := []struct {
		name string
		raw  []byte
		want *errs.Error
	}{
		{"malformed", []byte{0x01, 0x02}, tx.ErrMalformed},
		{"truncated", good[:len(good)-4], tx.ErrMalformed},
		{"bad signature", badSig, tx.ErrBadSignature},
		{"wrong chain", send(alice, bob.addr, 1, 1, fee, "other-chain"), tx.ErrWrongChain},
		{"replayed nonce", send(alice, bob.addr, 1, 0, fee, chainID), tx.ErrBadNonce},
		{"skipped nonce", send(alice, bob.addr, 1, 5, fee, chainID), tx.ErrNonceGap},
		{"fee below minimum", send(alice, bob.addr, 1, 1, fee-1, chainID), tx.ErrFeeTooLow},
		{"insufficient funds", send(alice, bob.addr, 10_000*coin.Unit, 1, fee, chainID), bank.ErrInsufficientFunds},
		{"cannot pay fee", send(poor, bob.addr, 1, 0, fee, chainID), tx.ErrNoFunds},
		{"unknown message", unknownMsg, tx.ErrUnknownMsg},
		{"zero amount", zeroAmount, bank.ErrZeroAmount},
	}
	for _, c := range cases {
		r := h.check(c.raw)
		wantCode(t, c.name+" (CheckTx)", r.Code, r.Codespace, c.want)
	}
	// The same transactions forced into a block (a faulty proposer) fail
	// there too and change nothing but the height.
	var raws [][]byte
	for _, c := range cases {
		raws = append(raws, c.raw)
	}
	res := h.block(raws...)
	for i, c := range cases {
		wantCode(t, c.name+" (FinalizeBlock)", res.TxResults[i].Code, res.TxResults[i].Codespace, c.want)
	}
	if got := h.balance(alice.addr); got != aliceBefore {
		t.Errorf("alice balance changed from %s to %s", aliceBefore, got)
	}
	if n, _ := h.app.NonceOf(alice.addr); n != 1 {
		t.Errorf("alice nonce = %d, want 1", n)
	}
	_, afterHash := h.app.Height()
	if bytes.Equal(beforeHash, afterHash) {
		t.Error("app hash did not advance with the height")
	}
}

func TestMempoolViewTracksPendingNonces(t *testing.T) {
	h := newHarness(t)
	fee := app.DefaultParams().MinFee
	for n := uint64(0); n < 3; n++ {
		if r := h.check(send(alice, bob.addr, coin.Unit, n, fee, chainID)); r.Code != 0 {
			t.Fatalf("nonce %d: %s", n, r.Log)
		}
	}
	if n, _ := h.app.NonceOf(alice.addr); n != 3 {
		t.Fatalf("pending nonce = %d, want 3", n)
	}
	// The same bytes again are a replay against the mempool view.
	r := h.check(send(alice, bob.addr, coin.Unit, 1, fee, chainID))
	wantCode(t, "replay in mempool", r.Code, r.Codespace, tx.ErrBadNonce)
}

func TestRestartKeepsStateAndAppHash(t *testing.T) {
	h := newHarness(t)
	fee := app.DefaultParams().MinFee
	var nonce uint64
	for i := 0; i < 5; i++ {
		h.block(send(alice, bob.addr, coin.Unit, nonce, fee, chainID))
		nonce++
	}
	height, hash := h.app.Height()
	bobBal := h.balance(bob.addr)

	h.open() // a new App over the same store, as after a restart
	info, _ := h.app.Info(context.Background(), &abci.RequestInfo{})
	if info.LastBlockHeight != height || !bytes.Equal(info.LastBlockAppHash, hash) {
		t.Fatalf("after restart: height %d hash %x, want %d %x", info.LastBlockHeight, info.LastBlockAppHash, height, hash)
	}
	if got := h.balance(bob.addr); got != bobBal {
		t.Fatalf("bob after restart = %s, want %s", got, bobBal)
	}
	if n, _ := h.app.NonceOf(alice.addr); n != nonce {
		t.Fatalf("nonce after restart = %d, want %d", n, nonce)
	}
	for hh := int64(1); hh <= height; hh++ {
		if ah, _ := h.store.AppHashAt(hh); len(ah) != 32 {
			t.Fatalf("app hash at %d missing", hh)
		}
	}
	// Chain continues after restart.
	if r := h.block(send(alice, bob.addr, coin.Unit, nonce, fee, chainID)); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
}

func TestAppHashIsDeterministic(t *testing.T) {
	run := func() []string {
		h := newHarness(t)
		fee := app.DefaultParams().MinFee
		var hashes []string
		for n := uint64(0); n < 4; n++ {
			r := h.block(send(alice, bob.addr, coin.Unit*coin.Amount(n+1), n, fee, chainID), send(bob, alice.addr, 1, n, fee, chainID))
			hashes = append(hashes, hex.EncodeToString(r.AppHash))
		}
		return hashes
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("block %d: app hashes differ between identical runs: %s vs %s", i+1, a[i], b[i])
		}
	}
}

func TestStoreForOtherChainRefused(t *testing.T) {
	h := newHarness(t)
	h.block()
	if _, err := app.New(h.store, "another-chain", nil); err == nil {
		t.Fatal("opened a store of another chain")
	}
}

// FuzzCheckTx feeds arbitrary bytes to CheckTx: it must never panic, and
// anything it accepts must be a canonical, correctly signed transaction.
func FuzzCheckTx(f *testing.F) {
	f.Add(send(alice, bob.addr, coin.Unit, 0, 1000, chainID))
	f.Add([]byte{})
	f.Add([]byte{0x86})
	st, _ := state.OpenInMemory()
	a, _ := app.New(st, chainID, nil)
	gb, _ := json.Marshal(app.Genesis{Params: app.DefaultParams(), Accounts: []app.GenesisAccount{{Address: alice.addr, Balance: coin.Unit * 1000}}})
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: gb}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := a.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: b})
		if err != nil {
			t.Fatal(err)
		}
		if r.Code == 0 {
			x, err := tx.Decode(b)
			if err != nil || x.Verify() != nil {
				t.Fatalf("CheckTx accepted an invalid tx: %v", err)
			}
		}
	})
}

// TestProposalOrdersEachSendersNonces feeds the proposal a sender's
// transactions out of order (as CometBFT's mempool can hold them) and
// checks that they come back in nonce order, other senders' in place, and
// that the block then executes every one.
func TestProposalOrdersEachSendersNonces(t *testing.T) {
	h := newHarness(t)
	fee := app.DefaultParams().MinFee
	h.block(send(alice, bob.addr, 50*coin.Unit, 0, fee, chainID))
	a1, a2, a3 := send(alice, bob.addr, 1, 1, fee, chainID), send(alice, bob.addr, 1, 2, fee, chainID), send(alice, bob.addr, 1, 3, fee, chainID)
	b0 := send(bob, alice.addr, 1, 0, fee, chainID)
	in := [][]byte{a3, b0, a1, a2}
	r, err := h.app.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{Txs: in, MaxTxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{a1, b0, a2, a3}
	for i := range want {
		if !bytes.Equal(r.Txs[i], want[i]) {
			t.Fatalf("position %d holds the wrong transaction", i)
		}
	}
	// The byte limit keeps a prefix.
	short, _ := h.app.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{Txs: in, MaxTxBytes: int64(len(a1) + len(b0))})
	if len(short.Txs) != 2 {
		t.Fatalf("%d txs within the byte limit, want 2", len(short.Txs))
	}
	res := h.block(r.Txs...)
	for i, x := range res.TxResults {
		if x.Code != 0 {
			t.Fatalf("tx %d failed: %s", i, x.Log)
		}
	}
}

// TestProposalLeavesOutTransactionsThatWouldFail: a nonce already used and
// a nonce after a gap would only fail in the block; the proposal drops
// them and keeps the sender's transactions up to the gap.
func TestProposalLeavesOutTransactionsThatWouldFail(t *testing.T) {
	h := newHarness(t)
	fee := app.DefaultParams().MinFee
	h.block(send(alice, bob.addr, 50*coin.Unit, 0, fee, chainID))
	stale := send(alice, bob.addr, 2, 0, fee, chainID) // nonce 0 is used
	a1, a2, a4 := send(alice, bob.addr, 1, 1, fee, chainID), send(alice, bob.addr, 1, 2, fee, chainID), send(alice, bob.addr, 1, 4, fee, chainID)
	b0 := send(bob, alice.addr, 1, 0, fee, chainID)
	r, err := h.app.PrepareProposal(context.Background(), &abci.RequestPrepareProposal{Txs: [][]byte{a4, stale, b0, a2, a1}, MaxTxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	// alice's kept transactions take her first slots, in nonce order.
	want := [][]byte{a1, a2, b0}
	if len(r.Txs) != len(want) {
		t.Fatalf("proposal holds %d transactions, want %d", len(r.Txs), len(want))
	}
	for i := range want {
		if !bytes.Equal(r.Txs[i], want[i]) {
			t.Fatalf("position %d holds the wrong transaction", i)
		}
	}
	for i, x := range h.block(r.Txs...).TxResults {
		if x.Code != 0 {
			t.Fatalf("tx %d failed: %s", i, x.Log)
		}
	}
}

func (h *harness) recheck(raw []byte) *abci.ResponseCheckTx {
	r, err := h.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw, Type: abci.CheckTxType_Recheck})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// TestRecheckKeepsASendersSwappedTransactions: the mempool can hold one
// sender's nonces swapped and rechecks them in that order after a block; a
// recheck must not drop the later nonce as a gap (its sender was told it
// is pending). A transaction whose predecessor is really gone is dropped
// at the pass after.
func TestRecheckKeepsASendersSwappedTransactions(t *testing.T) {
	h := newHarness(t)
	fee := app.DefaultParams().MinFee
	a0, a1, a2 := send(alice, bob.addr, 1, 0, fee, chainID), send(alice, bob.addr, 1, 1, fee, chainID), send(alice, bob.addr, 1, 2, fee, chainID)
	for _, raw := range [][]byte{a0, a1, a2} {
		if r := h.check(raw); r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	h.block() // an empty block; all three wait in the mempool

	// The recheck pass in swapped list order.
	for _, raw := range [][]byte{a2, a1, a0} {
		if r := h.recheck(raw); r.Code != 0 {
			t.Fatalf("recheck refused a pending transaction: %s", r.Log)
		}
	}
	if n, _ := h.app.NonceOf(alice.addr); n != 3 {
		t.Fatalf("mempool nonce after the recheck = %d, want 3", n)
	}
	// The mempool view is whole again: nonce 3 is next, nonce 2 a replay.
	r := h.check(send(alice, bob.addr, 5, 2, fee, chainID))
	wantCode(t, "replay after recheck", r.Code, r.Codespace, tx.ErrBadNonce)
	if r := h.check(send(alice, bob.addr, 1, 3, fee, chainID)); r.Code != 0 {
		t.Fatalf("next nonce refused: %s", r.Log)
	}

	// a0 committed, a1 lost (never in a block, not rechecked): a2 waits
	// for one pass, then is refused.
	h.block(a0)
	if r := h.recheck(a2); r.Code != 0 {
		t.Fatalf("first recheck of an orphan: %s", r.Log)
	}
	h.block()
	r = h.recheck(a2)
	wantCode(t, "orphan at the second pass", r.Code, r.Codespace, tx.ErrNonceGap)
}

// TestPreVerifyBatchGivesEachTransactionItsOwnAnswer: one batch with valid,
// forged, malformed and repeated transactions answers each position as
// PreVerify would, and the valid ones are then admitted by CheckTx.
func TestPreVerifyBatchGivesEachTransactionItsOwnAnswer(t *testing.T) {
	h := newHarness(t)
	fee := app.DefaultParams().MinFee
	good0 := send(alice, bob.addr, coin.Unit, 0, fee, chainID)
	good1 := send(alice, bob.addr, coin.Unit, 1, fee, chainID)
	forged := send(alice, bob.addr, 2*coin.Unit, 2, fee, chainID)
	forged[len(forged)-3] ^= 1 // inside the signature, the last field
	batch := [][]byte{good0, forged, []byte{1, 2, 3}, good1, good0, forged}
	got := h.app.PreVerifyBatch(batch)
	for i, want := range []error{nil, tx.ErrBadSignature, tx.ErrMalformed, nil, nil, tx.ErrBadSignature} {
		if (want == nil) != (got[i] == nil) || (want != nil && !errors.Is(got[i], want)) {
			t.Fatalf("position %d: %v, want %v", i, got[i], want)
		}
		if one := h.app.PreVerify(batch[i]); (one == nil) != (got[i] == nil) {
			t.Fatalf("position %d: batch says %v, PreVerify %v", i, got[i], one)
		}
	}
	for _, raw := range [][]byte{good0, good1} {
		if r := h.check(raw); r.Code != abci.CodeTypeOK {
			t.Fatalf("CheckTx after the batch: %s", r.Log)
		}
	}
}

package bridge_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/hdkeychain"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/modules/rewards"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

const chainID = "aitbc-bridge-test"

type acct struct {
	priv  ed25519.PrivateKey
	addr  address.Address
	nonce uint64
}

func newAcct(seed byte) *acct {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	return &acct{priv: priv, addr: address.FromPubKey(priv.Public().(ed25519.PublicKey))}
}

// chain is the real application, every block audited (app.WithInvariants).
type chain struct {
	t      *testing.T
	store  *state.Store
	app    *app.App
	height int64
	now    int64
	b      *bank.Keeper
	k      *bridge.Keeper
}

var proposer = newAcct(99)

// testParams is a bridge of ops (threshold 2), each operator with its own
// Bitcoin account key; it returns the operators' xprvs in order.
func testParams(t *testing.T, ops ...*acct) (bridge.Params, []string) {
	p := bridge.DefaultParams()
	p.Confirmations, p.Threshold = 1, 2
	var xprvs []string
	for i, o := range ops {
		xprv, xpub, err := bridge.AccountKey(bytes.Repeat([]byte{byte(7 + i)}, 32), "regtest")
		if err != nil {
			t.Fatal(err)
		}
		p.Operators = append(p.Operators, o.addr.String())
		p.XPubs, xprvs = append(p.XPubs, xpub), append(xprvs, xprv)
	}
	return p, xprvs
}

func newChain(t *testing.T, p bridge.Params, accts ...*acct) *chain {
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
	rp := rewards.DefaultParams()
	rp.InitialReward = 0
	rb, _ := json.Marshal(rp)
	pb, _ := json.Marshal(p)
	g := app.Genesis{Params: app.DefaultParams(), Modules: map[string]json.RawMessage{rewards.Name: rb, bridge.Name: pb}}
	for _, x := range accts {
		g.Accounts = append(g.Accounts, app.GenesisAccount{Address: x.addr, Balance: 1000 * coin.Unit})
	}
	gb, _ := json.Marshal(g)
	if _, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, AppStateBytes: gb, Time: time.Unix(1_700_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	b := bank.NewKeeper()
	b.RegisterDenom(bank.Denom{Name: bridge.Denom, Decimals: 8, Minters: []string{bridge.Name}})
	c := &chain{t: t, store: st, app: a, now: 1_700_000_001, b: b, k: bridge.NewKeeper(b)}
	c.empty() // genesis is committed with the first block
	return c
}

func (c *chain) empty() {
	c.height++
	if _, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: c.height, Time: time.Unix(c.now, 0), ProposerAddress: proposer.addr[:]}); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	c.now++
}

// do runs msg from who in a block of its own and returns its error.
func (c *chain) do(who *acct, msg tx.Msg) error {
	c.t.Helper()
	x := &tx.Tx{ChainID: chainID, Nonce: who.nonce, Fee: app.DefaultParams().MinFee, Msg: msg}
	x.Sign(who.priv)
	raw, err := x.Encode()
	if err != nil {
		c.t.Fatal(err)
	}
	c.height++
	r, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: c.height, Time: time.Unix(c.now, 0), Txs: [][]byte{raw}, ProposerAddress: proposer.addr[:]})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err) // a broken invariant stops here
	}
	c.now++
	res := r.TxResults[0]
	if res.Code == 0 {
		who.nonce++ // a refused transaction leaves the nonce as it was
		return nil
	}
	if e := errs.Lookup(res.Codespace, res.Code); e != nil {
		return fmt.Errorf("%w: %s", e, res.Log)
	}
	return errors.New(res.Log)
}

func (c *chain) btc(a address.Address) uint64 {
	c.t.Helper()
	v, err := c.b.BalanceOf(c.store, a, bridge.Denom)
	if err != nil {
		c.t.Fatal(err)
	}
	return uint64(v)
}

// bridgeState is a digest of every bridge record and the btc supply: a
// refused message must leave it as it was.
func (c *chain) bridgeState() [32]byte {
	c.t.Helper()
	h := sha256.New()
	if err := c.store.Iterate([]byte("bridge/"), false, func(k, v []byte) bool { h.Write(k); h.Write(v); return true }); err != nil {
		c.t.Fatal(err)
	}
	sup, _ := c.b.SupplyOf(c.store, bridge.Denom)
	fmt.Fprint(h, uint64(sup))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func (c *chain) query(path string, r module.Route, vals map[string]string) (any, error) {
	return r.Handle(module.Query{State: c.store, Height: c.height}, req(vals))
}

type req map[string]string

func (r req) PathValue(n string) string { return r[n] }
func (r req) Param(n string) string     { return r[n] }

func (c *chain) route(path string) module.Route {
	for _, r := range c.k.Routes() {
		if r.Path == path {
			return r
		}
	}
	c.t.Fatalf("no route %s", path)
	return module.Route{}
}

func (c *chain) address(a *acct) string {
	c.t.Helper()
	v, err := c.route("/api/v1/bridge/addresses/{account}").Handle(module.Query{State: c.store}, req{"account": a.addr.String()})
	if err != nil {
		c.t.Fatal(err)
	}
	return v.(bridge.AddressView).Address
}

func mustRefuse(t *testing.T, c *chain, who *acct, msg tx.Msg, want error) {
	t.Helper()
	before := c.bridgeState()
	err := c.do(who, msg)
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", msg.Type, err, want)
	}
	if c.bridgeState() != before {
		t.Fatalf("%s refused (%v) but the bridge's state changed", msg.Type, err)
	}
}

func h32(b byte) [32]byte { var h [32]byte; h[0] = b; h[31] = b; return h }

// privAt derives an operator's private key at chain/index.
func privAt(t *testing.T, xprv string, chain, index uint32) *btcec.PrivateKey {
	t.Helper()
	k, err := hdkeychain.NewKeyFromString(xprv)
	if err != nil {
		t.Fatal(err)
	}
	if k, err = k.Derive(chain); err == nil {
		k, err = k.Derive(index)
	}
	if err != nil {
		t.Fatal(err)
	}
	pk, err := k.ECPrivKey()
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// TestDepositAddressesAreDerivedAndNeverShared: each account gets the
// next 2-of-3 P2WSH of the operators' keys at xpub/0/index (checked
// against btcd's own multisig script over keys derived from the private
// keys, sorted as BIP 67 says), once. internal/bridge's
// TestChainCustodyIsBtcnodesMultisig holds the module's script equal to
// btcnode's, which the daemons sign with.
func TestDepositAddressesAreDerivedAndNeverShared(t *testing.T) {
	alice, bob, op1, op2, op3 := newAcct(1), newAcct(2), newAcct(3), newAcct(4), newAcct(5)
	p, xprvs := testParams(t, op1, op2, op3)
	c := newChain(t, p, alice, bob, op1, op2, op3)
	if err := c.do(alice, bridge.NewAddressMsg()); err != nil {
		t.Fatal(err)
	}
	if err := c.do(bob, bridge.NewAddressMsg()); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, c, alice, bridge.NewAddressMsg(), bridge.ErrHasAddress)
	for i, who := range []*acct{alice, bob} {
		var pubs []*btcec.PublicKey
		for _, x := range xprvs {
			pubs = append(pubs, privAt(t, x, 0, uint32(i)).PubKey())
		}
		want := p2wshMultisig(t, 2, pubs)
		if got := c.address(who); got != want {
			t.Fatalf("account %d's deposit address %s, want %s (2-of-3 of m/48'/1'/0'/2'/0/%d)", i, got, want, i)
		}
	}
	if c.address(alice) == c.address(bob) {
		t.Fatal("two accounts share a deposit address")
	}
}

// TestDepositMintsOnceAtThreshold: a 2-of-3 bridge mints a deposit when
// the second operator attests, to the satoshi, once; non-operators, dust,
// unknown addresses, a second attestation by the same operator and a
// disagreeing one are refused with their own codes and change nothing.
func TestDepositMintsOnceAtThreshold(t *testing.T) {
	alice, op1, op2, op3, eve := newAcct(1), newAcct(2), newAcct(3), newAcct(4), newAcct(5)
	p, _ := testParams(t, op1, op2, op3)
	c := newChain(t, p, alice, op1, op2, op3, eve)
	if err := c.do(alice, bridge.NewAddressMsg()); err != nil {
		t.Fatal(err)
	}
	addr := c.address(alice)
	att := bridge.NewAttestMsg(h32(1), 0, addr, 123_456_789, h32(9), 500)
	mustRefuse(t, c, eve, att, bridge.ErrNotOperator)
	mustRefuse(t, c, op1, bridge.NewAttestMsg(h32(1), 0, addr, 545, h32(9), 500), bridge.ErrDust)
	mustRefuse(t, c, op1, bridge.NewAttestMsg(h32(1), 0, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 123_456_789, h32(9), 500), bridge.ErrUnknownAddress)
	if err := c.do(op1, att); err != nil {
		t.Fatal(err)
	}
	if got := c.btc(alice.addr); got != 0 {
		t.Fatalf("minted %d sat after 1 of 2 attestations", got)
	}
	mustRefuse(t, c, op1, att, bridge.ErrAttested)
	mustRefuse(t, c, op2, bridge.NewAttestMsg(h32(1), 0, addr, 123_456_780, h32(9), 500), bridge.ErrMismatch)
	if err := c.do(op2, att); err != nil {
		t.Fatal(err)
	}
	if got := c.btc(alice.addr); got != 123_456_789 {
		t.Fatalf("alice holds %d sat of btc, want 123456789", got)
	}
	mustRefuse(t, c, op3, att, bridge.ErrMinted)
	if got := c.btc(alice.addr); got != 123_456_789 {
		t.Fatalf("alice holds %d sat after a third attestation, want 123456789", got)
	}
	v, err := c.route("/api/v1/bridge").Handle(module.Query{State: c.store}, req{})
	if err != nil {
		t.Fatal(err)
	}
	if bv := v.(bridge.View); bv.Supply != 123_456_789 || bv.Minted != 123_456_789 || bv.Deposits != 1 {
		t.Fatalf("bridge view %+v", bv)
	}
}

// TestWithdrawBurnsAndWaitsForItsPayout: a withdrawal to an invalid
// address, of dust or beyond the balance is refused and changes nothing; a
// good one burns the btc and waits for its payout, which no operator can
// record without a signed proposal.
func TestWithdrawBurnsAndWaitsForItsPayout(t *testing.T) {
	alice, op, eve := newAcct(1), newAcct(2), newAcct(3)
	p, _ := testParams(t, op)
	p.Threshold = 1
	c := newChain(t, p, alice, op, eve)
	if err := c.do(alice, bridge.NewAddressMsg()); err != nil {
		t.Fatal(err)
	}
	if err := c.do(op, bridge.NewAttestMsg(h32(1), 1, c.address(alice), 50_000, h32(9), 500)); err != nil {
		t.Fatal(err)
	}
	to := "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	for _, bad := range []string{"", "not-an-address", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4" /* mainnet */, "BCRT1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KYGT080"} {
		mustRefuse(t, c, alice, bridge.NewWithdrawMsg(bad, 20_000), bridge.ErrBTCAddress)
	}
	mustRefuse(t, c, alice, bridge.NewWithdrawMsg(c.address(alice), 20_000), bridge.ErrBTCAddress) // the bridge's own deposit address
	chg, err := p.ChangeAddress()
	if err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, c, alice, bridge.NewWithdrawMsg(chg.EncodeAddress(), 20_000), bridge.ErrBTCAddress)
	mustRefuse(t, c, alice, bridge.NewWithdrawMsg(to, 9_999), bridge.ErrDust)
	mustRefuse(t, c, alice, bridge.NewWithdrawMsg(to, 50_001), bridge.ErrFunds)
	mustRefuse(t, c, eve, bridge.NewWithdrawMsg(to, 20_000), bridge.ErrFunds)
	if err := c.do(alice, bridge.NewWithdrawMsg(to, 20_000)); err != nil {
		t.Fatal(err)
	}
	if got := c.btc(alice.addr); got != 30_000 {
		t.Fatalf("alice holds %d sat after withdrawing 20000 of 50000", got)
	}
	w, err := c.route("/api/v1/bridge/withdrawals/{id}").Handle(module.Query{State: c.store}, req{"id": "0"})
	if err != nil {
		t.Fatal(err)
	}
	if wv := w.(bridge.WithdrawalView); wv.Status != "pending" || wv.Payout != 19_000 || wv.To != to || wv.Owner != alice.addr {
		t.Fatalf("withdrawal %+v", wv)
	}
	mustRefuse(t, c, eve, bridge.NewPaidMsg(0, h32(5)), bridge.ErrNotOperator)
	mustRefuse(t, c, op, bridge.NewPaidMsg(7, h32(5)), bridge.ErrNoWithdrawal)
	// no payment without a payout signed by the threshold (TestPayout...)
	mustRefuse(t, c, op, bridge.NewPaidMsg(0, h32(5)), bridge.ErrNoProposal)
}

// TestHaltStopsMintsAndWithdrawals: only an operator halts; a halted
// bridge refuses attestations and withdrawals.
func TestHaltStopsMintsAndWithdrawals(t *testing.T) {
	alice, op, eve := newAcct(1), newAcct(2), newAcct(3)
	p, _ := testParams(t, op)
	p.Threshold = 1
	c := newChain(t, p, alice, op, eve)
	if err := c.do(alice, bridge.NewAddressMsg()); err != nil {
		t.Fatal(err)
	}
	if err := c.do(op, bridge.NewAttestMsg(h32(1), 1, c.address(alice), 50_000, h32(9), 500)); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, c, eve, bridge.NewHaltMsg("eve says so"), bridge.ErrNotOperator)
	if err := c.do(op, bridge.NewHaltMsg("deep reorg")); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, c, op, bridge.NewAttestMsg(h32(2), 1, c.address(alice), 50_000, h32(9), 500), bridge.ErrHalted)
	mustRefuse(t, c, alice, bridge.NewWithdrawMsg("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 20_000), bridge.ErrHalted)
	mustRefuse(t, c, op, bridge.NewHaltMsg("again"), bridge.ErrAlreadyHalted)
}

// TestDisabledWithoutXPub: the default genesis has no bridge.
func TestDisabledWithoutXPub(t *testing.T) {
	alice := newAcct(1)
	c := newChain(t, bridge.DefaultParams(), alice)
	mustRefuse(t, c, alice, bridge.NewAddressMsg(), bridge.ErrDisabled)
}

// TestParamsRefused: genesis parameters a bridge cannot run on.
func TestParamsRefused(t *testing.T) {
	op := newAcct(1)
	good, xprv := testParams(t, op)
	good.Threshold = 1
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	// the one-operator shorthand
	short := good
	short.XPub, short.XPubs = good.XPubs[0], nil
	if err := short.Validate(); err != nil {
		t.Fatal(err)
	}
	if a, _ := short.DepositAddress(3); a == nil {
		t.Fatal("no deposit address from the shorthand")
	} else if b, _ := good.DepositAddress(3); a.EncodeAddress() != b.EncodeAddress() {
		t.Fatalf("xpub shorthand derives %s, xpubs %s", a, b)
	}
	_, mainXpub, err := bridge.AccountKey(bytes.Repeat([]byte{7}, 32), "mainnet")
	if err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*bridge.Params){
		"private key":    func(p *bridge.Params) { p.XPubs = []string{xprv[0]} },
		"xpub and xpubs": func(p *bridge.Params) { p.XPub = p.XPubs[0] },
		"xpub, 2 operators": func(p *bridge.Params) {
			p.XPub, p.XPubs, p.Operators = p.XPubs[0], nil, append(p.Operators, newAcct(9).addr.String())
		},
		"xpubs != operators": func(p *bridge.Params) {
			p.XPubs = append(p.XPubs, p.XPubs[0])
		},
		"duplicate key": func(p *bridge.Params) {
			p.Operators, p.XPubs = append(p.Operators, newAcct(9).addr.String()), append(p.XPubs, p.XPubs[0])
		},
		"network mismatch": func(p *bridge.Params) { p.XPubs = []string{mainXpub} },
		"16 operators": func(p *bridge.Params) {
			for i := range 15 {
				p.Operators = append(p.Operators, newAcct(byte(20+i)).addr.String())
			}
		},
		"propose timeout": func(p *bridge.Params) { p.ProposeTimeout = 0 },
		"no operators":    func(p *bridge.Params) { p.Operators = nil },
		"threshold > n":   func(p *bridge.Params) { p.Threshold = 2 },
		"network":         func(p *bridge.Params) { p.Network = "dogecoin" },
		"dust deposit":    func(p *bridge.Params) { p.MinDepositSat = 100 },
		"fee > min":       func(p *bridge.Params) { p.WithdrawFeeSat = p.MinWithdrawSat },
		"confirmations":   func(p *bridge.Params) { p.Confirmations = 0 },
	} {
		p := good
		p.Operators = append([]string(nil), good.Operators...)
		p.XPubs = append([]string(nil), good.XPubs...)
		mut(&p)
		if err := p.Validate(); !errors.Is(err, bridge.ErrParams) {
			t.Errorf("%s: %v, want %v", name, err, bridge.ErrParams)
		}
	}
}

func moduleQuery(c *chain) module.Query { return module.Query{State: c.store, Height: c.height} }

// TestDepositsByAccount: the deposits route with ?account= lists that
// account's deposits only (through its index), with paging by outpoint.
func TestDepositsByAccount(t *testing.T) {
	alice, bob, op := newAcct(1), newAcct(2), newAcct(3)
	p, _ := testParams(t, op)
	p.Threshold = 1
	c := newChain(t, p, alice, bob, op)
	for _, u := range []*acct{alice, bob} {
		if err := c.do(u, bridge.NewAddressMsg()); err != nil {
			t.Fatal(err)
		}
	}
	for i, u := range []*acct{alice, bob, alice, alice} {
		if err := c.do(op, bridge.NewAttestMsg(h32(byte(10+i)), uint32(i), c.address(u), 10_000, h32(9), 500)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(params req) []bridge.DepositView {
		v, err := c.route("/api/v1/bridge/deposits").Handle(module.Query{State: c.store}, params)
		if err != nil {
			t.Fatal(err)
		}
		return v.([]bridge.DepositView)
	}
	all := list(req{"account": alice.addr.String()})
	if len(all) != 3 {
		t.Fatalf("alice's deposits: %+v", all)
	}
	for _, d := range all {
		if d.Account != alice.addr || d.Minted == 0 {
			t.Fatalf("deposit %+v", d)
		}
	}
	page := list(req{"account": alice.addr.String(), "after": all[0].Outpoint, "limit": "1"})
	if len(page) != 1 || page[0].Outpoint != all[1].Outpoint {
		t.Fatalf("page after %s: %+v", all[0].Outpoint, page)
	}
	if got := list(req{}); len(got) != 4 {
		t.Fatalf("all deposits: %d", len(got))
	}
}

// p2wshMultisig is the regtest P2WSH address of the m-of-n script of
// pubs, the keys in BIP 67 order, built with btcd's txscript.
func p2wshMultisig(t *testing.T, m int, pubs []*btcec.PublicKey) string {
	t.Helper()
	sorted := slices.Clone(pubs)
	slices.SortFunc(sorted, func(a, b *btcec.PublicKey) int {
		return bytes.Compare(a.SerializeCompressed(), b.SerializeCompressed())
	})
	var keys []*btcutil.AddressPubKey
	for _, k := range sorted {
		a, err := btcutil.NewAddressPubKey(k.SerializeCompressed(), &chaincfg.RegressionNetParams)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, a)
	}
	script, err := txscript.MultiSigScript(keys, m)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(script)
	a, err := btcutil.NewAddressWitnessScriptHash(h[:], &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

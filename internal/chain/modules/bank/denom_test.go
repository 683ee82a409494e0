package bank_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func newBank(t *testing.T) (*bank.Keeper, *state.Cache) {
	t.Helper()
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bank.NewKeeper()
	b.RegisterDenom(bank.Denom{Name: "btc", Decimals: 8, Minters: []string{"bridge"}})
	b.AddModuleAccounts("exchange")
	return b, state.NewCache(st)
}

func audit(t *testing.T, b *bank.Keeper, kv *state.Cache) map[string]module.Finding {
	t.Helper()
	out := map[string]module.Finding{}
	for _, inv := range b.Invariants() {
		f := inv.Check(module.Query{State: kv})
		if f.Broken {
			t.Fatalf("%s broken: %s", inv.Name, f.Detail)
		}
		out[inv.Name] = f
	}
	return out
}

// TestBTCMintSendBurnKeepsItsOwnSupply: btc minted by the bridge, moved
// and burned keeps its own books, apart from AITBC's, and the invariants
// count it.
func TestBTCMintSendBurnKeepsItsOwnSupply(t *testing.T) {
	b, kv := newBank(t)
	alice, bob := address.Address{1}, address.Address{2}
	if err := b.Mint(kv, alice, 50*coin.Unit); err != nil {
		t.Fatal(err)
	}
	if err := b.MintDenom(kv, "bridge", alice, "btc", 150_000_000); err != nil {
		t.Fatal(err)
	}
	if err := b.SendDenom(kv, alice, bob, "btc", 50_000_000); err != nil {
		t.Fatal(err)
	}
	if err := b.BurnDenom(kv, "bridge", bob, "btc", 20_000_000); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.BalanceOf(kv, alice, "btc"); got != 100_000_000 {
		t.Fatalf("alice btc %d", got)
	}
	if got, _ := b.BalanceOf(kv, bob, "btc"); got != 30_000_000 {
		t.Fatalf("bob btc %d", got)
	}
	s, err := b.DenomSupply(kv, "btc")
	if err != nil || s.Circulating != 130_000_000 || s.Minted != 150_000_000 || s.Burned != 20_000_000 {
		t.Fatalf("btc supply %+v %v", s, err)
	}
	if sup, _ := b.SupplyOf(kv, bank.Native); sup != 50*coin.Unit {
		t.Fatalf("aitbc supply %s", sup)
	}
	// AITBC's books do not see btc.
	if bal, _ := b.Balance(kv, alice); bal != 50*coin.Unit {
		t.Fatalf("alice aitbc %s", bal)
	}
	all, err := b.Balances(kv, alice)
	if err != nil || len(all) != 2 || all["btc"] != 100_000_000 || all[bank.Native] != 50*coin.Unit {
		t.Fatalf("balances %v %v", all, err)
	}
	if all, _ := b.Balances(kv, address.Address{9}); len(all) != 1 || all[bank.Native] != 0 {
		t.Fatalf("empty account balances %v", all)
	}
	f := audit(t, b, kv)["bank/denoms"]
	if f.Figures["btc_supply"] != "130000000" || f.Figures["btc_balances"] != "130000000" {
		t.Fatalf("bank/denoms figures %v", f.Figures)
	}
}

// TestNativeThroughDenomAPIIsTheNativeAPI: "aitbc" through the
// denomination methods reads and writes the native balances and supply.
func TestNativeThroughDenomAPIIsTheNativeAPI(t *testing.T) {
	b, kv := newBank(t)
	alice, bob := address.Address{1}, address.Address{2}
	if err := b.Mint(kv, alice, 10*coin.Unit); err != nil {
		t.Fatal(err)
	}
	if err := b.SendDenom(kv, alice, bob, bank.Native, 3*coin.Unit); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Balance(kv, bob); got != 3*coin.Unit {
		t.Fatalf("bob %s", got)
	}
	if got, _ := b.BalanceOf(kv, alice, bank.Native); got != 7*coin.Unit {
		t.Fatalf("alice %s", got)
	}
	if err := b.MintDenom(kv, "bridge", alice, bank.Native, 1); !errors.Is(err, bank.ErrNotMinter) {
		t.Fatalf("minting aitbc through MintDenom: %v", err)
	}
	audit(t, b, kv)
}

// TestDenomRefusals: unknown denominations, modules that are not minters,
// zero amounts and overdrafts are refused with their errors and write
// nothing.
func TestDenomRefusals(t *testing.T) {
	b, kv := newBank(t)
	alice := address.Address{1}
	if err := b.MintDenom(kv, "bridge", alice, "btc", 10); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		do   func(kv *state.Cache) error
		want error
	}{
		"mint by non-minter":  {func(kv *state.Cache) error { return b.MintDenom(kv, "exchange", alice, "btc", 1) }, bank.ErrNotMinter},
		"burn by non-minter":  {func(kv *state.Cache) error { return b.BurnDenom(kv, "jobs", alice, "btc", 1) }, bank.ErrNotMinter},
		"unknown denom send":  {func(kv *state.Cache) error { return b.SendDenom(kv, alice, address.Address{2}, "eth", 1) }, bank.ErrUnknownDenom},
		"unknown denom mint":  {func(kv *state.Cache) error { return b.MintDenom(kv, "bridge", alice, "eth", 1) }, bank.ErrUnknownDenom},
		"overdraft":           {func(kv *state.Cache) error { return b.SendDenom(kv, alice, address.Address{2}, "btc", 11) }, bank.ErrInsufficientFunds},
		"burn beyond balance": {func(kv *state.Cache) error { return b.BurnDenom(kv, "bridge", alice, "btc", 11) }, bank.ErrInsufficientFunds},
		"zero send":           {func(kv *state.Cache) error { return b.SendDenom(kv, alice, address.Address{2}, "btc", 0) }, bank.ErrZeroAmount},
		"zero mint":           {func(kv *state.Cache) error { return b.MintDenom(kv, "bridge", alice, "btc", 0) }, bank.ErrZeroAmount},
	} {
		child := kv.Child()
		if err := c.do(child); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if child.Len() != 0 {
			t.Errorf("%s: refused but wrote %d keys", name, child.Len())
		}
	}
	if _, err := b.BalanceOf(kv, alice, "eth"); !errors.Is(err, bank.ErrUnknownDenom) {
		t.Fatalf("balance of unknown denom: %v", err)
	}
	audit(t, b, kv)
}

// TestSendMessageCarriesTheDenom: bank/send with a denomination moves it;
// the native form is encoded as before; a module account cannot receive
// either; naming "aitbc" in the new form is refused.
func TestSendMessageCarriesTheDenom(t *testing.T) {
	b, kv := newBank(t)
	alice, bob := address.Address{1}, address.Address{2}
	if err := b.MintDenom(kv, "bridge", alice, "btc", 1000); err != nil {
		t.Fatal(err)
	}
	if n, o := bank.NewSendDenomMsg(bob, bank.Native, 5), bank.NewSendMsg(bob, 5); string(n.Body) != string(o.Body) {
		t.Fatalf("native transfer encoding changed: %x vs %x", n.Body, o.Body)
	}
	exec := func(msg tx.Msg) error {
		child := kv.Child()
		err := b.Exec(&module.Context{KV: child, Signer: alice}, msg)
		if err == nil {
			child.Write()
		}
		return err
	}
	if err := exec(bank.NewSendDenomMsg(bob, "btc", 400)); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.BalanceOf(kv, bob, "btc"); got != 400 {
		t.Fatalf("bob btc %d", got)
	}
	if err := exec(bank.NewSendDenomMsg(address.Module("exchange"), "btc", 1)); !errors.Is(err, bank.ErrModuleAccount) {
		t.Fatalf("btc to a module account: %v", err)
	}
	if err := exec(bank.NewSendDenomMsg(bob, "btc", 601)); !errors.Is(err, bank.ErrInsufficientFunds) {
		t.Fatalf("overdraft: %v", err)
	}
	m, _ := tx.NewMsg(bank.TypeSend, bank.MsgSendDenom{To: bob[:], Amount: 1, Denom: bank.Native})
	if err := exec(m); !errors.Is(err, tx.ErrInvalidMsg) {
		t.Fatalf("aitbc in the three-field form: %v", err)
	}
	d, err := b.Describe(bank.NewSendDenomMsg(bob, "btc", 7))
	if err != nil || d.(map[string]any)["denom"] != "btc" {
		t.Fatalf("describe %v %v", d, err)
	}
	audit(t, b, kv)
}

// TestExportImportCarriesDenoms: an exported bank with btc imports into a
// chain that registers btc, and is refused by one that does not.
func TestExportImportCarriesDenoms(t *testing.T) {
	b, kv := newBank(t)
	alice := address.Address{1}
	if err := b.MintDenom(kv, "bridge", alice, "btc", 12345); err != nil {
		t.Fatal(err)
	}
	if err := b.Mint(kv, alice, 7); err != nil {
		t.Fatal(err)
	}
	raw, err := b.ExportGenesis(kv)
	if err != nil {
		t.Fatal(err)
	}
	b2, kv2 := newBank(t)
	if err := b2.ImportGenesis(&module.Context{KV: kv2}, raw); err != nil {
		t.Fatal(err)
	}
	if got, _ := b2.BalanceOf(kv2, alice, "btc"); got != 12345 {
		t.Fatalf("imported btc %d", got)
	}
	if s, _ := b2.DenomSupply(kv2, "btc"); s.Minted != 12345 || s.Circulating != 12345 {
		t.Fatalf("imported btc supply %+v", s)
	}
	audit(t, b2, kv2)

	bare := bank.NewKeeper()
	st, _ := state.OpenInMemory()
	defer st.Close()
	if err := bare.ImportGenesis(&module.Context{KV: state.NewCache(st)}, raw); !errors.Is(err, bank.ErrUnknownDenom) {
		t.Fatalf("import into a chain without btc: %v", err)
	}
	var recs module.Records
	_ = json.Unmarshal(raw, &recs)
	if len(recs.Records) < 5 {
		t.Fatalf("export has %d records", len(recs.Records))
	}
}

func TestParseFormatUnits(t *testing.T) {
	for _, c := range []struct {
		s   string
		dec int
		v   coin.Amount
	}{{"1", 8, 100_000_000}, {"0.00000001", 8, 1}, {"0.5", 8, 50_000_000}, {"21000000", 8, 2_100_000_000_000_000}, {"3", 0, 3}} {
		v, err := bank.ParseUnits(c.s, c.dec)
		if err != nil || v != c.v {
			t.Fatalf("parse %q: %d %v", c.s, v, err)
		}
		if f := bank.FormatUnits(v, c.dec); f != c.s {
			t.Fatalf("format %d: %q want %q", v, f, c.s)
		}
	}
	for _, s := range []string{"", "-1", "1.", ".", "0.000000001", "1e5", "184467440737.09551616", " 1"} {
		if _, err := bank.ParseUnits(s, 8); !errors.Is(err, coin.ErrInvalid) {
			t.Fatalf("parse %q: %v", s, err)
		}
	}
}

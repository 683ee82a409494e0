package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/btcnode"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/testnet"
	"github.com/aitbc/aitbc/internal/walletd"
)

// env is a real devnet (one validator, the wallet daemon, the bridge in
// genesis) with a real btcd regtest node; the test drives the bridge
// daemon step by step, so nothing races against block timing.
type env struct {
	t    *testing.T
	ctx  context.Context
	d    *devnet.Devnet
	node *rpc.Client
	btc  *btcnode.Node
	reg  *prometheus.Registry
}

func start(t *testing.T, confirmations int64) *env {
	t.Helper()
	return startWith(t, confirmations, 1, 1)
}

// startWith is start with an m-of-n bridge (operators' wallets and keys
// are the devnet's: e.d.BTC.Operators, e.d.BTC.XPrvs).
func startWith(t *testing.T, confirmations int64, n, m int) *env {
	t.Helper()
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	d, err := devnet.Start(ctx, devnet.Config{
		Home: t.TempDir(), BlockTime: 150 * time.Millisecond, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off", CometRPCListen: "off",
		P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", p), Miners: -1,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		BTC:      true, BTCManual: true, BTCConfirmations: confirmations, BTCOperators: n, BTCThreshold: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, d: d, node: rpc.NewClient(d.RPCURL()), btc: d.BTC.Node, reg: prometheus.NewRegistry()}
	t.Cleanup(func() {
		actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if au, err := e.node.Audit(actx); err != nil || !au.OK {
			t.Errorf("audit at the end of the test: %v %v", err, au.Err())
		}
		d.Close()
	})
	return e
}

// daemon is a fresh bridge daemon on the devnet's state file, as after a
// (re)start; fail, when set, crashes its step at a named point.
func (e *env) daemon(fail func(string) error) *bridge.Daemon {
	e.t.Helper()
	return e.operator(0, fail)
}

// operator is operator i's daemon, fresh, as after a (re)start.
func (e *env) operator(i int, fail func(string) error) *bridge.Daemon {
	e.t.Helper()
	cfg := bridge.Config{XPrv: e.d.BTC.XPrvs[i], StateFile: e.d.BTC.StateFiles[i], BTC: e.btc.Client, Chain: e.node, Operator: e.d.BTC.Operators[i]}
	if fail != nil {
		cfg = bridge.WithFailpoint(cfg, fail)
	}
	e.reg = prometheus.NewRegistry()
	cfg.Registry = e.reg
	dm, err := bridge.New(e.ctx, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return dm
}

func (e *env) step(dm *bridge.Daemon) {
	e.t.Helper()
	if err := dm.Step(e.ctx); err != nil {
		e.t.Fatalf("bridge step: %v", err)
	}
}

// user is a funded AITBC wallet with its deposit address.
func (e *env) user(name string) (walletd.WalletSender, string) {
	e.t.Helper()
	svc := e.d.Wallets.Service()
	wi, err := svc.Create(e.ctx, name, "correct horse battery")
	if err != nil {
		e.t.Fatal(err)
	}
	sub, err := svc.Send(e.ctx, devnet.GenesisWallet, "123", wi.Address, 100*coin.Unit, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	e.commit(sub.TxHash)
	s := walletd.WalletSender{S: svc, Name: name, Password: "correct horse battery"}
	e.send(s, cb.NewAddressMsg())
	a, err := cb.QueryAddress(e.ctx, e.node, wi.Address)
	if err != nil {
		e.t.Fatal(err)
	}
	return s, a.Address
}

func (e *env) commit(hash string) rpc.Transaction {
	e.t.Helper()
	v, err := e.node.WaitTx(e.ctx, hash, 50*time.Millisecond)
	if err != nil || v.Status != "committed" {
		e.t.Fatalf("tx %s: %v %+v", hash, err, v)
	}
	return v
}

func (e *env) send(s walletd.WalletSender, msg tx.Msg) rpc.Transaction {
	e.t.Helper()
	h, err := s.Send(e.ctx, msg)
	if err != nil {
		e.t.Fatalf("%s: %v", msg.Type, err)
	}
	return e.commit(h)
}

func (e *env) btcOf(s walletd.WalletSender) uint64 {
	e.t.Helper()
	a, err := s.S.Address(e.ctx, s.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := bank.QueryBalances(e.ctx, e.node, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Balances[cb.Denom]
}

func isCode(err error, target *errs.Error) bool {
	return errors.Is(err, target) || httpx.IsCode(err, target.Name)
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
			g.Set(mf.Metric[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func (e *env) deposit(to string, sat int64) *chainhash.Hash {
	e.t.Helper()
	a, err := btcutil.DecodeAddress(to, btcnode.Params())
	if err != nil {
		e.t.Fatal(err)
	}
	h, err := e.d.BTC.Wallet.Send(a, sat, 2_000)
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

func (e *env) mine(n int) []*chainhash.Hash {
	e.t.Helper()
	hs, err := e.btc.Mine(n)
	if err != nil {
		e.t.Fatal(err)
	}
	return hs
}

func (e *env) bridgeView() cb.View {
	e.t.Helper()
	v, err := cb.Query(e.ctx, e.node)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

var errCrash = errors.New("killed here")

func crashAt(point string) func(string) error {
	return func(p string) error {
		if p == point {
			return errCrash
		}
		return nil
	}
}

// TestDepositMintWithdrawAcrossRestarts: BTC sent to an account's deposit
// address is minted as btc to the satoshi after N confirmations, once,
// though the daemon is killed right after attesting (before it records
// that it did) and restarted; a withdrawal burns the btc and the BTC
// arrives at the Bitcoin address once, though the daemon is killed after
// signing (before broadcasting), after broadcasting (before recording the
// payment) and after recording it (before saving its state); the reserves
// cover the supply at the end.
func TestDepositMintWithdrawAcrossRestarts(t *testing.T) {
	e := start(t, 1)
	alice, addr := e.user("alice")
	const sat = 123_456_789

	e.deposit(addr, 500) // below the dust limit the bridge mints (546 sat): kept, never minted
	e.deposit(addr, sat)
	dm := e.daemon(crashAt("attested"))
	e.step(dm) // nothing final yet: the deposit is in the mempool
	if got := e.btcOf(alice); got != 0 {
		t.Fatalf("minted %d sat before the deposit was mined", got)
	}
	e.mine(1)
	if err := dm.Step(e.ctx); !errors.Is(err, errCrash) {
		t.Fatalf("step: %v, want the crash after attesting", err)
	}
	if got := e.btcOf(alice); got != sat {
		t.Fatalf("alice holds %d sat of btc after the attestation, want %d", got, sat)
	}
	dm = e.daemon(nil) // restarted: it attests again, the chain refuses a second mint
	e.step(dm)
	e.step(dm)
	if st := dm.Status(); st.PendingMints != 0 {
		t.Fatalf("deposits still waiting after the restart: %+v", st)
	}
	if got, v := e.btcOf(alice), e.bridgeView(); got != sat || v.Supply != sat || v.Deposits != 1 {
		t.Fatalf("after the restart alice holds %d sat, supply %d, %d deposits; want %d, %d, 1", got, v.Supply, v.Deposits, sat, sat)
	}

	// withdraw 0.5 BTC to a fresh Bitcoin address
	dest, err := btcnode.NewWallet()
	if err != nil {
		t.Fatal(err)
	}
	dest.Attach(e.btc)
	const out = 50_000_000
	e.send(alice, cb.NewWithdrawMsg(dest.Addr.EncodeAddress(), out))
	if got := e.btcOf(alice); got != sat-out {
		t.Fatalf("alice holds %d sat after withdrawing %d, want %d", got, out, sat-out)
	}
	dm = e.daemon(crashAt("signed"))
	if err := dm.Step(e.ctx); !errors.Is(err, errCrash) {
		t.Fatalf("step: %v, want the crash after signing", err)
	}
	dm = e.daemon(crashAt("broadcast"))
	if err := dm.Step(e.ctx); !errors.Is(err, errCrash) {
		t.Fatalf("step: %v, want the crash after broadcasting", err)
	}
	e.mine(1)
	dm = e.daemon(crashAt("recorded")) // killed once the payment is on chain, before its state is saved
	if err := dm.Step(e.ctx); !errors.Is(err, errCrash) {
		t.Fatalf("step: %v, want the crash after recording the payment", err)
	}
	dm = e.daemon(nil)
	e.step(dm)
	e.mine(1)
	e.step(dm)
	e.step(dm)
	if st := dm.Status(); st.Unbroadcast != 0 {
		t.Fatalf("a paid withdrawal's signed transaction is still kept: %+v", st)
	}
	got, err := dest.Balance()
	if err != nil {
		t.Fatal(err)
	}
	w, err := cb.QueryWithdrawal(e.ctx, e.node, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != int64(w.Payout) || w.Payout != out-w.Fee || w.Status != "paid" {
		t.Fatalf("the Bitcoin address received %d sat; withdrawal %+v (payout %d)", got, w, out-w.Fee)
	}
	raw, err := e.btc.Client.GetRawTransactionVerbose(mustHash(t, w.PaidTx))
	if err != nil || raw.Confirmations < 1 {
		t.Fatalf("payment %s: %+v %v", w.PaidTx, raw, err)
	}
	// paid once: the bridge's outputs hold what was deposited less what it
	// paid out (payout and fee), to the satoshi
	st := dm.Status()
	if st.ReserveSat != sat-out+500 || st.Halted { // the daemon holds the dust output too
		t.Fatalf("bridge reserve %d sat, want %d; status %+v", st.ReserveSat, sat-out+500, st)
	}
	r, err := bridge.Reserves(e.ctx, e.node, e.btc.Client)
	if err != nil {
		t.Fatal(err)
	}
	if r.ReserveSat != sat-out || r.SupplySat != sat-out || !r.OK {
		t.Fatalf("reserves %+v, want %d held against a supply of %d", r, sat-out, sat-out)
	}
}

func mustHash(t *testing.T, s string) *chainhash.Hash {
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestReorganisations: with N = 2, a deposit whose block is replaced
// before it has 2 confirmations is minted once, from the block that
// replaced it; a reorganisation that replaces a minted deposit's block
// halts the bridge — in its status and metric, and on chain, where
// withdrawals are then refused.
func TestReorganisations(t *testing.T) {
	e := start(t, 2)
	alice, addr := e.user("alice")
	// a key that is not the bridge's is refused before anything runs
	other, _, err := cb.AccountKey([]byte("not the devnet's bridge seed....."), "regtest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bridge.New(e.ctx, bridge.Config{XPrv: other, StateFile: filepath.Join(t.TempDir(), "s.json"), BTC: e.btc.Client, Chain: e.node, Operator: e.d.BTC.Operator}); !errors.Is(err, bridge.ErrKey) {
		t.Fatalf("daemon with another key: %v, want %v", err, bridge.ErrKey)
	}
	dm := e.daemon(nil)
	e.step(dm)
	checkMetricsDocumented(t, e.reg)

	const first = 40_000_000
	e.deposit(addr, first)
	h1 := e.mine(1)[0]
	e.step(dm) // one confirmation of two: not read yet
	if got := e.btcOf(alice); got != 0 {
		t.Fatalf("minted %d sat at 1 of 2 confirmations", got)
	}
	if err := e.btc.Client.InvalidateBlock(h1); err != nil { // a 1-block reorganisation
		t.Fatal(err)
	}
	hs := e.mine(2) // the deposit, back from the mempool, in the new branch
	if hs[0].IsEqual(h1) {
		t.Fatal("the replacing block is the invalidated one")
	}
	e.step(dm)
	e.step(dm)
	if got := e.btcOf(alice); got != first {
		t.Fatalf("alice holds %d sat after a shallow reorganisation, want %d once", got, first)
	}
	deps, err := cb.QueryDeposits(e.ctx, e.node, "", 10)
	if err != nil || len(deps) != 1 || deps[0].BlockHash != hs[0].String() {
		t.Fatalf("deposits %+v (%v), want one in block %s", deps, err, hs[0])
	}
	if st := dm.Status(); st.Halted {
		t.Fatalf("halted on a reorganisation shallower than N: %s", st.HaltReason)
	}

	// now replace the minted deposit's block, 2 deep
	if err := e.btc.Client.InvalidateBlock(hs[0]); err != nil {
		t.Fatal(err)
	}
	e.mine(3)
	if err := dm.Step(e.ctx); !errors.Is(err, bridge.ErrHalted) {
		t.Fatalf("step after a deep reorganisation: %v, want %v", err, bridge.ErrHalted)
	}
	if st := dm.Status(); !st.Halted || st.HaltReason == "" {
		t.Fatalf("status %+v, want halted with a reason", st)
	}
	if v := testutil.ToFloat64(gauge(t, e.reg, "aitbc_bridge_halted")); v != 1 {
		t.Fatalf("aitbc_bridge_halted = %v", v)
	}
	// the daemon's report says so too (docs/api/bridge.openapi.yaml)
	srv := httptest.NewServer(dm.Handler(e.reg))
	defer srv.Close()
	var st bridge.Status
	if err := httpx.Do(e.ctx, srv.Client(), "GET", srv.URL+"/api/v1/bridge/status", nil, nil, &st); err != nil || !st.Halted {
		t.Fatalf("GET /api/v1/bridge/status: %+v %v", st, err)
	}
	if err := httpx.Do(e.ctx, srv.Client(), "GET", srv.URL+"/nope", nil, nil, nil); !httpx.IsCode(err, "not_found") {
		t.Fatalf("GET /nope: %v", err)
	}
	spec, err := os.ReadFile("../../docs/api/bridge.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api/v1/bridge/status", "/metrics"} {
		if !strings.Contains(string(spec), "\n  "+p+":\n    get:") {
			t.Errorf("%s not in docs/api/bridge.openapi.yaml", p)
		}
	}
	v := e.bridgeView()
	if v.Halted == nil {
		t.Fatalf("the chain does not know the bridge halted: %+v", v)
	}
	h, err := alice.Send(e.ctx, cb.NewWithdrawMsg("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 20_000))
	if err == nil { // admitted to the mempool: refused in its block
		v, werr := e.node.WaitTx(e.ctx, h, 50*time.Millisecond)
		if werr != nil || v.Status == "committed" || v.Codespace != cb.ErrHalted.Codespace || v.Code != cb.ErrHalted.Code {
			t.Fatalf("withdrawal on a halted bridge: %+v %v", v, werr)
		}
	} else if !isCode(err, cb.ErrHalted) {
		t.Fatalf("withdrawal on a halted bridge: %v", err)
	}
	if got := e.btcOf(alice); got != first {
		t.Fatalf("alice holds %d sat after a refused withdrawal, want %d", got, first)
	}
	// a restart stays halted
	if err := e.daemon(nil).Step(e.ctx); !errors.Is(err, bridge.ErrHalted) {
		t.Fatalf("restarted daemon: %v", err)
	}
	if _, err := os.Stat(filepath.Clean(e.d.BTC.StateFile)); err != nil {
		t.Fatal(err)
	}
}

// checkMetricsDocumented: docs/METRICS.md lists every metric the daemon
// registers, and no aitbc_bridge_ metric it does not.
func checkMetricsDocumented(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
		if !strings.Contains(string(doc), "| `"+mf.GetName()+"` |") {
			t.Errorf("docs/METRICS.md does not list %s", mf.GetName())
		}
	}
	if len(have) < 5 {
		t.Fatalf("the daemon registers %d metrics", len(have))
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `(aitbc_bridge_[a-z0-9_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		if !have[m[1]] {
			t.Errorf("docs/METRICS.md lists %s, which the daemon does not register", m[1])
		}
	}
}

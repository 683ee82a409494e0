package pools_test

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/modules/pools"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func addr(i byte) address.Address {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = i
	return address.FromPubKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

type fakeMiners map[address.Address]uint8

func (f fakeMiners) Get(_ state.Reader, a address.Address) (*miners.Miner, error) {
	st, ok := f[a]
	if !ok {
		return nil, nil
	}
	return &miners.Miner{Address: a[:], Status: st}, nil
}

// every10 ends an epoch every 10 blocks.
type every10 struct{}

func (every10) EpochEnds(_ state.Reader, h int64) (bool, error) { return h%10 == 0, nil }

// TestPoolSplitByHand: 1,000.000001 AITBC, fee 2.5%, members with 3,000,
// 1,000 and 0 tokens. Fee floor(1,000,000,001 × 250 / 10,000) = 25,000,000;
// rest 975,000,001; shares floor(rest × 3/4) = 731,250,000 and floor(rest
// × 1/4) = 243,750,000 and 0; the operator gets the remainder 25,000,001.
func TestPoolSplitByHand(t *testing.T) {
	op, shares := pools.PoolSplit(1_000_000_001, 250, []uint64{3000, 1000, 0})
	if op != 25_000_001 || len(shares) != 3 || shares[0] != 731_250_000 || shares[1] != 243_750_000 || shares[2] != 0 {
		t.Fatalf("operator %d shares %v", op, shares)
	}
	// No work recorded: everything to the operator. A 100% fee: the same.
	if op, shares := pools.PoolSplit(777, 0, []uint64{0, 0}); op != 777 || shares[0]+shares[1] != 0 {
		t.Fatalf("no work: operator %d shares %v", op, shares)
	}
	if op, shares := pools.PoolSplit(777, 10_000, []uint64{5}); op != 777 || shares[0] != 0 {
		t.Fatalf("100%% fee: operator %d shares %v", op, shares)
	}
}

type world struct {
	t     *testing.T
	store *state.Store
	kv    *state.Cache
	bank  *bank.Keeper
	k     *pools.Keeper
	h     int64
}

func newWorld(t *testing.T, ms fakeMiners) *world {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	b := bank.NewKeeper()
	k := pools.NewKeeper(b, ms)
	k.SetEpochs(every10{})
	b.AddModuleAccounts(k.Accounts()...)
	return &world{t: t, store: st, kv: state.NewCache(st), bank: b, k: k, h: 1}
}

func (w *world) ctx(signer address.Address, kv *state.Cache) *module.Context {
	return &module.Context{KV: kv, Height: w.h, Signer: signer}
}

func (w *world) exec(signer address.Address, msg tx.Msg) error {
	kv := w.kv.Child()
	err := w.k.Exec(w.ctx(signer, kv), msg)
	if err == nil {
		kv.Write()
	} else if kv.Len() != 0 {
		w.t.Errorf("%s refused (%v) but wrote %d keys", msg.Type, err, kv.Len())
	}
	return err
}

func (w *world) bal(a address.Address) coin.Amount {
	b, err := w.bank.Balance(w.kv, a)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w *world) audit() {
	w.t.Helper()
	q := module.Query{State: w.kv, Height: w.h}
	for _, inv := range w.k.Invariants() {
		if f := inv.Check(q); f.Broken {
			w.t.Fatalf("%s broken: %s", inv.Name, f.Detail)
		}
	}
}

// earn is what the rewards module does when a miner is paid: ask the
// pools module where the pay goes, and send it there.
func (w *world) earn(from, miner address.Address, tokens uint64, amt coin.Amount) address.Address {
	w.t.Helper()
	to, err := w.k.Route(w.kv, miner, tokens, amt)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.bank.Send(w.kv, from, to, amt); err != nil {
		w.t.Fatal(err)
	}
	return to
}

func (w *world) endBlock() {
	w.t.Helper()
	if err := w.k.EndBlock(w.ctx(address.Address{}, w.kv)); err != nil {
		w.t.Fatal(err)
	}
	w.audit()
	w.h++
}

func TestPoolLifecycleByHand(t *testing.T) {
	op, m1, m2, m3, idle, stranger, payer := addr(1), addr(2), addr(3), addr(4), addr(5), addr(6), addr(7)
	w := newWorld(t, fakeMiners{m1: miners.StatusActive, m2: miners.StatusActive, m3: miners.StatusActive, idle: 2})
	if err := w.bank.MintGenesis(w.kv, payer, 100_000*coin.Unit); err != nil {
		t.Fatal(err)
	}

	// Bad input: specific errors, nothing written (exec checks).
	for _, tc := range []struct {
		who  address.Address
		msg  tx.Msg
		want error
	}{
		{op, pools.NewCreateMsg("alpha", 10_001), pools.ErrFee},
		{op, pools.NewCreateMsg("Alpha!", 100), pools.ErrName},
		{op, pools.NewCreateMsg("", 100), pools.ErrName},
		{m1, pools.NewJoinMsg("alpha"), pools.ErrNotFound},
		{m1, pools.NewLeaveMsg(), pools.ErrNotInPool},
	} {
		if err := w.exec(tc.who, tc.msg); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.msg.Type, err, tc.want)
		}
	}
	if err := w.exec(op, pools.NewCreateMsg("alpha", 250)); err != nil {
		t.Fatal(err)
	}
	if err := w.exec(stranger, pools.NewCreateMsg("alpha", 0)); !errors.Is(err, pools.ErrExists) {
		t.Fatalf("create twice: %v", err)
	}
	if err := w.exec(op, pools.NewCreateMsg("full-fee", 10_000)); err != nil {
		t.Fatalf("a 100%% fee is allowed: %v", err)
	}
	for _, m := range []address.Address{m1, m2} {
		if err := w.exec(m, pools.NewJoinMsg("alpha")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		who  address.Address
		msg  tx.Msg
		want error
	}{
		{m1, pools.NewJoinMsg("alpha"), pools.ErrInPool},
		{m1, pools.NewJoinMsg("full-fee"), pools.ErrInPool},
		{stranger, pools.NewJoinMsg("alpha"), pools.ErrNotAMiner},
		{idle, pools.NewJoinMsg("alpha"), pools.ErrNotAMiner},
		{m3, pools.NewLeaveMsg(), pools.ErrNotInPool},
	} {
		if err := w.exec(tc.who, tc.msg); !errors.Is(err, tc.want) {
			t.Fatalf("%s by %s: %v, want %v", tc.msg.Type, tc.who, err, tc.want)
		}
	}
	w.endBlock() // height 1: no epoch end

	// Epoch 1 (heights 1-10): m1 settles 3,000 tokens for 600 AITBC and
	// m2 1,000 for 200.000001; m3 (no pool) is paid directly; at the
	// epoch's end the rewards module pays m1 a reward of 100 AITBC,
	// which goes to the pool too. m2 leaves before the end: its work
	// still counts.
	if to := w.earn(payer, m1, 3000, 600*coin.Unit); to == m1 {
		t.Fatal("a member's pay went to the member, not the pool")
	}
	w.earn(payer, m2, 1000, 200*coin.Unit+1)
	if to := w.earn(payer, m3, 500, 50*coin.Unit); to != m3 {
		t.Fatalf("a non-member's pay went to %s", to)
	}
	if err := w.exec(m2, pools.NewLeaveMsg()); err != nil {
		t.Fatal(err)
	}
	if p, _ := w.k.Get(w.kv, "alpha"); p.Members != 1 || p.Accrued != 800*coin.Unit+1 {
		t.Fatalf("pool before the epoch's end: %+v", p)
	}
	for w.h < 10 {
		w.endBlock()
	}
	w.earn(payer, m1, 0, 100*coin.Unit) // the epoch's reward, paid before pools' EndBlock
	w.endBlock()                        // height 10: split

	// By hand: accrued 900,000,001 units; fee floor(900,000,001 × 250 /
	// 10,000) = 22,500,000; rest 877,500,001; m1 floor(rest × 3/4) =
	// 658,125,000; m2 floor(rest / 4) = 219,375,000; operator 900,000,001
	// − 658,125,000 − 219,375,000 = 22,500,001.
	if got := w.bal(m1); got != 658_125_000 {
		t.Errorf("m1 %d", got)
	}
	if got := w.bal(m2); got != 219_375_000 {
		t.Errorf("m2 %d", got)
	}
	if got := w.bal(op); got != 22_500_001 {
		t.Errorf("operator %d", got)
	}
	if got := w.bal(m3); got != 50*coin.Unit {
		t.Errorf("m3 %d", got)
	}
	if got := w.bal(address.Module(pools.EarningsAccount)); got != 0 {
		t.Errorf("pools.earnings keeps %d", got)
	}
	p, _ := w.k.Get(w.kv, "alpha")
	if p.Accrued != 0 || p.Paid != 900*coin.Unit+1 || p.Members != 1 {
		t.Fatalf("pool after the split: %+v", p)
	}

	// Epoch 2: nobody records work, but a reward arrives: all to the
	// operator.
	for w.h < 20 {
		w.endBlock()
	}
	w.earn(payer, m1, 0, 7)
	w.endBlock()
	if got := w.bal(op); got != 22_500_001+7 {
		t.Errorf("operator after an epoch without work: %d", got)
	}

	// The invariant catches money in pools.earnings that no pool accrued.
	if err := w.bank.Send(w.kv, payer, address.Module(pools.EarningsAccount), 1); err != nil {
		t.Fatal(err)
	}
	for _, inv := range w.k.Invariants() {
		if f := inv.Check(module.Query{State: w.kv}); inv.Name == "pools/earnings" && !f.Broken {
			t.Fatalf("pools/earnings holds with a stray unit: %s", f.Detail)
		}
	}
}

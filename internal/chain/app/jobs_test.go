package app_test

import (
	"crypto/sha256"
	"errors"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/bank"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/jobs"
	"github.com/aitbc/aitbc/internal/chain/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// market is a harness with a funded customer (alice), coordinator (coord)
// and two miners, each account tracking its own nonce.
type market struct {
	*harness
	nonces map[address.Address]uint64
}

var (
	coord  = newKey(4)
	minerA = newKey(5)
	minerB = newKey(6)
)

func newMarket(t *testing.T) *market {
	h := newHarness(t)
	m := &market{harness: h, nonces: map[address.Address]uint64{}}
	fee := app.DefaultParams().MinFee
	for _, k := range []key{coord, minerA, minerB} {
		m.mustOK(m.do(alice, mustMsg(tx.NewMsg("bank/send", struct {
			_      struct{} `cbor:",toarray"`
			To     []byte
			Amount coin.Amount
		}{To: k.addr[:], Amount: 200 * coin.Unit})), fee))
	}
	return m
}

func mustMsg(m tx.Msg, err error) tx.Msg {
	if err != nil {
		panic(err)
	}
	return m
}

func (m *market) sign(k key, msg tx.Msg) []byte {
	x := &tx.Tx{ChainID: chainID, Nonce: m.nonces[k.addr], Fee: app.DefaultParams().MinFee, Msg: msg}
	x.Sign(k.priv)
	b, _ := x.Encode()
	return b
}

// do runs one transaction in its own block and returns its result.
func (m *market) do(k key, msg tx.Msg, _ ...coin.Amount) *abci.ExecTxResult {
	raw := m.sign(k, msg)
	r := m.block(raw).TxResults[0]
	if r.Code == 0 {
		m.nonces[k.addr]++
	}
	return r
}

func (m *market) mustOK(r *abci.ExecTxResult) {
	m.t.Helper()
	if r.Code != 0 {
		m.t.Fatalf("tx failed: %s", r.Log)
	}
}

func (m *market) mustFail(r *abci.ExecTxResult, want *errs.Error) {
	m.t.Helper()
	got := errs.Lookup(r.Codespace, r.Code)
	if got == nil || !errors.Is(got, want) {
		m.t.Fatalf("got %s/%d %q, want %s", r.Codespace, r.Code, r.Log, want.Name)
	}
}

func (m *market) register(k key, price coin.Amount, models ...string) {
	m.t.Helper()
	m.mustOK(m.do(k, mustMsg(miners.NewRegisterMsg(miners.Capabilities{Models: models, GPU: "cpu", PricePer1k: price}, 100*coin.Unit))))
}

var prompt = sha256.Sum256([]byte("Once upon a time"))

func jobID(b byte) []byte {
	id := make([]byte, jobs.IDLen)
	id[0] = b
	return id
}

func (m *market) create(id []byte, maxPrice coin.Amount, ttl int64) *abci.ExecTxResult {
	return m.do(alice, mustMsg(tx.NewMsg(jobs.TypeCreate, jobs.MsgCreate{
		Spec:        jobs.Spec{ID: id, Model: "tolstoy-1m", PromptHash: prompt[:], MaxTokens: 200, MaxPrice: maxPrice, TTLSeconds: ttl},
		Coordinator: coord.addr[:],
	})))
}

func (m *market) assign(id []byte, miner key) *abci.ExecTxResult {
	return m.do(coord, mustMsg(tx.NewMsg(jobs.TypeAssign, jobs.MsgAssign{ID: id, Miner: miner.addr[:]})))
}

func receipt(id []byte, miner key, tokens uint64, price coin.Amount) jobs.Receipt {
	res := sha256.Sum256([]byte("It was awkward of the French."))
	r := jobs.Receipt{
		JobID: id, ChainID: chainID, Customer: alice.addr[:], Model: "tolstoy-1m",
		PromptHash: prompt[:], ResultHash: res[:], TokensIn: 5, TokensOut: tokens,
		StartMs: 1_700_000_000_000, EndMs: 1_700_000_001_000, Price: price,
	}
	r.Sign(miner.priv)
	return r
}

func (m *market) settle(by key, r jobs.Receipt) *abci.ExecTxResult {
	return m.do(by, mustMsg(tx.NewMsg(jobs.TypeSettle, jobs.MsgSettle{Receipt: r})))
}

func (m *market) job(id []byte) *jobs.Job {
	var j *jobs.Job
	_ = m.app.Committed(func(r state.Reader, _ int64) error {
		var err error
		j, err = m.app.Jobs().Get(r, id)
		return err
	})
	return j
}

func (m *market) checkSupply() {
	m.t.Helper()
	supply, burned := m.supply()
	if supply+burned != m.app.GenesisSupply() {
		m.t.Fatalf("supply %s + burned %s != genesis %s", supply, burned, m.app.GenesisSupply())
	}
}

func TestJobSettlesAndRefundsRemainder(t *testing.T) {
	m := newMarket(t)
	price := 2 * coin.Unit // per 1k tokens
	m.register(minerA, price, "tolstoy-1m")
	aliceBefore := m.balance(alice.addr)
	minerBefore := m.balance(minerA.addr)
	_, burnedBefore := m.supply()
	txFee := app.DefaultParams().MinFee

	id := jobID(1)
	m.mustOK(m.create(id, 10*coin.Unit, 600))
	if got := m.balance(alice.addr); got != aliceBefore-10*coin.Unit-txFee {
		t.Fatalf("escrow not locked: alice %s", got)
	}
	m.mustOK(m.assign(id, minerA))
	r := receipt(id, minerA, 150, jobs.PriceFor(150, price)) // 0.3 AITBC
	m.mustOK(m.settle(coord, r))

	j := m.job(id)
	wantPrice := coin.Amount(300_000)
	wantFee := coin.Amount(30_000) // 10% of the price, burned
	if j.Status != jobs.StatusSettled || j.Paid != wantPrice || j.Fee != wantFee || j.Refund != 10*coin.Unit-wantPrice-wantFee {
		t.Fatalf("job %+v", j)
	}
	if got := m.balance(alice.addr); got != aliceBefore-txFee-wantPrice-wantFee {
		t.Errorf("customer paid %s, want price+fee %s (+ tx fee)", aliceBefore-got, wantPrice+wantFee)
	}
	if got := m.balance(minerA.addr); got != minerBefore+wantPrice {
		t.Errorf("miner got %s, want %s", got-minerBefore, wantPrice)
	}
	_, burned := m.supply()
	// Burned: the protocol fee plus half of the four tx fees of this test's blocks.
	if want := burnedBefore + wantFee + 3*txFee.MulDiv(5000, 10000); burned != want {
		t.Errorf("burned %s, want %s", burned, want)
	}
	m.checkSupply()
	var anchored []byte
	_ = m.app.Committed(func(rd state.Reader, _ int64) error {
		h, _ := r.Hash()
		anchored, _ = rd.Get(jobs.KeyReceipt(h))
		return nil
	})
	if string(anchored) != string(id) {
		t.Error("receipt hash not anchored on chain")
	}
	// No double settlement.
	m.mustFail(m.settle(coord, r), jobs.ErrJobState)
}

func TestReceiptsThatMustNotPay(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.register(minerB, coin.Unit, "tolstoy-1m")
	id := jobID(2)
	m.mustOK(m.create(id, 5*coin.Unit, 600))
	m.mustOK(m.assign(id, minerA))

	bad := receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))
	bad.Sig[0] ^= 1
	m.mustFail(m.settle(coord, bad), jobs.ErrReceiptInvalid)

	tampered := receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))
	tampered.TokensOut = 150 // the signature covered 100
	tampered.Price = jobs.PriceFor(150, coin.Unit)
	m.mustFail(m.settle(coord, tampered), jobs.ErrReceiptInvalid)

	overcharge := receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit)+1)
	m.mustFail(m.settle(coord, overcharge), jobs.ErrReceiptInvalid)

	otherPrompt := receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))
	otherPrompt.PromptHash = make([]byte, 32)
	otherPrompt.Sign(minerA.priv)
	m.mustFail(m.settle(coord, otherPrompt), jobs.ErrReceiptInvalid)

	// Miner A dies; the coordinator reassigns to B. A's receipt no longer pays.
	m.mustOK(m.assign(id, minerB))
	aBefore := m.balance(minerA.addr)
	m.mustFail(m.settle(coord, receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))), jobs.ErrReceiptInvalid)
	m.mustFail(m.settle(minerA, receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))), jobs.ErrNotCoordinator)
	m.mustOK(m.settle(minerB, receipt(id, minerB, 100, jobs.PriceFor(100, coin.Unit))))
	if m.balance(minerA.addr) != aBefore {
		t.Fatal("the replaced miner was paid")
	}
	if j := m.job(id); j.Assignments != 2 || string(j.Miner) != string(minerB.addr[:]) {
		t.Fatalf("job %+v", j)
	}
	m.checkSupply()
}

func TestJobExpiresAndIsRefundedInFull(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit, "tolstoy-1m")
	before := m.balance(alice.addr)
	id := jobID(3)
	m.mustOK(m.create(id, 5*coin.Unit, 10)) // blocks are 1 s apart in the harness
	m.mustOK(m.assign(id, minerA))
	for i := 0; i < 12; i++ {
		m.block()
	}
	j := m.job(id)
	if j.Status != jobs.StatusExpired || j.Refund != 5*coin.Unit {
		t.Fatalf("job %+v", j)
	}
	txFee := app.DefaultParams().MinFee
	if got := m.balance(alice.addr); got != before-txFee {
		t.Fatalf("alice %s, want %s (escrow back, only the create tx fee spent)", got, before-txFee)
	}
	m.mustFail(m.settle(coord, receipt(id, minerA, 10, jobs.PriceFor(10, coin.Unit))), jobs.ErrJobState)
	m.checkSupply()
}

func TestDepositPaysForCoordinatorCreatedJobs(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.mustOK(m.do(alice, mustMsg(tx.NewMsg(jobs.TypeDeposit, jobs.MsgDeposit{Coordinator: coord.addr[:], Amount: 20 * coin.Unit}))))
	id := jobID(4)
	createFor := func(maxPrice coin.Amount) *abci.ExecTxResult {
		return m.do(coord, mustMsg(tx.NewMsg(jobs.TypeCreateFor, jobs.MsgCreateFor{
			Spec:     jobs.Spec{ID: id, Model: "tolstoy-1m", PromptHash: prompt[:], MaxTokens: 100, MaxPrice: maxPrice, TTLSeconds: 60},
			Customer: alice.addr[:],
		})))
	}
	m.mustFail(createFor(21*coin.Unit), jobs.ErrDepositLow)
	m.mustOK(createFor(5 * coin.Unit))
	m.mustOK(m.assign(id, minerA))
	m.mustOK(m.settle(coord, receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))))
	var dep coin.Amount
	_ = m.app.Committed(func(r state.Reader, _ int64) error {
		dep, _ = m.app.Jobs().Deposit(r, alice.addr, coord.addr)
		return nil
	})
	// 100 tokens at 1 AITBC/1k = 0.1, fee 0.01: deposit 20 - 0.11.
	if dep != 20*coin.Unit-110_000 {
		t.Fatalf("deposit %s", dep)
	}
	withdraw := func(a coin.Amount) *abci.ExecTxResult {
		return m.do(alice, mustMsg(tx.NewMsg(jobs.TypeWithdraw, jobs.MsgWithdraw{Coordinator: coord.addr[:], Amount: a})))
	}
	m.mustFail(withdraw(dep+1), jobs.ErrDepositLow)
	m.mustOK(withdraw(dep))
	m.checkSupply()
}

func TestJobBadInput(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit, "other-model")
	m.mustFail(m.create(jobID(5), 5*coin.Unit, 5), jobs.ErrTTL)
	m.mustFail(m.create(jobID(5), 5*coin.Unit, 1_000_000), jobs.ErrTTL)
	m.mustFail(m.create([]byte{1, 2}, 5*coin.Unit, 60), jobs.ErrInvalidJob)
	m.mustFail(m.create(jobID(5), 0, 60), jobs.ErrInvalidJob)
	m.mustFail(m.create(jobID(5), 1_000_000*coin.Unit, 60), bank.ErrInsufficientFunds)
	m.mustOK(m.create(jobID(5), 5*coin.Unit, 60))
	m.mustFail(m.create(jobID(5), 5*coin.Unit, 60), jobs.ErrJobExists)
	// Only the coordinator assigns; the miner must serve the model.
	m.mustFail(m.do(alice, mustMsg(tx.NewMsg(jobs.TypeAssign, jobs.MsgAssign{ID: jobID(5), Miner: minerA.addr[:]}))), jobs.ErrNotCoordinator)
	m.mustFail(m.assign(jobID(5), minerA), jobs.ErrMinerIneligible)
	m.mustFail(m.assign(jobID(5), minerB), jobs.ErrMinerIneligible) // not registered
	m.mustFail(m.assign(jobID(9), minerA), jobs.ErrJobNotFound)
	// The customer may cancel while unassigned.
	before := m.balance(alice.addr)
	m.mustOK(m.do(alice, mustMsg(tx.NewMsg(jobs.TypeCancel, jobs.MsgCancel{ID: jobID(5)}))))
	if got := m.balance(alice.addr); got != before+5*coin.Unit-app.DefaultParams().MinFee {
		t.Fatalf("cancel refund: %s", got)
	}
	m.checkSupply()
}

func TestMinerRegistrationAndUnbonding(t *testing.T) {
	m := newMarket(t)
	before := m.balance(minerA.addr)
	m.mustFail(m.do(minerA, mustMsg(miners.NewRegisterMsg(miners.Capabilities{Models: []string{"m"}}, coin.Unit))), miners.ErrStakeTooLow)
	_, err := miners.NewRegisterMsg(miners.Capabilities{}, 100*coin.Unit)
	if !errors.Is(err, miners.ErrCapabilities) {
		t.Fatalf("empty capabilities: %v", err)
	}
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.mustFail(m.do(minerA, mustMsg(miners.NewRegisterMsg(miners.Capabilities{Models: []string{"m"}}, 100*coin.Unit))), miners.ErrRegistered)
	m.mustOK(m.do(minerA, miners.NewHeartbeatMsg()))
	m.mustFail(m.do(minerB, miners.NewHeartbeatMsg()), miners.ErrNotRegistered)
	m.mustOK(m.do(minerA, miners.NewDeregisterMsg()))
	m.mustFail(m.do(minerA, miners.NewHeartbeatMsg()), miners.ErrUnbonding)
	fees := 3 * app.DefaultParams().MinFee
	if got := m.balance(minerA.addr); got != before-100*coin.Unit-fees {
		t.Fatalf("stake not locked: %s", got)
	}
	for i := 0; i < int(miners.DefaultParams().UnbondingBlocks); i++ {
		m.block()
	}
	if got := m.balance(minerA.addr); got != before-fees {
		t.Fatalf("stake not returned after unbonding: %s, want %s", got, before-fees)
	}
	var mi *miners.Miner
	_ = m.app.Committed(func(r state.Reader, _ int64) error { mi, _ = m.app.Miners().Get(r, minerA.addr); return nil })
	if mi != nil {
		t.Fatal("miner still registered after unbonding")
	}
	m.checkSupply()
}

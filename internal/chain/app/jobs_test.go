package app_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
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

// releaseDelay is the market harness's jobs release delay: blocks are one
// second apart, so this many blocks release a withdrawal or cancellation.
const releaseDelay = 30

func newMarket(t *testing.T) *market {
	jp := jobs.DefaultParams()
	jp.ReleaseDelay = releaseDelay
	jb, _ := json.Marshal(jp)
	h := newHarnessWith(t, fixedSupply(app.Genesis{
		Params:   app.DefaultParams(),
		Accounts: []app.GenesisAccount{{Address: alice.addr, Balance: 1_000 * coin.Unit}},
		Modules:  map[string]json.RawMessage{"jobs": jb},
	}))
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

func spec(id []byte, maxPrice coin.Amount, ttl int64) jobs.Spec {
	return jobs.Spec{ID: id, Model: "tolstoy-1m", PromptHash: prompt[:], MaxTokens: 200, MaxPrice: maxPrice, TTLSeconds: ttl}
}

func (m *market) create(id []byte, maxPrice coin.Amount, ttl int64) *abci.ExecTxResult {
	return m.do(alice, jobs.NewCreateMsg(spec(id, maxPrice, ttl), coord.addr))
}

func (m *market) assign(id []byte, miner key) *abci.ExecTxResult {
	return m.do(coord, jobs.NewAssignMsg(id, miner.addr))
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
	return m.do(by, jobs.NewSettleMsg(r))
}

// keeper finds the application's module of type K.
func keeper[K module.Module](h *harness) K {
	for _, mod := range h.app.Modules() {
		if k, ok := mod.(K); ok {
			return k
		}
	}
	panic("no such module")
}

func (m *market) job(id []byte) *jobs.Job {
	var j *jobs.Job
	_ = m.app.Committed(func(q module.Query) error {
		var err error
		j, err = keeper[*jobs.Keeper](m.harness).Get(q.State, id)
		return err
	})
	return j
}

func (m *market) deposit() jobs.Deposit {
	var d jobs.Deposit
	_ = m.app.Committed(func(q module.Query) error {
		var err error
		d, err = keeper[*jobs.Keeper](m.harness).Deposit(q.State, alice.addr, coord.addr)
		return err
	})
	return d
}

// checkSupply audits the chain: supply, module accounts and records agree.
func (m *market) checkSupply() {
	m.t.Helper()
	m.audit()
	supply, burned := m.supply()
	if supply+burned != 1000*coin.Unit {
		m.t.Fatalf("supply %s + burned %s != genesis 1000", supply, burned)
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
	coordBefore := m.balance(coord.addr)
	m.mustOK(m.assign(id, minerA))
	r := receipt(id, minerA, 150, jobs.PriceFor(150, price)) // 0.3 AITBC
	m.mustOK(m.settle(coord, r))

	j := m.job(id)
	wantPrice := coin.Amount(300_000)
	wantFee := coin.Amount(30_000)          // 10% of the price, to the block's fee split
	wantComm := coin.Amount(3_000 + 15_000) // 0.003 + 5% of the price, to the coordinator
	if j.Status != jobs.StatusSettled || j.Paid != wantPrice || j.Fee != wantFee || j.Commission != wantComm ||
		j.Refund != 10*coin.Unit-wantPrice-wantFee-wantComm {
		t.Fatalf("job %+v", j)
	}
	if got := m.balance(alice.addr); got != aliceBefore-txFee-wantPrice-wantFee-wantComm {
		t.Errorf("customer paid %s, want price+fee+commission %s (+ tx fee)", aliceBefore-got, wantPrice+wantFee+wantComm)
	}
	if got := m.balance(minerA.addr); got != minerBefore+wantPrice {
		t.Errorf("miner got %s, want %s", got-minerBefore, wantPrice)
	}
	if got, want := m.balance(coord.addr), coordBefore+wantComm-2*txFee; got != want {
		t.Errorf("coordinator has %s after assign and settle, want %s (commission less two tx fees)", got, want)
	}
	_, burned := m.supply()
	// Burned: half of the protocol fee and half of the three tx fees of
	// this test's blocks (the harness's fee split is 50% burn, 50% proposer).
	if want := burnedBefore + wantFee.MulDiv(5000, 10000) + 3*txFee.MulDiv(5000, 10000); burned != want {
		t.Errorf("burned %s, want %s", burned, want)
	}
	m.checkSupply()
	var anchor jobs.ReceiptAnchor
	_ = m.app.Committed(func(q module.Query) error {
		v, err := routeOf(keeper[*jobs.Keeper](m.harness), "/api/v1/receipts/{hash}").Handle(q, params{"hash": r.HashHex()})
		anchor, _ = v.(jobs.ReceiptAnchor)
		return err
	})
	if !anchor.Anchored || anchor.JobID != hex.EncodeToString(id) {
		t.Errorf("receipt hash not anchored on chain: %+v", anchor)
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

func (m *market) createFor(id []byte, maxPrice coin.Amount) *abci.ExecTxResult {
	return m.do(coord, jobs.NewCreateForMsg(spec(id, maxPrice, 60), alice.addr))
}

func (m *market) withdraw(a coin.Amount) *abci.ExecTxResult {
	return m.do(alice, jobs.NewWithdrawMsg(coord.addr, a))
}

func TestDepositPaysForCoordinatorCreatedJobs(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.mustOK(m.do(alice, jobs.NewDepositMsg(coord.addr, 20*coin.Unit)))
	if got := m.balance(address.Module(jobs.DepositsAccount)); got != 20*coin.Unit {
		t.Fatalf("deposits account holds %s, want 20", got)
	}
	id := jobID(4)
	m.mustFail(m.createFor(id, 21*coin.Unit), jobs.ErrDepositLow)
	m.mustOK(m.createFor(id, 5*coin.Unit))
	if got := m.balance(address.Module(jobs.EscrowAccount)); got != 5*coin.Unit {
		t.Fatalf("escrow account holds %s, want 5", got)
	}
	m.mustOK(m.assign(id, minerA))
	m.mustOK(m.settle(coord, receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))))
	// 100 tokens at 1 AITBC/1k = 0.1, fee 0.01, commission 0.003 + 0.005:
	// deposit 20 - 0.118.
	dep := m.deposit().Amount
	if dep != 20*coin.Unit-118_000 {
		t.Fatalf("deposit %s", dep)
	}
	if got := m.balance(address.Module(jobs.EscrowAccount)); got != 0 {
		t.Fatalf("escrow account holds %s after the only job settled", got)
	}
	m.mustFail(m.withdraw(dep+1), jobs.ErrDepositLow)
	before := m.balance(alice.addr)
	m.mustOK(m.withdraw(dep))
	fee := app.DefaultParams().MinFee
	if got := m.balance(alice.addr); got != before-fee {
		t.Fatalf("a withdrawal paid at once: alice %s, want %s", got, before-fee)
	}
	for range releaseDelay {
		m.block()
	}
	if got := m.balance(alice.addr); got != before-fee+dep {
		t.Fatalf("after the release delay alice has %s, want %s", got, before-fee+dep)
	}
	if d := m.deposit(); d.Amount != 0 || d.Withdrawing != 0 {
		t.Fatalf("deposit left after full withdrawal: %+v", d)
	}
	m.checkSupply()
}

// TestWithdrawalLeavesTheDepositForItsReleaseDelay is the chain's half of
// "pay before you get": a customer withdraws its whole deposit and a job
// its coordinator already ran is created from the same deposit in the same
// block. The job is paid (the money stays for the release delay), and the
// withdrawal pays back only what is left.
func TestWithdrawalLeavesTheDepositForItsReleaseDelay(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.mustOK(m.do(alice, jobs.NewDepositMsg(coord.addr, 10*coin.Unit)))
	before := m.balance(alice.addr)
	id := jobID(7)
	withdrawAll := m.sign(alice, jobs.NewWithdrawMsg(coord.addr, 10*coin.Unit))
	create := m.sign(coord, jobs.NewCreateForMsg(spec(id, 5*coin.Unit, 60), alice.addr))
	for i, r := range m.block(withdrawAll, create).TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	m.nonces[alice.addr]++
	m.nonces[coord.addr]++
	if d := m.deposit(); d.Amount != 5*coin.Unit || d.Withdrawing != 10*coin.Unit || d.Spendable() != 0 {
		t.Fatalf("deposit after withdraw+create: %+v", d)
	}
	// Announced withdrawals count against what new jobs may reserve, but
	// not twice: nothing more can be announced.
	m.mustFail(m.withdraw(coin.Unit), jobs.ErrDepositLow)
	m.mustOK(m.assign(id, minerA))
	m.mustOK(m.settle(coord, receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))))
	for range releaseDelay {
		m.block()
	}
	// The job cost 0.118 (price 0.1, fee 0.01, commission 0.008); its 4.882 refund went back to the deposit and out
	// with the withdrawal: alice has her 10 less the job, less the fee of
	// her one successful transaction (a refused one costs nothing).
	fee := app.DefaultParams().MinFee
	if got, want := m.balance(alice.addr), before+10*coin.Unit-118_000-fee; got != want {
		t.Fatalf("alice %s, want %s", got, want)
	}
	if got := m.balance(minerA.addr); got == 0 {
		t.Fatal("miner not paid")
	}
	m.checkSupply()
}

// TestCustomerCancelIsScheduledAndAnAssignmentVoidsIt: a customer that
// cancels its job in the block where the coordinator assigns it does not
// get the escrow back (the miner is paid from it); a cancellation nobody
// answers refunds after the release delay; the coordinator cancels at once.
func TestCustomerCancelIsScheduledAndAnAssignmentVoidsIt(t *testing.T) {
	m := newMarket(t)
	m.register(minerA, coin.Unit, "tolstoy-1m")
	id := jobID(8)
	m.mustOK(m.create(id, 5*coin.Unit, 600))
	cancel := m.sign(alice, jobs.NewCancelMsg(id))
	assign := m.sign(coord, jobs.NewAssignMsg(id, minerA.addr))
	for i, r := range m.block(cancel, assign).TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	m.nonces[alice.addr]++
	m.nonces[coord.addr]++
	if j := m.job(id); j.Status != jobs.StatusAssigned || j.CancelAt != 0 {
		t.Fatalf("job after cancel+assign: %+v", j)
	}
	for range releaseDelay + 1 {
		m.block()
	}
	if j := m.job(id); j.Status != jobs.StatusAssigned {
		t.Fatalf("a voided cancellation took effect: %s", jobs.StatusName(j.Status))
	}
	minerBefore := m.balance(minerA.addr)
	m.mustOK(m.settle(coord, receipt(id, minerA, 100, jobs.PriceFor(100, coin.Unit))))
	if m.balance(minerA.addr) != minerBefore+100_000 {
		t.Fatal("miner not paid for a job whose customer tried to cancel it")
	}

	// Unanswered: the refund comes after the delay, not before.
	id2 := jobID(9)
	m.mustOK(m.create(id2, 5*coin.Unit, 600))
	before := m.balance(alice.addr)
	m.mustOK(m.do(alice, jobs.NewCancelMsg(id2)))
	m.mustFail(m.do(alice, jobs.NewCancelMsg(id2)), jobs.ErrJobState) // already requested
	fee := app.DefaultParams().MinFee
	if j := m.job(id2); j.Status != jobs.StatusOpen || j.CancelAt == 0 || m.balance(alice.addr) != before-fee {
		t.Fatalf("cancel took effect at once: %+v", j)
	}
	for range releaseDelay {
		m.block()
	}
	if j := m.job(id2); j.Status != jobs.StatusCanceled || m.balance(alice.addr) != before-fee+5*coin.Unit {
		t.Fatalf("cancel after the delay: %s, alice %s", jobs.StatusName(j.Status), m.balance(alice.addr))
	}
	m.mustFail(m.assign(id2, minerA), jobs.ErrJobState)
	// A receipt for a job the chain canceled pays nothing.
	m.mustFail(m.settle(coord, receipt(id2, minerA, 100, jobs.PriceFor(100, coin.Unit))), jobs.ErrJobState)

	// A job the coordinator created from a deposit is locked from creation:
	// its customer cannot cancel it.
	m.mustOK(m.do(alice, jobs.NewDepositMsg(coord.addr, 10*coin.Unit)))
	m.mustOK(m.createFor(jobID(11), 5*coin.Unit))
	m.mustFail(m.do(alice, jobs.NewCancelMsg(jobID(11))), jobs.ErrNotCoordinator)

	// The coordinator, which knows it runs nothing, cancels at once.
	id3 := jobID(10)
	m.mustOK(m.create(id3, 5*coin.Unit, 600))
	m.mustOK(m.do(coord, jobs.NewCancelMsg(id3)))
	if j := m.job(id3); j.Status != jobs.StatusCanceled {
		t.Fatalf("coordinator cancel: %s", jobs.StatusName(j.Status))
	}
	m.checkSupply()
}

// TestModuleAccountsCannotBeSentTo: ordinary transfers into a module
// account would break its invariant, so they are refused.
func TestModuleAccountsCannotBeSentTo(t *testing.T) {
	m := newMarket(t)
	for _, name := range []string{jobs.EscrowAccount, jobs.DepositsAccount, miners.StakeAccount} {
		m.mustFail(m.do(alice, bank.NewSendMsg(address.Module(name), coin.Unit)), bank.ErrModuleAccount)
	}
	m.register(minerA, coin.Unit, "tolstoy-1m")
	if got := m.balance(address.Module(miners.StakeAccount)); got != 100*coin.Unit {
		t.Fatalf("stake account holds %s, want 100", got)
	}
	m.checkSupply()
}

// TestSendToZeroAddressIsRefused: coins sent to the all-zero address
// would be lost; the transfer is refused with its own code and moves nothing.
func TestSendToZeroAddressIsRefused(t *testing.T) {
	m := newMarket(t)
	before := m.balance(alice.addr)
	m.mustFail(m.do(alice, bank.NewSendMsg(address.Address{}, coin.Unit)), bank.ErrZeroAddress)
	if got := m.balance(alice.addr); got != before {
		t.Fatalf("alice holds %s after the refused send, had %s", got, before)
	}
	if got := m.balance(address.Address{}); got != 0 {
		t.Fatalf("the zero address holds %s", got)
	}
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
	// Only the customer or the coordinator cancels, only while unassigned.
	m.mustFail(m.do(minerB, jobs.NewCancelMsg(jobID(5))), jobs.ErrNotCustomer)
	m.mustFail(m.do(alice, jobs.NewCancelMsg(jobID(9))), jobs.ErrJobNotFound)
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
	_ = m.app.Committed(func(q module.Query) error {
		mi, _ = keeper[*miners.Keeper](m.harness).Get(q.State, minerA.addr)
		return nil
	})
	if mi != nil {
		t.Fatal("miner still registered after unbonding")
	}
	m.checkSupply()
}

// params is a module.Request with path values only.
type params map[string]string

func (p params) PathValue(name string) string { return p[name] }
func (p params) Param(string) string          { return "" }

// routeOf finds a module's route by path.
func routeOf(q module.Querier, path string) module.Route {
	for _, r := range q.Routes() {
		if r.Path == path {
			return r
		}
	}
	panic("no route " + path)
}

package app_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

var spanC = newKey(7)

const hashTolstoy = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// splitMarket: minerA serves layers 0-1 of tolstoy-1m, minerB and spanC
// layers 2-3, each registered as an agent with its endpoint.
func splitMarket(t *testing.T) *market {
	m := newMarket(t)
	m.mustOK(m.do(alice, mustMsg(tx.NewMsg("bank/send", struct {
		_      struct{} `cbor:",toarray"`
		To     []byte
		Amount coin.Amount
	}{To: spanC.addr[:], Amount: 10 * coin.Unit}))))
	for _, s := range []struct {
		k           key
		first, last int
	}{{minerA, 0, 1}, {minerB, 2, 3}, {spanC, 2, 3}} {
		m.mustOK(m.do(s.k, agents.NewRegisterSpansMsg("span", hashTolstoy, []string{"inference", "span"}, "http://127.0.0.1:8031",
			[]agents.Span{{Model: "tolstoy-1m", First: s.first, Last: s.last}})))
	}
	return m
}

func chainOf(tag string) []byte { h := sha256.Sum256([]byte(tag)); return h[:] }

func stage(k key, id []byte, session string, first, last uint32, tokens uint64, in, out string) jobs.StageReceipt {
	s := jobs.StageReceipt{JobID: id, ChainID: chainID, Session: session, Model: "tolstoy-1m", First: first, Last: last,
		Tokens: tokens, InHash: chainOf(in), OutHash: chainOf(out)}
	s.SignWith(k.priv.Public().(ed25519.PublicKey), func(b []byte) []byte { return ed25519.Sign(k.priv, b) })
	return s
}

// settlement: the route A (0-1) → C (2-3) over 12 positions, and B, which
// served 2-3 for 7 positions before it dropped out.
func settlement(id []byte) jobs.MsgSettleStages {
	res := sha256.Sum256([]byte("It was awkward of the French."))
	return jobs.MsgSettleStages{JobID: id, ResultHash: res[:], TokensIn: 5, TokensOut: 8, Layers: 4, PricePer1k: 2 * coin.Unit, Route: 2,
		Stages: []jobs.StageReceipt{
			stage(minerA, id, "s-1", 0, 1, 12, "tokens", "h2"),
			stage(spanC, id, "s-3", 2, 3, 12, "h2", "logits"),
			stage(minerB, id, "s-2", 2, 3, 7, "h2-part", "logits-part"),
		}}
}

func TestSplitJobPaysEveryStage(t *testing.T) {
	m := splitMarket(t)
	id := jobID(1)
	m.mustOK(m.create(id, 10*coin.Unit, 600))
	servers := []address.Address{minerA.addr, spanC.addr, minerB.addr}
	before := map[address.Address]coin.Amount{}
	for _, a := range servers {
		before[a] = m.balance(a)
	}
	aliceBefore, coordBefore := m.balance(alice.addr), m.balance(coord.addr)
	set := settlement(id)
	m.mustOK(m.do(coord, jobs.NewSettleStagesMsg(set)))
	m.checkSupply()

	j := m.job(id)
	price := jobs.PriceFor(8, 2*coin.Unit) // 16,000 units
	if j.Status != jobs.StatusSettled || j.Paid != price {
		t.Fatalf("job %s paid %s, want settled paying %s", jobs.StatusName(j.Status), j.Paid, price)
	}
	// layers × tokens: A 2×12, C 2×12, B 2×7 of 62; shares rounded down,
	// the remainder to the route's first stage (A).
	wantC, wantB := price.MulDiv(24, 62), price.MulDiv(14, 62)
	want := map[address.Address]coin.Amount{minerA.addr: price - wantC - wantB, spanC.addr: wantC, minerB.addr: wantB}
	var sum coin.Amount
	for _, a := range servers {
		got := m.balance(a) - before[a]
		if got != want[a] {
			t.Errorf("server %s got %s, want %s", a, got, want[a])
		}
		sum += got
	}
	if sum != price {
		t.Fatalf("servers got %s in all, the price is %s", sum, price)
	}
	gotCoord := m.balance(coord.addr) - coordBefore
	if refund := m.balance(alice.addr) - aliceBefore; refund != j.Refund || j.Paid+j.Fee+j.Commission+j.Refund != j.Escrow {
		t.Fatalf("refund %s (job says %s); paid %s + fee %s + commission %s + refund %s != escrow %s", refund, j.Refund, j.Paid, j.Fee, j.Commission, j.Refund, j.Escrow)
	}
	if gotCoord+txFee() != j.Commission {
		t.Fatalf("coordinator got %s net of its fee, commission %s", gotCoord, j.Commission)
	}
	// Once: the same settlement again is refused.
	m.mustFail(m.do(coord, jobs.NewSettleStagesMsg(set)), jobs.ErrJobState)
	// Transaction queries and the explorer describe it.
	d, err := keeper[*jobs.Keeper](m.harness).Describe(jobs.NewSettleStagesMsg(set))
	if err != nil {
		t.Fatal(err)
	}
	if desc := d.(map[string]any); len(desc["stages"].([]map[string]any)) != 3 || desc["stages"].([]map[string]any)[2]["route"] != false {
		t.Fatalf("described as %v", desc)
	}
}

func txFee() coin.Amount { return app.DefaultParams().MinFee }

func TestSplitSettlementRefusals(t *testing.T) {
	m := splitMarket(t)
	id := jobID(2)
	m.mustOK(m.create(id, 10*coin.Unit, 600))
	badSig := settlement(id)
	badSig.Stages[2].Tokens = 3 // after signing
	wrongSpan := settlement(id)
	wrongSpan.Stages[0] = stage(minerA, id, "s-1", 0, 2, 12, "tokens", "h3") // A announced 0-1
	wrongSpan.Stages[1] = stage(spanC, id, "s-3", 3, 3, 12, "h3", "logits")
	overRoute := settlement(id)
	overRoute.Stages[0] = stage(minerA, id, "s-1", 0, 1, 14, "tokens", "h2") // 14 positions for 5 in + 8 out
	overRoute.Stages[1] = stage(spanC, id, "s-3", 2, 3, 14, "h2", "logits")
	overDropped := settlement(id)
	overDropped.Stages[2] = stage(minerB, id, "s-2", 2, 3, 13, "h2-part", "logits-part") // more than the route's 12
	broken := settlement(id)
	broken.Stages[1] = stage(spanC, id, "s-3", 2, 3, 12, "other", "logits") // not A's output
	gap := settlement(id)
	gap.Layers = 5
	dup := settlement(id)
	dup.Stages[2] = dup.Stages[1]
	dup.Route = 2
	otherJob := settlement(id)
	otherJob.Stages[2] = stage(minerB, jobID(9), "s-2", 2, 3, 7, "a", "b")

	watch := []address.Address{minerA.addr, minerB.addr, spanC.addr, alice.addr}
	before := map[address.Address]coin.Amount{}
	for _, a := range watch {
		before[a] = m.balance(a)
	}
	for _, c := range []struct {
		name string
		set  jobs.MsgSettleStages
		want *errs.Error
	}{
		{"bad signature", badSig, jobs.ErrStageSignature},
		{"wrong span", wrongSpan, jobs.ErrStageSpan},
		{"route overclaims", overRoute, jobs.ErrStageOverclaim},
		{"dropped stage overclaims", overDropped, jobs.ErrStageOverclaim},
		{"route does not chain", broken, jobs.ErrStageRoute},
		{"route misses a layer", gap, jobs.ErrStageRoute},
		{"duplicate stage", dup, jobs.ErrStageDuplicate},
		{"stage of another job", otherJob, jobs.ErrStageInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			m.t = t
			m.mustFail(m.do(coord, jobs.NewSettleStagesMsg(c.set)), c.want)
		})
	}
	m.t = t
	// Not the coordinator: a server cannot settle for itself.
	m.mustFail(m.do(minerA, jobs.NewSettleStagesMsg(settlement(id))), jobs.ErrNotCoordinator)
	for _, a := range watch {
		if got := m.balance(a); got != before[a] {
			t.Errorf("%s: balance %s, was %s: a refused settlement moved money", a, got, before[a])
		}
	}
	if j := m.job(id); j.Status != jobs.StatusOpen {
		t.Fatalf("job is %s after refusals", jobs.StatusName(j.Status))
	}
	m.checkSupply()
	// An assigned job is not a split job.
	m.register(minerA, coin.Unit, "tolstoy-1m")
	m.mustOK(m.assign(id, minerA))
	m.mustFail(m.do(coord, jobs.NewSettleStagesMsg(settlement(id))), jobs.ErrJobState)
}

package lifecycle_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator/lifecycle"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

var (
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	minerA = address.Address{1}
	minerB = address.Address{2}
	limits = lifecycle.Limits{MaxAttempts: 2, Margin: 30 * time.Second}
)

func newJob() store.Job {
	j := store.Job{ID: "j1", Model: "m", Created: t0, Expires: t0.Add(15 * time.Minute)}
	return lifecycle.Start(j, t0.Add(10*time.Minute), limits)
}

// run applies events in order and fails the test on an unexpected error.
func run(t *testing.T, j store.Job, evs ...lifecycle.Event) (store.Job, lifecycle.Effects) {
	t.Helper()
	var fx lifecycle.Effects
	for _, e := range evs {
		var err error
		if e.Now.IsZero() {
			e.Now = t0.Add(time.Minute)
		}
		if j, fx, err = lifecycle.Step(j, e, limits); err != nil {
			t.Fatalf("%v on %s job: %v", e.Kind, j.Status, err)
		}
	}
	return j, fx
}

func dispatch(m address.Address) lifecycle.Event {
	return lifecycle.Event{Kind: lifecycle.Dispatch, Miner: m}
}

func TestJobRunsToSettlement(t *testing.T) {
	j, fx := run(t, newJob(), dispatch(minerA))
	if j.Status != store.StatusDispatched || j.Attempt != 1 || j.Miner != minerA || !fx.StatusChanged {
		t.Fatalf("after dispatch: %+v %+v", j, fx)
	}
	j, _ = run(t, j, lifecycle.Event{Kind: lifecycle.Token, Miner: minerA, Attempt: 1})
	if j.Status != store.StatusRunning || j.Started.IsZero() {
		t.Fatalf("a token implies the ack: %s", j.Status)
	}
	j, fx = run(t, j, lifecycle.Event{Kind: lifecycle.Complete, Miner: minerA, Result: lifecycle.Result{Text: "hi", TokensOut: 1, Receipt: []byte{1}}})
	if j.Status != store.StatusCompleted || !fx.Settle || fx.FreeMiner != minerA || !fx.Release || j.Result != "hi" {
		t.Fatalf("after result: %+v %+v", j, fx)
	}
	j, fx = run(t, j, lifecycle.Event{Kind: lifecycle.ChainSettled, Settlement: lifecycle.Settlement{Paid: 5}})
	if j.Status != store.StatusSettled || !fx.Final || j.Paid != 5 || j.Result != "hi" {
		t.Fatalf("after settlement: %+v %+v", j, fx)
	}
	if _, _, err := lifecycle.Step(j, dispatch(minerA), limits); !errors.Is(err, lifecycle.ErrFinal) {
		t.Fatalf("event on a settled job: %v", err)
	}
}

func TestRequeueExcludesMinerAndGivesUpAfterMaxAttempts(t *testing.T) {
	j, fx := run(t, newJob(), dispatch(minerA),
		lifecycle.Event{Kind: lifecycle.Requeue, Miner: minerA, Why: "declined", Exclude: true})
	if j.Status != store.StatusQueued || !fx.Queue || !fx.Restart || !fx.Discard || fx.FreeMiner != minerA || len(j.Excluded) != 1 {
		t.Fatalf("after first failure: %+v %+v", j, fx)
	}
	if fx.StopMiner != (address.Address{}) {
		t.Fatal("a miner that declined is not told to stop")
	}
	j, fx = run(t, j, dispatch(minerB),
		lifecycle.Event{Kind: lifecycle.Requeue, Miner: minerB, Why: "no ack", Stop: true})
	if j.Status != store.StatusFailed || !fx.Final || fx.Queue || fx.StopMiner != minerB || j.Attempt != 2 {
		t.Fatalf("after MaxAttempts: %+v %+v", j, fx)
	}
}

func TestStaleMinerMessagesAreIgnored(t *testing.T) {
	j, _ := run(t, newJob(), dispatch(minerA),
		lifecycle.Event{Kind: lifecycle.Requeue, Miner: minerA, Why: "lost"}, dispatch(minerB))
	for _, e := range []lifecycle.Event{
		{Kind: lifecycle.Token, Miner: minerA},                // the old miner
		{Kind: lifecycle.Complete, Miner: minerB, Attempt: 1}, // an old attempt
		{Kind: lifecycle.Ack, Miner: address.Address{}},       // nobody
	} {
		e.Now = t0
		if _, _, err := lifecycle.Step(j, e, limits); !errors.Is(err, lifecycle.ErrStale) {
			t.Errorf("%v from %v attempt %d: %v", e.Kind, e.Miner, e.Attempt, err)
		}
	}
}

func TestDeadlineExpiresUnfinishedJobsButNotCompletedOnes(t *testing.T) {
	j := newJob()
	cut := lifecycle.Cutoff(j, limits.Margin)
	if want := j.Expires.Add(-30 * time.Second); !cut.Equal(want) {
		t.Fatalf("cutoff %v, want %v", cut, want)
	}
	if _, _, err := lifecycle.Step(j, lifecycle.Event{Kind: lifecycle.Deadline, Now: cut.Add(-time.Second)}, limits); !errors.Is(err, lifecycle.ErrStale) {
		t.Fatalf("deadline before the cutoff: %v", err)
	}
	if _, _, err := lifecycle.Step(j, lifecycle.Event{Kind: lifecycle.Dispatch, Miner: minerA, Now: cut}, limits); !errors.Is(err, lifecycle.ErrStale) {
		t.Fatalf("dispatch at the cutoff: %v", err)
	}
	running, _ := run(t, j, dispatch(minerA), lifecycle.Event{Kind: lifecycle.Ack, Miner: minerA})
	exp, fx := run(t, running, lifecycle.Event{Kind: lifecycle.Deadline, Now: cut})
	if exp.Status != store.StatusExpired || fx.StopMiner != minerA || !fx.Discard {
		t.Fatalf("running job at its cutoff: %+v %+v", exp, fx)
	}
	done, _ := run(t, running, lifecycle.Event{Kind: lifecycle.Complete, Miner: minerA})
	if _, _, err := lifecycle.Step(done, lifecycle.Event{Kind: lifecycle.Deadline, Now: cut}, limits); !errors.Is(err, lifecycle.ErrStale) {
		t.Fatalf("a completed job still settles after its cutoff: %v", err)
	}
}

func TestShortJobsGetAQuarterOfTheirTTLAsMargin(t *testing.T) {
	j := store.Job{Created: t0, Expires: t0.Add(10 * time.Second)}
	if got, want := lifecycle.Cutoff(j, 30*time.Second), t0.Add(7500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("cutoff %v, want %v", got, want)
	}
}

func TestChainCancelStopsTheMinerAndDiscardsOutput(t *testing.T) {
	j, _ := run(t, newJob(), dispatch(minerA), lifecycle.Event{Kind: lifecycle.Token, Miner: minerA})
	j, fx := run(t, j, lifecycle.Event{Kind: lifecycle.ChainCanceled})
	if j.Status != store.StatusFailed || j.ErrorCode != lifecycle.CodePaymentNotConfirmed || fx.StopMiner != minerA || !fx.Discard || !fx.Final || fx.Settle {
		t.Fatalf("%+v %+v", j, fx)
	}
	// A completed job the chain canceled is not settled and keeps no result.
	done, _ := run(t, newJob(), dispatch(minerA), lifecycle.Event{Kind: lifecycle.Complete, Miner: minerA, Result: lifecycle.Result{Text: "x", Receipt: []byte{1}}})
	c, fx := run(t, done, lifecycle.Event{Kind: lifecycle.ChainCanceled})
	if c.Result != "" || c.Receipt != nil || fx.Settle || c.Status != store.StatusFailed {
		t.Fatalf("canceled after completion: %+v %+v", c, fx)
	}
}

func TestUnplaceableJobIsRefundedAtOnce(t *testing.T) {
	j, fx := run(t, newJob(), lifecycle.Event{Kind: lifecycle.Fail, Why: "too pricey"})
	if j.Status != store.StatusFailed || !fx.CancelOnChain {
		t.Fatalf("%+v %+v", j, fx)
	}
}

func TestWindowOnlyGrowsAndIsCappedAtTheCutoff(t *testing.T) {
	j := newJob()
	start := j.PaidUntil
	j, fx := run(t, j, lifecycle.Event{Kind: lifecycle.Window, Until: start.Add(-time.Minute)})
	if !j.PaidUntil.Equal(start) || fx.Changed {
		t.Fatalf("a shorter window shrank PaidUntil: %v", j.PaidUntil)
	}
	j, _ = run(t, j, lifecycle.Event{Kind: lifecycle.Window, Until: j.Expires.Add(time.Hour)})
	if cut := lifecycle.Cutoff(j, limits.Margin); !j.PaidUntil.Equal(cut) || j.PaymentConfirmed {
		t.Fatalf("PaidUntil %v, want the cutoff %v, unconfirmed", j.PaidUntil, cut)
	}
	j, fx = run(t, j, lifecycle.Event{Kind: lifecycle.Window, Confirmed: true, OnChain: true})
	if !j.PaymentConfirmed || !j.OnChain || !fx.Changed || !fx.Release {
		t.Fatalf("confirmation: %+v %+v", j, fx)
	}
}

func TestReleasedFollowsTheWindow(t *testing.T) {
	j := lifecycle.Start(store.Job{Created: t0, Expires: t0.Add(time.Hour)}, t0.Add(time.Minute), limits)
	if !lifecycle.Released(j, t0) || lifecycle.Released(j, t0.Add(time.Minute)) {
		t.Fatal("released exactly while now < PaidUntil")
	}
	j.Status = store.StatusSettled
	if !lifecycle.Released(j, t0.Add(time.Hour)) {
		t.Fatal("a settled job's output is paid for")
	}
}

func TestWindows(t *testing.T) {
	delay, margin := 600*time.Second, 30*time.Second
	cases := []struct {
		name      string
		got, want time.Time
	}{
		{"deposit read at T", lifecycle.DepositWindow(t0, delay, margin), t0.Add(570 * time.Second)},
		{"no block time: no window", lifecycle.DepositWindow(time.Time{}, delay, margin), time.Time{}},
		{"no release delay (today's chain): no window", lifecycle.DepositWindow(t0, 0, margin), time.Time{}},
		{"wallet job, no cancel", lifecycle.WalletWindow(time.Time{}, t0, delay, margin), t0.Add(570 * time.Second)},
		{"wallet job, cancel announced", lifecycle.WalletWindow(t0.Add(100*time.Second), t0, delay, margin), t0.Add(70 * time.Second)},
	}
	for _, c := range cases {
		if !c.got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestUnpaidOnlyBeforeTheChainHasIt(t *testing.T) {
	j, _ := run(t, newJob(), lifecycle.Event{Kind: lifecycle.Window, OnChain: true, Confirmed: true})
	if _, _, err := lifecycle.Step(j, lifecycle.Event{Kind: lifecycle.Unpaid, Now: t0}, limits); !errors.Is(err, lifecycle.ErrStale) {
		t.Fatalf("unpaid after the chain escrowed it: %v", err)
	}
	j, _ = run(t, newJob(), lifecycle.Event{Kind: lifecycle.Unpaid, Why: "insufficient deposit"})
	if j.Status != store.StatusFailed || j.ErrorCode != lifecycle.CodePaymentNotConfirmed {
		t.Fatalf("%+v", j)
	}
}

func TestRecoverRequeuesInFlightJobs(t *testing.T) {
	j, _ := run(t, newJob(), dispatch(minerA))
	j, fx := run(t, j, lifecycle.Event{Kind: lifecycle.Recover})
	if j.Status != store.StatusQueued || !fx.Queue || j.Attempt != 1 || !j.Miner.IsZero() {
		t.Fatalf("%+v %+v", j, fx)
	}
}

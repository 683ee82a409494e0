// Package lifecycle is the coordinator's job state machine: the statuses a
// job passes through, the events that move it, and the payment gate that
// decides when a job's output may be shown.
//
// It is pure: Step takes a job and an event and returns the next job and
// the effects its caller must carry out (queue the job again, stop a
// miner, settle, discard held output ...). It does no I/O and reads no
// clock; time comes in the event. Every change of a job's status in the
// coordinator goes through Step, so the transitions below are the whole
// lifecycle:
//
//	queued ──Dispatch──▶ dispatched ──Ack/Token──▶ running ──Complete──▶ completed ──ChainSettled──▶ settled
//	  ▲                      │                        │
//	  └──────Requeue─────────┴────────────────────────┘   (attempt+1; failed after MaxAttempts)
//	queued/dispatched/running ──Deadline──▶ expired        (the chain refunds at the TTL)
//	any live status ──ChainExpired──▶ expired, ──ChainCanceled/Unpaid──▶ failed (payment_not_confirmed)
//
// Imported by the coordinator only.
package lifecycle

import (
	"errors"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// CodePaymentNotConfirmed is the error code of a job that ended before the
// chain confirmed its payment: its held output was discarded.
const CodePaymentNotConfirmed = "payment_not_confirmed"

// Errors of Step. Both mean "nothing to do": the caller drops the event.
var (
	// ErrFinal is returned for an event on a job that already ended.
	ErrFinal = errors.New("lifecycle: job already ended")
	// ErrStale is returned for an event that does not apply to the job as
	// it is now: a message about an earlier attempt or another miner, or a
	// transition its status does not allow.
	ErrStale = errors.New("lifecycle: event does not apply")
)

// Kind says what happened to a job.
type Kind int

// Event kinds.
const (
	Dispatch      Kind = iota + 1 // placed on Miner at PricePer1k: queued → dispatched, attempt+1
	Ack                           // the miner took it: dispatched → running
	Token                         // the miner streams: dispatched → running (a token implies the ack)
	Requeue                       // the attempt failed but another may succeed: → queued, or failed after MaxAttempts
	Fail                          // the miner failed it for good, or no miner ever can: → failed
	Complete                      // result with a verified receipt: → completed
	Window                        // the chain showed the payment: PaidUntil may grow, payment may be confirmed
	ChainSettled                  // settlement committed: → settled
	ChainExpired                  // the chain refunded it at its TTL: → expired
	ChainCanceled                 // the chain refunded it before assignment: → failed (payment_not_confirmed)
	Unpaid                        // the chain refused to escrow it (create_for): → failed (payment_not_confirmed)
	Deadline                      // its cutoff passed before completion: → expired
	Recover                       // the coordinator restarted while a miner held it: → queued
)

var kindNames = [...]string{"", "dispatch", "ack", "token", "requeue", "fail", "complete", "window",
	"chain_settled", "chain_expired", "chain_canceled", "unpaid", "deadline", "recover"}

// String names the kind for logs.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Event is something that happened to a job.
type Event struct {
	Kind Kind
	Now  time.Time

	// Miner is the miner a Dispatch places the job on, or the miner a
	// miner's message came from (Ack, Token, Requeue, Fail, Complete).
	Miner address.Address
	// Attempt is the attempt a miner's message concerns (0: the current).
	Attempt    int
	PricePer1k coin.Amount // Dispatch: the miner's registered price

	Why     string // Requeue, Fail, Unpaid: shown as the job's error
	Exclude bool   // Requeue: never send the job to Miner again
	Stop    bool   // Requeue: Miner may still be running the attempt (no ack in time)

	Result Result // Complete

	Until     time.Time // Window: output may be released before this
	Confirmed bool      // Window: the escrow is locked until the job's TTL
	OnChain   bool      // Window: the job exists on chain

	Settlement Settlement // ChainSettled
}

// Result is what a miner returned for a job.
type Result struct {
	Text         string
	TokensIn     int
	TokensOut    int
	FinishReason string
	Receipt      []byte
	// Attestation is the miner's commitments, whose hash the receipt
	// signs: kept for the verifier a spot check draws.
	Attestation []byte
}

// Settlement is where a settled job's escrow went.
type Settlement struct {
	Paid, Fee, Refund coin.Amount
}

// Limits are the coordinator's policy.
type Limits struct {
	MaxAttempts int           // dispatches before a job fails
	Margin      time.Duration // output stops this long before a payment window or the TTL ends
}

// Effects tell the caller what Step's transition needs done outside the job.
type Effects struct {
	Changed       bool            // the job changed: store it
	StatusChanged bool            // its status changed: tell its streams
	Queue         bool            // put it at the front of its model's queue
	Restart       bool            // the attempt's output is void: streams start over
	Release       bool            // output held so far may be shown now
	Discard       bool            // output held so far must never be shown
	FreeMiner     address.Address // this miner's slot is free again
	StopMiner     address.Address // this miner may still run the job and must stop
	Settle        bool            // send the settlement (once the result is stored)
	CancelOnChain bool            // it never reached a miner: the coordinator refunds its escrow now
	Final         bool            // the job ended
}

// Final reports whether status is a final status.
func Final(status string) bool {
	switch status {
	case store.StatusSettled, store.StatusFailed, store.StatusExpired:
		return true
	}
	return false
}

// inFlight reports whether a miner holds the job.
func inFlight(status string) bool {
	return status == store.StatusDispatched || status == store.StatusRunning
}

// Step applies e to j and returns the next job and what else must happen.
// j is not modified. An event that does not apply returns ErrFinal or
// ErrStale and no effects.
func Step(j store.Job, e Event, l Limits) (store.Job, Effects, error) {
	if Final(j.Status) {
		return j, Effects{}, ErrFinal
	}
	var fx Effects
	from := j.Status
	switch e.Kind {
	case Dispatch:
		if j.Status != store.StatusQueued || e.Miner.IsZero() || !e.Now.Before(Cutoff(j, l.Margin)) {
			return j, fx, ErrStale
		}
		j.Attempt++
		j.Status, j.Miner, j.PricePer1k, j.Error, j.ErrorCode = store.StatusDispatched, e.Miner, e.PricePer1k, "", ""
	case Ack, Token:
		if !fromMiner(j, e) {
			return j, fx, ErrStale
		}
		if j.Status == store.StatusDispatched {
			j.Status, j.Started = store.StatusRunning, e.Now.UTC()
		}
	case Requeue:
		if !fromMiner(j, e) {
			return j, fx, ErrStale
		}
		fx.FreeMiner, fx.Discard = j.Miner, true
		if e.Stop {
			fx.StopMiner = j.Miner
		}
		if e.Exclude {
			j.Excluded = append(append([]string(nil), j.Excluded...), j.Miner.String())
		}
		if j.Attempt >= l.MaxAttempts {
			j.Status, j.Error = store.StatusFailed, fmt.Sprintf("gave up after %d attempts; last: %s", j.Attempt, e.Why)
			fx.Final = true
			break
		}
		j.Status, j.Miner, j.Error = store.StatusQueued, address.Address{}, e.Why
		fx.Queue, fx.Restart = true, true
	case Fail:
		switch {
		case j.Status == store.StatusQueued && e.Miner.IsZero():
			// No miner can ever take it (all charge more than its price):
			// it never ran, so its escrow can go back at once.
			fx.CancelOnChain = j.Attempt == 0
		case fromMiner(j, e):
			fx.FreeMiner = j.Miner
		default:
			return j, fx, ErrStale
		}
		j.Status, j.Error = store.StatusFailed, e.Why
		fx.Discard, fx.Final = true, true
	case Complete:
		if !fromMiner(j, e) {
			return j, fx, ErrStale
		}
		r := e.Result
		j.Status, j.Result, j.TokensIn, j.TokensOut, j.FinishReason, j.Receipt = store.StatusCompleted, r.Text, r.TokensIn, r.TokensOut, r.FinishReason, r.Receipt
		j.Attestation = r.Attestation
		j.Completed, j.Error = e.Now.UTC(), ""
		fx.FreeMiner, fx.Settle = j.Miner, true
		fx.Release = Released(j, e.Now)
	case Window:
		until := e.Until
		if cut := Cutoff(j, l.Margin); e.Confirmed || until.After(cut) {
			until = cut
		}
		if until.After(j.PaidUntil) {
			j.PaidUntil = until
			fx.Changed = true
		}
		if e.Confirmed && !j.PaymentConfirmed {
			j.PaymentConfirmed, fx.Changed = true, true
		}
		if e.OnChain && !j.OnChain {
			j.OnChain, fx.Changed = true, true
		}
		fx.Release = Released(j, e.Now)
		if fx.Changed {
			j.Updated = e.Now.UTC()
		}
		return j, fx, nil
	case ChainSettled:
		s := e.Settlement
		j.Status, j.Paid, j.ProtocolFee, j.Refund, j.Error, j.ErrorCode = store.StatusSettled, s.Paid, s.Fee, s.Refund, "", ""
		fx.Release, fx.Final = true, true
		stopIfRunning(&j, &fx, from)
	case ChainExpired:
		j.Status, j.Error = store.StatusExpired, "the TTL passed before settlement; the escrow was refunded on chain"
		fx.Discard, fx.Final = true, true
		stopIfRunning(&j, &fx, from)
	case ChainCanceled:
		j.Status, j.ErrorCode = store.StatusFailed, CodePaymentNotConfirmed
		j.Error = "the job was canceled on chain before this coordinator's assignment landed; the escrow was refunded and its output discarded"
		fx.Discard, fx.Final = true, true
		stopIfRunning(&j, &fx, from)
	case Unpaid:
		if j.OnChain {
			return j, fx, ErrStale
		}
		j.Status, j.ErrorCode, j.Error = store.StatusFailed, CodePaymentNotConfirmed, "the chain did not escrow the job: "+e.Why
		fx.Discard, fx.Final = true, true
		stopIfRunning(&j, &fx, from)
	case Deadline:
		if j.Status == store.StatusCompleted || e.Now.Before(Cutoff(j, l.Margin)) {
			return j, fx, ErrStale // a completed job still settles; the chain says when it cannot
		}
		j.Status, j.Error = store.StatusExpired, "no miner completed the job before its TTL; the escrow is refunded on chain"
		fx.Discard, fx.Final = true, true
		stopIfRunning(&j, &fx, from)
	case Recover:
		if !inFlight(j.Status) {
			return j, fx, ErrStale
		}
		j.Status, j.Miner = store.StatusQueued, address.Address{}
		fx.Queue, fx.Restart = true, true
	default:
		return j, fx, fmt.Errorf("lifecycle: unknown event %v", e.Kind)
	}
	fx.StatusChanged = j.Status != from
	fx.Changed = fx.StatusChanged || fx.Changed
	if fx.Changed {
		j.Updated = e.Now.UTC()
	}
	if fx.Final && fx.Discard {
		// A job that ends unpaid keeps no output to show later: the
		// customer was refunded, the miner was not paid.
		j.Result, j.Receipt = "", nil
		j.Attestation = nil
	}
	return j, fx, nil
}

// fromMiner reports whether a miner's message concerns the job's current
// attempt on that miner.
func fromMiner(j store.Job, e Event) bool {
	return inFlight(j.Status) && j.Miner == e.Miner && (e.Attempt == 0 || e.Attempt == j.Attempt)
}

// stopIfRunning frees and stops the miner of a job that ends while a miner
// holds it.
func stopIfRunning(j *store.Job, fx *Effects, from string) {
	if inFlight(from) {
		fx.FreeMiner, fx.StopMiner = j.Miner, j.Miner
	}
}

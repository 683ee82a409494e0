package lifecycle

import (
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// The payment gate. A coordinator must not hand out work before the money
// for it is out of the customer's reach. The chain keeps money within a
// coordinator's reach for a while: a withdrawal from a deposit, or a
// customer's cancellation of an open job, takes effect only release_delay
// after the block that announced it. So a committed state read at block
// time T shows money that stays put until T + release_delay at least, and
// a job's output may be released until that moment, less a margin for the
// coordinator's own transaction to land. Once the chain shows the escrow
// locked for the job's whole TTL (created from the deposit, or assigned by
// this coordinator), the window runs to the TTL, less the margin.
//
// A window is a time before which output may be released; the zero time
// releases nothing.

// DepositWindow is the window of a deposit job before its create_for is
// seen committed: the deposit was read at committed blockTime, and no
// withdrawal announced after it can pay out before blockTime + delay. An
// unknown block time (zero) gives no window.
func DepositWindow(blockTime time.Time, delay, margin time.Duration) time.Time {
	if blockTime.IsZero() || delay <= margin {
		return time.Time{}
	}
	return blockTime.Add(delay - margin)
}

// WalletWindow is the window of a job the customer escrowed from its
// wallet, before this coordinator's assignment is seen committed: a
// cancellation already announced refunds at cancelAt; one announced later
// refunds no earlier than blockTime + delay.
func WalletWindow(cancelAt, blockTime time.Time, delay, margin time.Duration) time.Time {
	if !cancelAt.IsZero() {
		return cancelAt.Add(-margin)
	}
	return DepositWindow(blockTime, delay, margin)
}

// Cutoff is when a job stops: nothing is released after it and an
// unfinished job ends expired, so that its last transaction can still land
// before the chain refunds the escrow at Expires. The margin is at most a
// quarter of the job's TTL, so a short job still gets most of its time.
func Cutoff(j store.Job, margin time.Duration) time.Time {
	if ttl := j.Expires.Sub(j.Created); ttl > 0 && margin > ttl/4 {
		margin = ttl / 4
	}
	return j.Expires.Add(-margin)
}

// Start returns a newly accepted job: queued, with the payment window its
// admission read from the chain (capped at its cutoff).
func Start(j store.Job, window time.Time, l Limits) store.Job {
	j.Status = store.StatusQueued
	if cut := Cutoff(j, l.Margin); window.After(cut) {
		window = cut
	}
	j.PaidUntil = window
	return j
}

// Released reports whether j's output may be shown at now: while its
// payment window is open, or once the chain paid for it.
func Released(j store.Job, now time.Time) bool {
	return j.Status == store.StatusSettled || now.Before(j.PaidUntil)
}

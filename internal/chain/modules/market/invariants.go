package market

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "market/escrow", Check: k.checkEscrow},
		{Name: "market/agreements", Check: k.checkAgreements},
		{Name: "market/payouts", Check: k.checkPayouts},
		{Name: "market/listings", Check: k.checkListings},
	}
}

// each decodes every record under prefix into a fresh T and calls fn. It
// walks every record: invariants and queries run it, never a transaction.
func each[T any](v state.View, prefix []byte, fn func(x *T) error) error {
	var ferr error
	err := v.Iterate(prefix, false, func(key, b []byte) bool {
		x := new(T)
		if err := tx.Unmarshal(b, x); err != nil {
			ferr = fmt.Errorf("market: corrupt record %q: %w", key, err)
			return false
		}
		ferr = fn(x)
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

func broken(err error) module.Finding { return module.Finding{Broken: true, Detail: err.Error()} }

// checkEscrow: the escrow account holds the deposits of open bids, what
// agreements locked and have not yet drawn or refunded, and the payouts
// still held — and nothing else.
func (k *Keeper) checkEscrow(q module.Query) module.Finding {
	var sum coin.Amount
	var bids, agrs, pays int
	add := func(a coin.Amount) (err error) { sum, err = sum.Add(a); return err }
	err := each(q.State, BidPrefix, func(b *Bid) error {
		if b.Status != BidOpen {
			return nil
		}
		bids++
		return add(b.Deposit)
	})
	if err == nil {
		err = each(q.State, AgreementPrefix, func(a *Agreement) error {
			if a.Drawn+a.Refunded > a.Locked {
				return fmt.Errorf("agreement %s drew %s and refunded %s of %s", a.ID, a.Drawn, a.Refunded, a.Locked)
			}
			if a.Remaining() > 0 {
				agrs++
			}
			return add(a.Remaining())
		})
	}
	if err == nil {
		err = each(q.State, PayoutPrefix, func(p *Payout) error {
			if !p.Pending() {
				return nil
			}
			pays++
			return add(p.Amount)
		})
	}
	if err != nil {
		return broken(err)
	}
	bal, err := k.bank.Balance(q.State, k.escrow)
	if err != nil {
		return broken(err)
	}
	return module.Compare(k.escrow, bal, sum, fmt.Sprintf("the deposits of %d open bids, the locks of %d agreements and %d held payouts", bids, agrs, pays))
}

// checkAgreements: every agreement's payouts add up to what it drew, and
// an agreement that ended holds nothing.
func (k *Keeper) checkAgreements(q module.Query) module.Finding {
	drawn := map[string]coin.Amount{}
	err := each(q.State, PayoutPrefix, func(p *Payout) error {
		drawn[p.Agreement] += p.Amount
		return nil
	})
	n, bad := 0, 0
	first := ""
	if err == nil {
		err = each(q.State, AgreementPrefix, func(a *Agreement) error {
			n++
			if drawn[a.ID] != a.Drawn || !a.Live() && a.Remaining() != 0 {
				bad++
				if first == "" {
					first = fmt.Sprintf("; first: %s (%s) locked %s, drawn %s, payouts %s, refunded %s", a.ID, AgreementStatusName(a.Status), a.Locked, a.Drawn, drawn[a.ID], a.Refunded)
				}
			}
			return nil
		})
	}
	if err != nil {
		return broken(err)
	}
	return module.Finding{Broken: bad > 0, Detail: fmt.Sprintf("%d agreements, %d whose payouts differ from what they drew or that ended holding money%s", n, bad, first),
		Figures: map[string]string{"agreements": fmt.Sprint(n), "mismatched": fmt.Sprint(bad)}}
}

// checkPayouts: a released payout's share and fee (sent to the fee
// collector) are exactly its amount; a refunded one returned all of it; a
// held one moved nothing yet.
func (k *Keeper) checkPayouts(q module.Query) module.Finding {
	n, bad := 0, 0
	first := ""
	err := each(q.State, PayoutPrefix, func(p *Payout) error {
		n++
		var ok bool
		switch p.Status {
		case PayoutReleased:
			ok = p.Paid+p.Fee == p.Amount && p.Refund == 0
		case PayoutRefunded:
			ok = p.Refund == p.Amount && p.Paid == 0 && p.Fee == 0
		default:
			ok = p.Paid == 0 && p.Fee == 0 && p.Refund == 0
		}
		if !ok {
			bad++
			if first == "" {
				first = fmt.Sprintf("; first: %s (%s) amount %s, paid %s + fee %s + refund %s", p.ID, PayoutStatusName(p.Status), p.Amount, p.Paid, p.Fee, p.Refund)
			}
		}
		return nil
	})
	if err != nil {
		return broken(err)
	}
	return module.Finding{Broken: bad > 0, Detail: fmt.Sprintf("%d payouts, %d paid out other than their amount%s", n, bad, first),
		Figures: map[string]string{"payouts": fmt.Sprint(n), "mismatched": fmt.Sprint(bad)}}
}

// checkListings: each listing counts exactly its live agreements, within
// its capacity.
func (k *Keeper) checkListings(q module.Query) module.Finding {
	live := map[string]uint32{}
	err := each(q.State, AgreementPrefix, func(a *Agreement) error {
		if a.Live() {
			live[a.Service]++
		}
		return nil
	})
	n, bad := 0, 0
	first := ""
	if err == nil {
		err = each(q.State, ListingPrefix, func(l *Listing) error {
			n++
			if l.Live != live[l.ID] || l.Capacity > 0 && l.Live > l.Capacity {
				bad++
				if first == "" {
					first = fmt.Sprintf("; first: %s counts %d live agreements, has %d, capacity %d", l.ID, l.Live, live[l.ID], l.Capacity)
				}
			}
			return nil
		})
	}
	if err != nil {
		return broken(err)
	}
	return module.Finding{Broken: bad > 0, Detail: fmt.Sprintf("%d listings, %d miscounting their live agreements%s", n, bad, first),
		Figures: map[string]string{"listings": fmt.Sprint(n), "mismatched": fmt.Sprint(bad)}}
}

package market

import (
	"bytes"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// send moves amount (if any) between accounts.
func (k *Keeper) send(ctx *module.Context, from, to address.Address, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	return k.bank.Send(ctx.KV, from, to, amount)
}

// open turns bid b on listing l into an agreement, moving fromCustomer of
// its total from the customer's balance into escrow (the rest is its
// deposit, already there).
func (k *Keeper) open(ctx *module.Context, p Params, l *Listing, b *Bid, fromCustomer coin.Amount) error {
	sum, err := total(b.Price, b.Units)
	if err != nil {
		return err
	}
	cust := b.CustomerAddr()
	if err := k.send(ctx, cust, k.escrow, fromCustomer); err != nil {
		return err
	}
	a := &Agreement{
		ID: b.ID, Service: l.ID, Customer: b.Customer, Provider: l.Provider, Unit: l.Unit, Price: b.Price, Units: b.Units,
		Locked: sum, Start: ctx.Time.Unix(), Accepted: ctx.Height, Status: AgreementActive,
	}
	nl := *l
	nl.Live++
	if err := putListing(ctx.KV, l, &nl); err != nil {
		return err
	}
	if err := put(ctx.KV, keyAgreement(a.ID), a); err != nil {
		return err
	}
	ctx.KV.Set(keyCustAgr(a.Customer, a.Service, a.ID), []byte{1})
	ctx.Touch(cust)
	ctx.Touch(l.ProviderAddr())
	if err := k.updateFacts(ctx.KV, l.ProviderAddr(), func(f *Facts) { f.Agreements++ }); err != nil {
		return err
	}
	if a.Unit == UnitHour {
		// A lease pays for itself as time passes; at its end the chain
		// pays the provider what is left and frees the capacity.
		return schedule(ctx.KV, a.Start+int64(a.Units)*secondsInHour, due{Kind: dueLeaseEnd, Key: []byte(a.ID)})
	}
	return nil
}

func (k *Keeper) getAgreement(ctx *module.Context, id string) (*Agreement, error) {
	a, err := k.Agreement(ctx.KV, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrAgreementNotFound, id)
	}
	return a, nil
}

// finish ends a live agreement and frees its place on the listing.
func (k *Keeper) finish(ctx *module.Context, a *Agreement, status uint8) error {
	a.Status, a.Ended, a.CloseAt = status, ctx.Height, 0
	old, err := k.listing(ctx.KV, a.Service)
	if err != nil {
		return err
	}
	l := *old
	if l.Live > 0 {
		l.Live--
	}
	if err := putListing(ctx.KV, old, &l); err != nil {
		return err
	}
	return put(ctx.KV, keyAgreement(a.ID), a)
}

// store writes a, finishing it as completed when it has nothing left.
func (k *Keeper) store(ctx *module.Context, a *Agreement) error {
	if a.Live() && a.Remaining() == 0 {
		return k.finish(ctx, a, AgreementCompleted)
	}
	return put(ctx.KV, keyAgreement(a.ID), a)
}

// draw moves amount of a's lock into a new payout for its provider, held
// for the dispute window (released at once when the window is zero). The
// caller stores a.
func (k *Keeper) draw(ctx *module.Context, p Params, a *Agreement, kind string, ref []byte, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	if amount > a.Remaining() {
		return fmt.Errorf("%w: %s AITBC, agreement %s holds %s", ErrSettleExceeds, amount, a.ID, a.Remaining())
	}
	seq, err := nextSeq(ctx.KV)
	if err != nil {
		return err
	}
	a.Drawn += amount
	a.Payouts++
	po := &Payout{
		ID: seqID("po-", seq), Agreement: a.ID, Service: a.Service, Customer: a.Customer, Provider: a.Provider, Kind: kind,
		Ref: ref, Amount: amount, Created: ctx.Height, At: ctx.Time.Unix(), ReleaseAt: ctx.Time.Unix() + p.DisputeWindow, Status: PayoutHeld,
	}
	ctx.Touch(a.ProviderAddr())
	if p.DisputeWindow == 0 {
		return k.release(ctx, p, po, "")
	}
	if err := put(ctx.KV, keyPayout(po.ID), po); err != nil {
		return err
	}
	return schedule(ctx.KV, po.ReleaseAt, due{Kind: duePayout, Key: []byte(po.ID)})
}

// release pays a held or disputed payout to its provider and sends the
// protocol fee to the fee collector, split at the block's end like every
// fee (burn, treasury, proposer: docs/ECONOMICS.md).
func (k *Keeper) release(ctx *module.Context, p Params, po *Payout, ruling string) error {
	share, fee := p.Split(po.Amount)
	prov, _ := address.FromBytes(po.Provider)
	if po.Status == PayoutDisputed {
		if _, err := k.endDispute(ctx, p, prov, false); err != nil {
			return err
		}
	}
	if err := k.send(ctx, k.escrow, prov, share); err != nil {
		return err
	}
	if err := k.bank.CollectFee(ctx.KV, k.escrow, fee); err != nil {
		return err
	}
	po.Status, po.Paid, po.Fee, po.Ruling, po.Ended = PayoutReleased, share, fee, ruling, ctx.Height
	if err := put(ctx.KV, keyPayout(po.ID), po); err != nil {
		return err
	}
	return k.updateFacts(ctx.KV, prov, func(f *Facts) {
		f.Released++
		f.Revenue += share
	})
}

// refundPayout returns a disputed payout to its customer: the provider
// lost the dispute, and its stake is slashed.
func (k *Keeper) refundPayout(ctx *module.Context, p Params, po *Payout, ruling string) error {
	cust, _ := address.FromBytes(po.Customer)
	if err := k.send(ctx, k.escrow, cust, po.Amount); err != nil {
		return err
	}
	prov, _ := address.FromBytes(po.Provider)
	slashed, err := k.endDispute(ctx, p, prov, true)
	if err != nil {
		return err
	}
	if slashed > 0 {
		ruling += fmt.Sprintf("; %s AITBC of the provider's stake slashed (burned)", slashed)
	}
	po.Status, po.Refund, po.Ruling, po.Ended = PayoutRefunded, po.Amount, ruling, ctx.Height
	if err := put(ctx.KV, keyPayout(po.ID), po); err != nil {
		return err
	}
	return k.updateFacts(ctx.KV, prov, func(f *Facts) { f.DisputesLost++ })
}

func (k *Keeper) settle(ctx *module.Context, p Params, m MsgSettle) error {
	a, err := k.getAgreement(ctx, m.ID)
	if err != nil {
		return err
	}
	switch {
	case string(a.Customer) != string(ctx.Signer[:]):
		return fmt.Errorf("%w: agreement %s", ErrNotCustomer, a.ID)
	case !a.Live():
		return fmt.Errorf("%w: agreement %s is %s", ErrAgreementNotActive, a.ID, AgreementStatusName(a.Status))
	case m.Amount == 0:
		return fmt.Errorf("%w: amount must be positive", ErrInvalidPrice)
	case m.Amount > a.Remaining():
		return fmt.Errorf("%w: %s AITBC, agreement %s holds %s (locked %s, paid out %s, refunded %s)",
			ErrSettleExceeds, m.Amount, a.ID, a.Remaining(), a.Locked, a.Drawn, a.Refunded)
	}
	if err := k.draw(ctx, p, a, KindSettle, nil, m.Amount); err != nil {
		return err
	}
	return k.store(ctx, a)
}

// claimable is what a lease has earned and not yet drawn.
func claimable(a *Agreement, now int64) coin.Amount {
	acc := a.Accrued(now)
	if acc <= a.Drawn {
		return 0
	}
	return min(acc-a.Drawn, a.Remaining())
}

func (k *Keeper) claim(ctx *module.Context, p Params, id string) error {
	a, err := k.getAgreement(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case string(a.Provider) != string(ctx.Signer[:]):
		return fmt.Errorf("%w: agreement %s", ErrNotProvider, a.ID)
	case !a.Live():
		return fmt.Errorf("%w: agreement %s is %s", ErrAgreementNotActive, a.ID, AgreementStatusName(a.Status))
	case a.Unit != UnitHour:
		return fmt.Errorf("%w: agreement %s is paid per %s, not by the hour", ErrNothingToClaim, a.ID, a.Unit)
	}
	amt := claimable(a, ctx.Time.Unix())
	if amt == 0 {
		return fmt.Errorf("%w: agreement %s", ErrNothingToClaim, a.ID)
	}
	if err := k.draw(ctx, p, a, KindLease, nil, amt); err != nil {
		return err
	}
	return k.store(ctx, a)
}

// close ends an agreement. The provider's close, and any close of a
// per-hour lease, takes effect at once: a lease pays for the time used and
// refunds the rest, so its capacity frees the moment it closes. A
// customer's close of a per-job or per-1k-tokens agreement waits the
// close delay, so that the jobs it started are still paid for when they
// settle.
func (k *Keeper) close(ctx *module.Context, p Params, id string) error {
	a, err := k.getAgreement(ctx, id)
	if err != nil {
		return err
	}
	byProvider := string(a.Provider) == string(ctx.Signer[:])
	switch {
	case !byProvider && string(a.Customer) != string(ctx.Signer[:]):
		return fmt.Errorf("%w: agreement %s", ErrNotCustomer, a.ID)
	case !a.Live():
		return fmt.Errorf("%w: agreement %s is %s", ErrAgreementNotActive, a.ID, AgreementStatusName(a.Status))
	case !byProvider && a.Status == AgreementClosing:
		return fmt.Errorf("%w: agreement %s is closing already, at %d (unix s)", ErrAgreementNotActive, a.ID, a.CloseAt)
	}
	ctx.Touch(a.CustomerAddr())
	ctx.Touch(a.ProviderAddr())
	if byProvider || a.Unit == UnitHour || p.CloseDelay == 0 {
		return k.closeNow(ctx, p, a)
	}
	a.Status, a.CloseAt = AgreementClosing, ctx.Time.Unix()+p.CloseDelay
	if err := put(ctx.KV, keyAgreement(a.ID), a); err != nil {
		return err
	}
	return schedule(ctx.KV, a.CloseAt, due{Kind: dueClose, Key: []byte(a.ID)})
}

// closeNow pays a lease for its time so far and refunds the rest.
func (k *Keeper) closeNow(ctx *module.Context, p Params, a *Agreement) error {
	if a.Unit == UnitHour {
		if err := k.draw(ctx, p, a, KindLease, nil, claimable(a, ctx.Time.Unix())); err != nil {
			return err
		}
	}
	rest := a.Remaining()
	if err := k.send(ctx, k.escrow, a.CustomerAddr(), rest); err != nil {
		return err
	}
	a.Refunded += rest
	status := AgreementClosed
	if rest == 0 {
		status = AgreementCompleted
	}
	return k.finish(ctx, a, status)
}

func (k *Keeper) bind(ctx *module.Context, m MsgBind) error {
	a, err := k.getAgreement(ctx, m.ID)
	if err != nil {
		return err
	}
	if len(m.Job) != jobs.IDLen {
		return fmt.Errorf("%w: job id must be %d bytes", ErrNotBindable, jobs.IDLen)
	}
	l, err := k.listing(ctx.KV, a.Service)
	if err != nil {
		return err
	}
	if !l.Available(ctx.Time.Unix()) {
		return fmt.Errorf("%w: %s is available %s; no job runs under it outside that window", ErrUnavailable, l.ID, window(l.From, l.Until))
	}
	j, err := k.jobs.Get(ctx.KV, m.Job)
	if err != nil {
		return err
	}
	bound, err := ctx.KV.Get(keyBound(m.Job))
	if err != nil {
		return err
	}
	switch {
	case j == nil:
		return fmt.Errorf("%w: job %x is not on chain", ErrNotBindable, m.Job)
	case string(ctx.Signer[:]) != string(j.Customer) && string(ctx.Signer[:]) != string(j.Coordinator):
		return fmt.Errorf("%w: only job %x's customer or coordinator may bind it", ErrNotBindable, m.Job)
	case string(j.Customer) != string(a.Customer):
		return fmt.Errorf("%w: job %x is not the agreement customer's", ErrNotBindable, m.Job)
	case a.Status != AgreementActive:
		return fmt.Errorf("%w: agreement %s is %s", ErrAgreementNotActive, a.ID, AgreementStatusName(a.Status))
	case !j.Active():
		return fmt.Errorf("%w: job %x is %s", ErrNotBindable, m.Job, jobs.StatusName(j.Status))
	case bound != nil:
		return fmt.Errorf("%w: job %x already runs under agreement %s", ErrNotBindable, m.Job, bound)
	case a.Unit == UnitJob && uint64(a.Jobs-a.Failed) >= a.Units:
		return fmt.Errorf("%w: agreement %s covers %d jobs, all taken", ErrNotBindable, a.ID, a.Units)
	}
	if j.Status == jobs.StatusAssigned {
		// Already running: only on a miner of the provider, which the
		// agreement then pays (the job's escrow pays no miner).
		ok, err := k.Serves(ctx.KV, a.ProviderAddr(), j.MinerAddr())
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: job %x runs on miner %s, which does not work for provider %s", ErrNotBindable, m.Job, j.MinerAddr(), a.ProviderAddr())
		}
	}
	a.Jobs++
	ctx.KV.Set(keyBound(m.Job), []byte(a.ID))
	ctx.KV.Set(keyPending(m.Job), []byte(a.ID))
	ctx.Touch(a.ProviderAddr())
	return put(ctx.KV, keyAgreement(a.ID), a)
}

// maxDeliveries bounds the bound jobs one block looks at, so that a block
// stays cheap however many wait; the rest are seen in the next blocks.
const maxDeliveries = 1000

// keyDeliveryCursor holds the id of the last bound job the deliveries
// pass examined: the next block resumes after it, so that every pending
// job is looked at within ceil(pending/maxDeliveries) blocks, however many
// lower ids stay running (a pass from the start of the index each block
// would look at the same 1,000 running jobs while later ones starved).
var keyDeliveryCursor = []byte("market/e/pj")

// deliveries pays providers for bound jobs that settled, and counts those
// that expired or were canceled (EndBlock, after the jobs module's). It
// examines at most maxDeliveries pending jobs, from just after the cursor
// round to where it began.
func (k *Keeper) deliveries(ctx *module.Context, p Params) error {
	type pair struct{ job, agr []byte }
	var pending []pair
	collect := func(key, v []byte) bool {
		pending = append(pending, pair{append([]byte(nil), key[len(pendingPrefix):]...), append([]byte(nil), v...)})
		return len(pending) < maxDeliveries
	}
	cursor, err := ctx.KV.Get(keyDeliveryCursor)
	if err != nil {
		return err
	}
	start := pendingPrefix
	if len(cursor) > 0 {
		start = cat(pendingPrefix, cursor, []byte{0}) // the first key after the cursor's
	}
	if err := state.IterateFrom(ctx.KV, pendingPrefix, start, collect); err != nil {
		return err
	}
	if len(pending) < maxDeliveries && len(cursor) > 0 {
		// The end of the index: go on from its start up to where this
		// pass began.
		err := ctx.KV.Iterate(pendingPrefix, false, func(key, v []byte) bool {
			return bytes.Compare(key, start) < 0 && collect(key, v)
		})
		if err != nil {
			return err
		}
	}
	if len(pending) < maxDeliveries {
		ctx.KV.Delete(keyDeliveryCursor) // the whole index was examined
	} else {
		ctx.KV.Set(keyDeliveryCursor, pending[len(pending)-1].job)
	}
	for _, x := range pending {
		if err := k.deliver(ctx, p, x.job, string(x.agr)); err != nil {
			return err
		}
	}
	return nil
}

// endDispute closes a dispute against prov in the staking module: its
// stake is no longer frozen by it and, when it lost, dispute_slash_bps of
// the stake delegated to it is slashed. Slashed stake is burned, as for a
// double signature (docs/ECONOMICS.md): paying it to the customer would
// reward disputes, and the customer already has its payout back.
func (k *Keeper) endDispute(ctx *module.Context, p Params, prov address.Address, lost bool) (coin.Amount, error) {
	if k.stake == nil {
		return 0, nil
	}
	if err := k.stake.Unfreeze(ctx.KV, prov); err != nil {
		return 0, err
	}
	if !lost {
		return 0, nil
	}
	return k.stake.Slash(ctx, prov, p.DisputeSlashBps)
}

// Owed is what a settled job earns its provider under agreement a: the
// price of one job, or the price per 1,000 tokens for the tokens it
// produced (recorded at its settlement, Settling), never more than the
// agreement still holds. A lease's jobs earn nothing: the lease is paid
// by the hour.
func Owed(a *Agreement, tokens uint64) coin.Amount {
	var amt coin.Amount
	switch a.Unit {
	case UnitJob:
		amt = a.Price
	case UnitKTokens:
		amt = a.Price.MulDiv(tokens, 1000)
	}
	return min(amt, a.Remaining())
}

func (k *Keeper) deliver(ctx *module.Context, p Params, jobID []byte, agrID string) error {
	j, err := k.jobs.Get(ctx.KV, jobID)
	if err != nil {
		return err
	}
	if j != nil && j.Active() {
		return nil // still running
	}
	ctx.KV.Delete(keyPending(jobID))
	tokens, err := getUint(ctx.KV, keyJobTokens(jobID))
	if err != nil {
		return err
	}
	ctx.KV.Delete(keyJobTokens(jobID))
	a, err := k.Agreement(ctx.KV, agrID)
	if err != nil || a == nil || j == nil {
		return err
	}
	prov := a.ProviderAddr()
	if j.Status != jobs.StatusSettled {
		a.Failed++
		if err := k.updateFacts(ctx.KV, prov, func(f *Facts) { f.Failed++ }); err != nil {
			return err
		}
		return put(ctx.KV, keyAgreement(a.ID), a)
	}
	a.Delivered++
	if err := k.updateFacts(ctx.KV, prov, func(f *Facts) { f.Delivered++ }); err != nil {
		return err
	}
	if a.Live() {
		if err := k.draw(ctx, p, a, KindDelivery, jobID, Owed(a, tokens)); err != nil {
			return err
		}
	}
	return k.store(ctx, a)
}

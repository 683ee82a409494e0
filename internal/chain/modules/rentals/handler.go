package rentals

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler. Guard clauses first, then the writes: a
// refused message changes nothing.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeOpen:
		var m MsgOpen
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.open(ctx, m)
	case TypeExtend:
		var m MsgExtend
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.extend(ctx, m)
	case TypeEnd:
		var m MsgEnd
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.end(ctx, m)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

// Rentable reports why listing l cannot be leased at all (nil when it
// can): its type, unit and status.
func Rentable(l *market.Listing) error {
	switch {
	case l.Type != market.TypeGPURental && l.Type != market.TypeGPUCompute:
		return fmt.Errorf("%w: %s is a %s listing", ErrNotRentable, l.ID, l.Type)
	case l.Unit != market.UnitHour:
		return fmt.Errorf("%w: %s is priced per %s", ErrNotRentable, l.ID, l.Unit)
	case l.Status != market.ListingActive:
		return fmt.Errorf("%w: %s is not active", ErrNotRentable, l.ID)
	}
	return nil
}

func (k *Keeper) checkDuration(p Params, d uint64) error {
	if d < p.MinDurationS || d > p.MaxDurationS {
		return fmt.Errorf("%w: %d s (%d to %d)", ErrDuration, d, p.MinDurationS, p.MaxDurationS)
	}
	return nil
}

func (k *Keeper) open(ctx *module.Context, m MsgOpen) error {
	if err := checkID("service id", m.Service); err != nil {
		return err
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if err := k.checkDuration(p, m.DurationS); err != nil {
		return err
	}
	l, err := k.listings.Listing(ctx.KV, m.Service)
	if err != nil {
		return err
	}
	if l == nil {
		return fmt.Errorf("%w: %q", ErrServiceNotFound, m.Service)
	}
	if err := Rentable(l); err != nil {
		return err
	}
	prov := l.ProviderAddr()
	if prov == ctx.Signer {
		return fmt.Errorf("%w: %s", ErrOwnService, m.Service)
	}
	mi, err := k.miners.Get(ctx.KV, prov)
	if err != nil {
		return err
	}
	if mi == nil || mi.Status != miners.StatusActive {
		return fmt.Errorf("%w: %s (listing %s)", ErrNoMiner, prov, m.Service)
	}
	startMs := ctx.Time.UnixMilli()
	endMs := startMs + int64(m.DurationS)*1000
	now := ctx.Time.Unix()
	if !l.Available(now) || (l.Until != 0 && endMs/1000 > l.Until) {
		return fmt.Errorf("%w: listing %s is available from %d to %d (unix s), the lease would run %d to %d", ErrUnavailable, l.ID, l.From, l.Until, now, endMs/1000)
	}
	live, err := k.Live(ctx.KV, l.ID)
	if err != nil {
		return err
	}
	// The listing's capacity is shared with the market's own agreements on
	// it (its Live count): a lease takes a place only when one is free.
	if l.Capacity > 0 && live+uint64(l.Live) >= uint64(l.Capacity) {
		return fmt.Errorf("%w: %s has capacity %d, %d leases and %d agreements hold it", ErrNoCapacity, l.ID, l.Capacity, live, l.Live)
	}
	active, err := getUint(ctx.KV, keyCount)
	if err != nil {
		return err
	}
	if active >= p.MaxActive {
		return fmt.Errorf("%w: %d", ErrTooMany, p.MaxActive)
	}
	cost, ok := Cost(l.Price, endMs-startMs)
	if !ok {
		return fmt.Errorf("%w: %d s at %s AITBC/hour does not fit an amount", ErrDuration, m.DurationS, l.Price)
	}
	if cost == 0 {
		return fmt.Errorf("%w: %d s at %s AITBC/hour costs nothing", ErrDuration, m.DurationS, l.Price)
	}
	if m.MaxAmount != 0 && cost > m.MaxAmount {
		return fmt.Errorf("%w: %d s at %s AITBC/hour cost %s AITBC, the escrow offered is %s AITBC", ErrEscrowShort, m.DurationS, l.Price, cost, m.MaxAmount)
	}
	// The only write that can fail (on the customer's funds) comes first.
	if err := k.bank.Send(ctx.KV, ctx.Signer, k.escrow, cost); err != nil {
		return fmt.Errorf("rentals: lock %s AITBC: %w", cost, err)
	}
	id, err := nextID(ctx.KV)
	if err != nil {
		return err
	}
	gpu := mi.Caps.GPU
	if gpu == "" {
		gpu = "cpu"
	}
	lease := &Lease{
		ID: id, Service: l.ID, Customer: ctx.Signer[:], Provider: prov[:], Price: l.Price,
		GPU: gpu, GPUMemoryMB: mi.Caps.GPUMemoryMB, StartMs: startMs, EndMs: endMs,
		Locked: cost, Status: StatusActive, Opened: ctx.Height,
	}
	if err := put(ctx.KV, lease); err != nil {
		return err
	}
	ctx.KV.Set(keyActive(id), []byte{1})
	ctx.KV.Set(keyCust(ctx.Signer, id), []byte{1})
	ctx.KV.Set(keyProv(prov, id), []byte{1})
	ctx.KV.Set(cat(serviceOf(l.ID), []byte(id)), []byte{1})
	putUint(ctx.KV, keyLive(l.ID), live+1)
	putUint(ctx.KV, keyCount, active+1)
	ctx.Touch(prov)
	ctx.Note("lease " + id)
	return nil
}

// active returns lease id, refusing one that is missing or closed.
func (k *Keeper) active(ctx *module.Context, id string) (*Lease, error) {
	if err := checkID("lease id", id); err != nil {
		return nil, err
	}
	l, err := k.Get(ctx.KV, id)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if l.Status != StatusActive {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotActive, id, StatusName(l.Status))
	}
	return l, nil
}

func (k *Keeper) extend(ctx *module.Context, m MsgExtend) error {
	l, err := k.active(ctx, m.ID)
	if err != nil {
		return err
	}
	if l.CustomerAddr() != ctx.Signer {
		return fmt.Errorf("%w: %s is %s's lease", ErrNotParty, l.ID, l.CustomerAddr())
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if m.DurationS < p.MinDurationS {
		return fmt.Errorf("%w: an extension of %d s (at least %d)", ErrDuration, m.DurationS, p.MinDurationS)
	}
	nowMs := ctx.Time.UnixMilli()
	// A lease whose paid-up time has passed is closed at this block's end:
	// extending it now would pay for a gap it was not running in.
	if nowMs >= l.EndMs {
		return fmt.Errorf("%w: %s ran out at %d ms", ErrNotActive, l.ID, l.EndMs)
	}
	if m.DurationS > p.MaxDurationS || uint64(l.EndMs-nowMs)/1000+m.DurationS > p.MaxDurationS {
		return fmt.Errorf("%w: the lease would be paid up %d s ahead (at most %d)", ErrDuration, uint64(l.EndMs-nowMs)/1000+m.DurationS, p.MaxDurationS)
	}
	newEnd := l.EndMs + int64(m.DurationS)*1000
	if li, err := k.listings.Listing(ctx.KV, l.Service); err != nil {
		return err
	} else if li != nil && li.Until != 0 && newEnd/1000 > li.Until {
		return fmt.Errorf("%w: listing %s is available until %d (unix s)", ErrUnavailable, l.Service, li.Until)
	}
	total, ok := Cost(l.Price, newEnd-l.StartMs)
	if !ok {
		return fmt.Errorf("%w: does not fit an amount", ErrDuration)
	}
	add := total - l.Locked
	if m.MaxAmount != 0 && add > m.MaxAmount {
		return fmt.Errorf("%w: %d s more cost %s AITBC, the escrow offered is %s AITBC", ErrEscrowShort, m.DurationS, add, m.MaxAmount)
	}
	if err := k.bank.Send(ctx.KV, ctx.Signer, k.escrow, add); err != nil {
		return fmt.Errorf("rentals: lock %s AITBC: %w", add, err)
	}
	l.EndMs, l.Locked = newEnd, total
	ctx.Touch(l.ProviderAddr())
	return put(ctx.KV, l)
}

func (k *Keeper) end(ctx *module.Context, m MsgEnd) error {
	l, err := k.active(ctx, m.ID)
	if err != nil {
		return err
	}
	who := "customer"
	switch ctx.Signer {
	case l.CustomerAddr():
	case l.ProviderAddr():
		who = "provider"
	default:
		return fmt.Errorf("%w: %s", ErrNotParty, l.ID)
	}
	ctx.Touch(l.CustomerAddr())
	ctx.Touch(l.ProviderAddr())
	return k.close(ctx, l, ctx.Time.UnixMilli(), StatusEnded, "ended by the "+who)
}

// charge pays the provider what the lease owes up to nowMs.
func (k *Keeper) charge(ctx *module.Context, l *Lease, nowMs int64) error {
	due := l.Due(nowMs)
	if due <= l.Drawn {
		return nil
	}
	pay := due - l.Drawn
	if err := k.bank.Send(ctx.KV, k.escrow, l.ProviderAddr(), pay); err != nil {
		return fmt.Errorf("rentals: pay %s for %s: %w", l.ProviderAddr(), l.ID, err)
	}
	l.Drawn = due
	return nil
}

// close charges the lease up to nowMs, refunds the rest to its customer
// and frees its place on the listing.
func (k *Keeper) close(ctx *module.Context, l *Lease, nowMs int64, status uint8, reason string) error {
	if err := k.charge(ctx, l, nowMs); err != nil {
		return err
	}
	if rest := l.Remaining(); rest > 0 {
		if err := k.bank.Send(ctx.KV, k.escrow, l.CustomerAddr(), rest); err != nil {
			return fmt.Errorf("rentals: refund %s: %w", l.ID, err)
		}
		l.Refunded += rest
	}
	l.Status, l.Closed, l.Reason = status, ctx.Height, reason
	live, err := k.Live(ctx.KV, l.Service)
	if err != nil {
		return err
	}
	active, err := getUint(ctx.KV, keyCount)
	if err != nil {
		return err
	}
	if live == 0 || active == 0 {
		return fmt.Errorf("rentals: counts of live leases out of step closing %s", l.ID)
	}
	putUint(ctx.KV, keyLive(l.Service), live-1)
	putUint(ctx.KV, keyCount, active-1)
	ctx.KV.Delete(keyActive(l.ID))
	return put(ctx.KV, l)
}

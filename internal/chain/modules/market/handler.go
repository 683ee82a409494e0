package market

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler. Every handler checks everything first
// and writes after, so a refused message changes nothing (the app also
// discards a failed message's writes).
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	switch msg.Type {
	case TypeCreate:
		var m MsgCreate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.create(ctx, p, m.Spec, ctx.Signer)
	case TypeCreateFor:
		var m MsgCreateFor
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		prov, err := address.FromBytes(m.Provider)
		if err != nil {
			return fmt.Errorf("%w: provider: %v", ErrInvalidListing, err)
		}
		if err := k.create(ctx, p, m.Spec, prov); err != nil {
			return err
		}
		// The provider pays the listing's fee, as through the CLI: from
		// its deposit with the coordinator, which paid the transaction's.
		return k.jobs.ChargeDeposit(ctx.KV, prov, ctx.Signer, ListingFee)
	case TypeUpdate:
		var m MsgUpdate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.update(ctx, p, m)
	case TypeBid:
		var m MsgBid
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.bid(ctx, p, m)
	case TypeOrder:
		var m MsgOrder
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.order(ctx, p, m)
	case TypeWithdraw, TypeReject, TypeAccept, TypeClaim, TypeClose:
		var m MsgRef
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		switch msg.Type {
		case TypeWithdraw:
			return k.endBid(ctx, m.ID, BidWithdrawn)
		case TypeReject:
			return k.endBid(ctx, m.ID, BidRejected)
		case TypeAccept:
			return k.accept(ctx, p, m.ID)
		case TypeClaim:
			return k.claim(ctx, p, m.ID)
		default:
			return k.close(ctx, p, m.ID)
		}
	case TypeSettle:
		var m MsgSettle
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.settle(ctx, p, m)
	case TypeBind:
		var m MsgBind
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.bind(ctx, m)
	case TypeRate:
		var m MsgRate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.rate(ctx, m)
	case TypeDispute:
		var m MsgDispute
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.dispute(ctx, p, m)
	case TypeResolve:
		var m MsgResolve
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.resolve(ctx, p, m)
	case TypeAddMiner, TypeRemoveMiner:
		var m MsgMiner
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.linkMiner(ctx, m, msg.Type == TypeAddMiner)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' || r == 0x7f {
			return false
		}
	}
	return true
}

func text(s string, lo, hi int) bool { return len(s) >= lo && len(s) <= hi && printable(s) }

func (p Params) checkPrice(price coin.Amount) error {
	if price == 0 || price > p.MaxPrice {
		return fmt.Errorf("%w: %s AITBC, allowed 0.000001-%s", ErrInvalidPrice, price, p.MaxPrice)
	}
	return nil
}

// checkSpec validates a listing and fills its defaults.
func (k *Keeper) checkSpec(ctx *module.Context, p Params, s *ListingSpec, provider address.Address) error {
	if s.Unit == "" {
		s.Unit = DefaultUnit(s.Type)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidListing}, a...)...)
	}
	switch {
	case s.ID != "" && !ValidID(s.ID):
		return bad("service id %q: 1-64 of a-z 0-9 . _ - starting with a letter or digit", s.ID)
	case !text(s.Name, 1, 80):
		return bad("name must be 1-80 printable characters")
	case !slices.Contains(Types, s.Type):
		return bad("type %q: one of %v", s.Type, Types)
	case !slices.Contains(Units, s.Unit):
		return bad("unit %q: one of %v", s.Unit, Units)
	case !text(s.Description, 0, 512):
		return bad("description must be at most 512 printable characters")
	case len(s.Params) > 16:
		return bad("at most 16 parameters")
	case !text(s.Model, 0, 128) || !text(s.GPU, 0, 128):
		return bad("model and GPU must be at most 128 printable characters")
	case s.Until != 0 && s.Until <= s.From:
		// A window that already ended is stored as written (seed 000's
		// service_config.json offers all of 2024): the listing is then not
		// available now, nobody can bid on it or run a job under it, and
		// compliance-check flags it, which tells its provider more than a
		// refusal would.
		return bad("availability ends before it starts")
	}
	for _, prm := range s.Params {
		if !text(prm.Key, 1, 32) || !text(prm.Value, 0, 128) {
			return bad("parameter %q: key 1-32, value at most 128 printable characters", prm.Key)
		}
	}
	if err := p.checkPrice(s.Price); err != nil {
		return err
	}
	if s.GPU == "" { // a miner's detected hardware, when the provider is one
		m, err := k.miners.Get(ctx.KV, provider)
		if err != nil {
			return err
		}
		if m != nil {
			s.GPU, s.GPUMemoryMB = m.Caps.GPU, m.Caps.GPUMemoryMB
			if s.Model == "" && s.Type == TypeAIInference && len(m.Caps.Models) == 1 {
				s.Model = m.Caps.Models[0]
			}
		}
	}
	return nil
}

func (k *Keeper) create(ctx *module.Context, p Params, s ListingSpec, provider address.Address) error {
	if err := k.checkSpec(ctx, p, &s, provider); err != nil {
		return err
	}
	if s.ID == "" {
		n, err := nextSeq(ctx.KV)
		if err != nil {
			return err
		}
		s.ID = seqID("svc-", n)
	}
	if l, err := k.Listing(ctx.KV, s.ID); err != nil {
		return err
	} else if l != nil {
		return fmt.Errorf("%w: %s", ErrServiceExists, s.ID)
	}
	l := &Listing{
		ID: s.ID, Provider: provider[:], ListedBy: ctx.Signer[:], Name: s.Name, Type: s.Type, Unit: s.Unit, Price: s.Price,
		Description: s.Description, Params: s.Params, Model: s.Model, GPU: s.GPU, GPUMemoryMB: s.GPUMemoryMB,
		Capacity: s.Capacity, From: s.From, Until: s.Until, AutoAccept: s.AutoAccept, Status: ListingActive,
		Created: ctx.Height, Strategy: "fixed",
	}
	if err := putListing(ctx.KV, nil, l); err != nil {
		return err
	}
	ctx.KV.Set(keyProviderIndex(l.Provider, l.ID), []byte{1})
	ctx.Touch(provider)
	return k.updateFacts(ctx.KV, provider, func(f *Facts) { f.Listings++ })
}

func (k *Keeper) listing(r state.Reader, id string) (*Listing, error) {
	var l Listing
	ok, err := get(r, keyListing(id), &l)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrServiceNotFound, id)
	}
	return &l, nil
}

func (k *Keeper) update(ctx *module.Context, p Params, m MsgUpdate) error {
	old, err := k.listing(ctx.KV, m.ID)
	if err != nil {
		return err
	}
	if string(ctx.Signer[:]) != string(old.Provider) && string(ctx.Signer[:]) != string(old.ListedBy) {
		return fmt.Errorf("%w: %s belongs to %s", ErrNotProvider, old.ID, old.ProviderAddr())
	}
	if old.Status == ListingClosed {
		return fmt.Errorf("%w: %s", ErrServiceClosed, old.ID)
	}
	l := *old
	switch m.Op {
	case OpPause:
		if l.Status == ListingPaused {
			return fmt.Errorf("%w: %s is already paused", ErrServicePaused, l.ID)
		}
		l.Status = ListingPaused
	case OpResume:
		if l.Status == ListingActive {
			return fmt.Errorf("%w: %s is already active", ErrInvalidListing, l.ID)
		}
		l.Status = ListingActive
	case OpClose:
		l.Status = ListingClosed
	case OpReprice, OpPricing:
		if err := p.checkPrice(m.Price); err != nil {
			return err
		}
		if m.Op == OpPricing {
			if m.PriceMin == 0 || m.PriceMax < m.PriceMin || m.PriceMax > p.MaxPrice {
				return fmt.Errorf("%w: bounds %s-%s", ErrInvalidPrice, m.PriceMin, m.PriceMax)
			}
			l.PriceMin, l.PriceMax, l.Strategy = m.PriceMin, m.PriceMax, "dynamic"
		}
		if l.Strategy == "dynamic" && (m.Price < l.PriceMin || m.Price > l.PriceMax) {
			return fmt.Errorf("%w: %s is outside the dynamic bounds %s-%s", ErrInvalidPrice, m.Price, l.PriceMin, l.PriceMax)
		}
		// The live agreements were struck at the listed price: a new one
		// waits until they end, so that the listing never shows a price
		// its running agreements do not pay.
		if m.Price != l.Price && l.Live > 0 {
			return fmt.Errorf("%w: %s has %d live agreements", ErrRepriceLive, l.ID, l.Live)
		}
		l.Price = m.Price
	default:
		return fmt.Errorf("%w: unknown update %q", ErrInvalidListing, m.Op)
	}
	return putListing(ctx.KV, old, &l)
}

// bidCount is a customer's open bids on a service.
func bidCount(r state.Reader, cust []byte, service string) (uint64, error) {
	return getUint(r, keyBidCount(cust, service))
}

// bidFor checks that a customer may bid on a listing at all.
func (k *Keeper) bidFor(ctx *module.Context, l *Listing) error {
	switch {
	case l.Status == ListingPaused:
		return fmt.Errorf("%w: %s", ErrServicePaused, l.ID)
	case l.Status == ListingClosed:
		return fmt.Errorf("%w: %s", ErrServiceClosed, l.ID)
	case !l.Available(ctx.Time.Unix()):
		return fmt.Errorf("%w: %s is available %s", ErrUnavailable, l.ID, window(l.From, l.Until))
	case string(l.Provider) == string(ctx.Signer[:]):
		return fmt.Errorf("%w: %s", ErrOwnService, l.ID)
	}
	return nil
}

func window(from, until int64) string {
	at := func(t int64) string { return time.Unix(t, 0).UTC().Format(time.RFC3339) }
	switch {
	case from != 0 && until != 0:
		return fmt.Sprintf("from %s to %s", at(from), at(until))
	case from != 0:
		return "from " + at(from)
	case until != 0:
		return "until " + at(until)
	}
	return "always"
}

func total(price coin.Amount, units uint64) (coin.Amount, error) {
	t := price.MulDiv(units, 1)
	if units != 0 && t.MulDiv(1, units) != price {
		return 0, fmt.Errorf("%w: %s × %d overflows", ErrInvalidBid, price, units)
	}
	return t, nil
}

func (k *Keeper) bid(ctx *module.Context, p Params, m MsgBid) error {
	l, err := k.listing(ctx.KV, m.Service)
	if err != nil {
		return err
	}
	if err := k.bidFor(ctx, l); err != nil {
		return err
	}
	if err := p.checkPrice(m.Price); err != nil {
		return err
	}
	if m.Units == 0 || m.Units > p.MaxUnits {
		return fmt.Errorf("%w: units %d, allowed 1-%d", ErrInvalidBid, m.Units, p.MaxUnits)
	}
	sum, err := total(m.Price, m.Units)
	if err != nil {
		return err
	}
	if sum < p.BidDeposit {
		return fmt.Errorf("%w: bid of %s AITBC, the deposit is %s", ErrBidBelowDeposit, sum, p.BidDeposit)
	}
	n, err := bidCount(ctx.KV, ctx.Signer[:], l.ID)
	if err != nil {
		return err
	}
	if n >= uint64(p.MaxOpenBids) {
		return fmt.Errorf("%w: %d open bids on %s, the limit is %d", ErrTooManyBids, n, l.ID, p.MaxOpenBids)
	}
	seq, err := nextSeq(ctx.KV)
	if err != nil {
		return err
	}
	b := &Bid{ID: seqID("bid-", seq), Service: l.ID, Customer: ctx.Signer[:], Provider: l.Provider, Price: m.Price, Units: m.Units,
		Created: ctx.Height, Expires: ctx.Time.Unix() + p.BidTTL, Status: BidOpen}
	ctx.Touch(l.ProviderAddr())
	if m.AutoAccept && l.AutoAccept && m.Price >= l.Price && !l.Full() {
		// The listing accepts automatically: the bid is an agreement now,
		// at the bid's price, its whole total locked at once.
		b.Status = BidAccepted
		if err := put(ctx.KV, keyBid(b.ID), b); err != nil {
			return err
		}
		return k.open(ctx, p, l, b, sum)
	}
	if err := k.bank.Send(ctx.KV, ctx.Signer, k.escrow, p.BidDeposit); err != nil {
		return err
	}
	b.Deposit = p.BidDeposit
	if err := put(ctx.KV, keyBid(b.ID), b); err != nil {
		return err
	}
	ctx.KV.Set(keyOpenBid(l.ID, b.ID), []byte{1})
	putUint(ctx.KV, keyBidCount(b.Customer, l.ID), n+1)
	return schedule(ctx.KV, b.Expires, due{Kind: dueBidExpiry, Key: []byte(b.ID)})
}

func (k *Keeper) getBid(ctx *module.Context, id string) (*Bid, error) {
	b, err := k.Bid(ctx.KV, id)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%w: %q", ErrBidNotFound, id)
	}
	return b, nil
}

// closeBid takes an open bid out of the open set (its deposit is the
// caller's to move).
func closeBid(ctx *module.Context, b *Bid, status uint8) error {
	ctx.KV.Delete(keyOpenBid(b.Service, b.ID))
	n, err := bidCount(ctx.KV, b.Customer, b.Service)
	if err != nil {
		return err
	}
	if n > 0 {
		n--
	}
	putUint(ctx.KV, keyBidCount(b.Customer, b.Service), n)
	b.Status = status
	return put(ctx.KV, keyBid(b.ID), b)
}

// endBid withdraws (by its customer) or rejects (by its provider) an open
// bid, or expires it (EndBlock, no signer check): its deposit returns.
func (k *Keeper) endBid(ctx *module.Context, id string, status uint8) error {
	b, err := k.getBid(ctx, id)
	if err != nil {
		return err
	}
	switch status {
	case BidWithdrawn:
		if string(b.Customer) != string(ctx.Signer[:]) {
			return fmt.Errorf("%w: bid %s is not the signer's", ErrNotCustomer, id)
		}
	case BidRejected:
		if string(b.Provider) != string(ctx.Signer[:]) {
			return fmt.Errorf("%w: bid %s", ErrNotBidProvider, id)
		}
	}
	if b.Status != BidOpen {
		return fmt.Errorf("%w: bid %s is %s", ErrBidNotOpen, id, BidStatusName(b.Status))
	}
	if b.Deposit > 0 {
		if err := k.bank.Send(ctx.KV, k.escrow, b.CustomerAddr(), b.Deposit); err != nil {
			return err
		}
	}
	ctx.Touch(b.CustomerAddr())
	return closeBid(ctx, b, status)
}

func (k *Keeper) accept(ctx *module.Context, p Params, id string) error {
	b, err := k.getBid(ctx, id)
	if err != nil {
		return err
	}
	if string(b.Provider) != string(ctx.Signer[:]) {
		return fmt.Errorf("%w: bid %s is on a service of %s", ErrNotBidProvider, id, addrOf(b.Provider))
	}
	if b.Status != BidOpen || ctx.Time.Unix() >= b.Expires {
		return fmt.Errorf("%w: bid %s is %s", ErrBidNotOpen, id, BidStatusName(b.Status))
	}
	l, err := k.listing(ctx.KV, b.Service)
	if err != nil {
		return err
	}
	switch {
	case l.Status == ListingClosed:
		return fmt.Errorf("%w: %s", ErrServiceClosed, l.ID)
	case l.Full():
		return fmt.Errorf("%w: %s runs %d agreements, its capacity", ErrNoCapacity, l.ID, l.Live)
	}
	sum, err := total(b.Price, b.Units)
	if err != nil {
		return err
	}
	// The deposit already in escrow counts towards the payment; the rest
	// comes from the customer's balance now (insufficient_funds if it
	// spent it since bidding).
	rest := sum - b.Deposit
	if err := closeBid(ctx, b, BidAccepted); err != nil {
		return err
	}
	return k.open(ctx, p, l, b, rest)
}

func addrOf(b []byte) string {
	a, err := address.FromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return a.String()
}

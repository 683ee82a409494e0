package rentals

import (
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
)

// EndBlock implements module.EndBlocker: every active lease is charged
// for the time up to the block's time and its provider paid; a lease whose
// paid-up end has come closes (the money has run out, exactly), and one
// whose listing was closed, or whose provider's miner is no longer active,
// ends with the time used paid. Either way its
// place on the listing is free from this block on. The work is bounded by
// the max_active parameter.
func (k *Keeper) EndBlock(ctx *module.Context) error {
	var ids []string
	err := ctx.KV.Iterate(activePrefix, false, func(key, _ []byte) bool {
		ids = append(ids, string(key[len(activePrefix):]))
		return true
	})
	if err != nil {
		return err
	}
	nowMs := ctx.Time.UnixMilli()
	for _, id := range ids {
		l, err := k.Get(ctx.KV, id)
		if err != nil {
			return err
		}
		if l == nil {
			continue
		}
		switch {
		case nowMs >= l.EndMs:
			err = k.close(ctx, l, nowMs, StatusExpired, "paid-up time over")
		default:
			li, lerr := k.listings.Listing(ctx.KV, l.Service)
			if lerr != nil {
				return lerr
			}
			if li == nil || li.Status == market.ListingClosed {
				err = k.close(ctx, l, nowMs, StatusEnded, "listing closed")
				break
			}
			// The renter pays for the miner's capacity: when the miner is
			// gone (deregistered, unbonding) so is what the lease bought.
			mi, merr := k.miners.Get(ctx.KV, l.ProviderAddr())
			if merr != nil {
				return merr
			}
			if mi == nil || mi.Status != miners.StatusActive {
				err = k.close(ctx, l, nowMs, StatusEnded, "provider's miner left")
				break
			}
			drawn := l.Drawn
			if err = k.charge(ctx, l, nowMs); err == nil && l.Drawn != drawn {
				err = put(ctx.KV, l) // a block too short to cost a unit writes nothing
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

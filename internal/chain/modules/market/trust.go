package market

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// ratingKey is where the rating of a job, or of an agreement, lives.
func ratingKey(job []byte, agreement string) []byte {
	if len(job) > 0 {
		return cat(RatingPrefix, []byte{'j'}, job)
	}
	return cat(RatingPrefix, []byte{'a'}, []byte(agreement))
}

// rate records a customer's rating of a delivered job (a job bound to an
// agreement, settled on chain) or of an agreement it paid by
// settle-payment: only a paying customer rates, once per job.
func (k *Keeper) rate(ctx *module.Context, m MsgRate) error {
	if m.Stars < 1 || m.Stars > 5 || !text(m.Review, 0, 280) {
		return fmt.Errorf("%w: %d stars, review of %d bytes", ErrInvalidRating, m.Stars, len(m.Review))
	}
	if (len(m.Job) == 0) == (m.Agreement == "") {
		return fmt.Errorf("%w: rate a job or an agreement", ErrNotRateable)
	}
	customer := ctx.Signer
	var a *Agreement
	var err error
	what := "agreement " + m.Agreement
	if len(m.Job) > 0 {
		what = fmt.Sprintf("job %x", m.Job)
		if len(m.Job) != jobs.IDLen {
			return fmt.Errorf("%w: job id must be %d bytes", ErrNotRateable, jobs.IDLen)
		}
		j, err := k.jobs.Get(ctx.KV, m.Job)
		if err != nil {
			return err
		}
		agr, err := ctx.KV.Get(keyBound(m.Job))
		if err != nil {
			return err
		}
		switch {
		case j == nil || agr == nil:
			return fmt.Errorf("%w: %s did not run under an agreement", ErrNotRateable, what)
		case len(m.Customer) > 0 && string(j.Coordinator) != string(ctx.Signer[:]):
			return fmt.Errorf("%w: only %s's coordinator rates it for its customer", ErrNotRateable, what)
		case j.Status != jobs.StatusSettled:
			return fmt.Errorf("%w: %s is %s, not settled", ErrNotRateable, what, jobs.StatusName(j.Status))
		}
		if len(m.Customer) > 0 {
			if customer, err = address.FromBytes(m.Customer); err != nil {
				return fmt.Errorf("%w: customer: %v", ErrNotRateable, err)
			}
		}
		if string(j.Customer) != string(customer[:]) {
			return fmt.Errorf("%w: %s is not %s's", ErrNotRateable, what, customer)
		}
		if a, err = k.getAgreement(ctx, string(agr)); err != nil {
			return err
		}
	} else {
		if len(m.Customer) > 0 {
			return fmt.Errorf("%w: a coordinator rates jobs, not agreements", ErrNotRateable)
		}
		if a, err = k.getAgreement(ctx, m.Agreement); err != nil {
			return err
		}
		if a.Drawn == 0 {
			return fmt.Errorf("%w: nothing was paid under agreement %s", ErrNotRateable, a.ID)
		}
	}
	if string(a.Customer) != string(customer[:]) {
		return fmt.Errorf("%w: agreement %s is not %s's", ErrNotRateable, a.ID, customer)
	}
	key := ratingKey(m.Job, m.Agreement)
	if v, err := ctx.KV.Get(key); err != nil {
		return err
	} else if v != nil {
		return fmt.Errorf("%w: %s", ErrAlreadyRated, what)
	}
	r := &Rating{Job: m.Job, Agreement: a.ID, Service: a.Service, Provider: a.Provider, Customer: customer[:], Stars: m.Stars, Review: m.Review, Height: ctx.Height}
	if err := put(ctx.KV, key, r); err != nil {
		return err
	}
	ctx.Touch(a.ProviderAddr())
	return k.updateFacts(ctx.KV, a.ProviderAddr(), func(f *Facts) {
		f.RatingsSum += uint64(m.Stars)
		f.Ratings++
	})
}

func (k *Keeper) getPayout(ctx *module.Context, id string) (*Payout, error) {
	po, err := k.Payout(ctx.KV, id)
	if err != nil {
		return nil, err
	}
	if po == nil {
		return nil, fmt.Errorf("%w: %q", ErrPayoutNotFound, id)
	}
	return po, nil
}

// dispute holds a payout past its release, until the dispute is resolved.
func (k *Keeper) dispute(ctx *module.Context, p Params, m MsgDispute) error {
	po, err := k.getPayout(ctx, m.ID)
	if err != nil {
		return err
	}
	switch {
	case string(po.Customer) != string(ctx.Signer[:]):
		return fmt.Errorf("%w: payout %s", ErrNotCustomer, po.ID)
	case po.Status != PayoutHeld || ctx.Time.Unix() >= po.ReleaseAt:
		return fmt.Errorf("%w: payout %s is %s (window until %d)", ErrDisputeWindow, po.ID, PayoutStatusName(po.Status), po.ReleaseAt)
	case !text(m.Reason, 1, 280):
		return fmt.Errorf("%w", ErrInvalidDispute)
	}
	po.Status, po.Reason, po.DisputeAt = PayoutDisputed, m.Reason, ctx.Time.Unix()
	if err := put(ctx.KV, keyPayout(po.ID), po); err != nil {
		return err
	}
	prov, _ := address.FromBytes(po.Provider)
	ctx.Touch(prov)
	if err := k.updateFacts(ctx.KV, prov, func(f *Facts) { f.Disputes++ }); err != nil {
		return err
	}
	if k.stake != nil { // the provider's stake stays until the dispute ends: it may be slashed
		if err := k.stake.Freeze(ctx.KV, prov); err != nil {
			return err
		}
	}
	return schedule(ctx.KV, po.DisputeAt+p.DisputeTimeout, due{Kind: dueDisputeTimeout, Key: []byte(po.ID)})
}

// resolve ends a dispute. Each party may only give way: the provider
// refunds (concedes), the customer releases (withdraws its dispute); the
// arbiter, when the chain has one, rules either way.
func (k *Keeper) resolve(ctx *module.Context, p Params, m MsgResolve) error {
	po, err := k.getPayout(ctx, m.ID)
	if err != nil {
		return err
	}
	if po.Status != PayoutDisputed {
		return fmt.Errorf("%w: payout %s is %s", ErrNotDisputed, po.ID, PayoutStatusName(po.Status))
	}
	signer := string(ctx.Signer[:])
	arbiter := p.Arbiter != nil && signer == string(p.Arbiter[:])
	switch {
	case arbiter:
	case signer == string(po.Provider) && m.Refund:
	case signer == string(po.Customer) && !m.Refund:
	default:
		return fmt.Errorf("%w: payout %s: the provider may refund, the customer may release, the arbiter may rule", ErrNotParty, po.ID)
	}
	cust, _ := address.FromBytes(po.Customer)
	ctx.Touch(cust)
	if m.Refund {
		ruling := "provider refunded"
		if arbiter {
			ruling = "arbiter: refund"
		}
		return k.refundPayout(ctx, p, po, ruling)
	}
	ruling := "customer withdrew"
	if arbiter {
		ruling = "arbiter: release"
	}
	return k.release(ctx, p, po, ruling)
}

// Reputation is a provider's score out of 100 and its parts, each computed
// from chain facts alone, so every node and client gets the same figure.
type Reputation struct {
	Score uint32 `json:"score"` // 0-100
	// Parts, each 0-1000 (per mille) before weighting: ratings 40%,
	// reliability 30%, disputes 20%, uptime 10%.
	Ratings     uint32 `json:"ratings_pm"`
	Reliability uint32 `json:"reliability_pm"`
	Disputes    uint32 `json:"disputes_pm"`
	Uptime      uint32 `json:"uptime_pm"`
	Why         string `json:"why"`
}

// HeartbeatFresh is how recent a miner's heartbeat must be to count as up.
const HeartbeatFresh = 600

// Score computes a provider's reputation from its facts and, when it runs
// a miner, that miner's record at block time now. A newcomer starts at 64:
// two virtual 3-star ratings, one virtual success and one failure, no
// disputes lost, uptime unknown (half).
func Score(f Facts, m *miners.Miner, now int64) Reputation {
	r := Reputation{
		Ratings:     uint32((f.RatingsSum + 6) * 1000 / (5 * (uint64(f.Ratings) + 2))),
		Reliability: uint32((uint64(f.Delivered) + 1) * 1000 / (uint64(f.Delivered) + uint64(f.Failed) + 2)),
		Disputes:    uint32(1000 - uint64(f.DisputesLost)*1000/(uint64(f.Released)+uint64(f.DisputesLost)+1)),
		Uptime:      500,
	}
	up := "runs no miner (uptime unknown)"
	if m != nil {
		switch {
		case m.Status != miners.StatusActive:
			r.Uptime, up = 0, "its miner is unbonding"
		case now-m.LastHeartbeat <= HeartbeatFresh:
			r.Uptime, up = 1000, fmt.Sprintf("miner heartbeat %ds ago", max(now-m.LastHeartbeat, 0))
		default:
			r.Uptime, up = 0, fmt.Sprintf("miner silent for %ds", now-m.LastHeartbeat)
		}
	}
	r.Score = (40*r.Ratings + 30*r.Reliability + 20*r.Disputes + 10*r.Uptime) / 1000
	avg := "no ratings"
	if f.Ratings > 0 {
		avg = fmt.Sprintf("%.2f stars from %d ratings", float64(f.RatingsSum)/float64(f.Ratings), f.Ratings)
	}
	r.Why = fmt.Sprintf("%s; %d jobs delivered, %d failed; %d disputes, %d lost; %s", avg, f.Delivered, f.Failed, f.Disputes, f.DisputesLost, up)
	return r
}

// reputation reads a provider's score at r.
func (k *Keeper) reputation(r state.Reader, prov address.Address, now int64) (Reputation, error) {
	f, err := k.Facts(r, prov)
	if err != nil {
		return Reputation{}, err
	}
	m, err := k.miners.Get(r, prov)
	if err != nil {
		return Reputation{}, err
	}
	return Score(f, m, now), nil
}

// order is a reverse auction settled in one transaction: the cheapest
// active listing of the type (and model) that accepts automatically, has
// room, asks at most the order's price and whose provider's reputation is
// at least its minimum becomes an agreement at the listing's price. When
// none fits, the refusal counts why, per constraint.
func (k *Keeper) order(ctx *module.Context, p Params, m MsgOrder) error {
	if NormalizeType(m.Type) != m.Type || m.Type == "" {
		return fmt.Errorf("%w: type %q", ErrInvalidBid, m.Type)
	}
	if err := p.checkPrice(m.MaxPrice); err != nil {
		return err
	}
	if m.Units == 0 || m.Units > p.MaxUnits || m.MinScore > 100 {
		return fmt.Errorf("%w: units 1-%d, min score 0-100", ErrInvalidBid, p.MaxUnits)
	}
	now := ctx.Time.Unix()
	var best *Listing
	why := map[string]int{}
	var ferr error
	prefix := cat(typeIndexPrefix, []byte(m.Type), []byte{0})
	err := ctx.KV.Iterate(prefix, false, func(key, _ []byte) bool {
		id := string(key[len(prefix)+8:])
		l, err := k.listing(ctx.KV, id)
		if err != nil {
			ferr = err
			return false
		}
		switch {
		case l.Price > m.MaxPrice:
			why["price above the order's"]++
			return true // cheapest first: the rest cost more still, but count them
		case m.Model != "" && l.Model != "" && l.Model != m.Model:
			why["another model"]++
		case !l.AutoAccept:
			why["accepts bids by hand"]++
		case l.Full():
			why["no capacity"]++
		case !l.Available(now):
			why["outside its availability"]++
		case string(l.Provider) == string(ctx.Signer[:]):
			why["the customer's own"]++
		default:
			rep, err := k.reputation(ctx.KV, l.ProviderAddr(), now)
			if err != nil {
				ferr = err
				return false
			}
			if rep.Score < m.MinScore {
				why["reputation below the minimum"]++
				return true
			}
			best = l
			return false
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if best == nil {
		return fmt.Errorf("%w: %s for at most %s AITBC per unit: %s", ErrNoMatch, m.Type, m.MaxPrice, reasons(why))
	}
	sum, err := total(best.Price, m.Units)
	if err != nil {
		return err
	}
	seq, err := nextSeq(ctx.KV)
	if err != nil {
		return err
	}
	b := &Bid{ID: seqID("bid-", seq), Service: best.ID, Customer: ctx.Signer[:], Provider: best.Provider, Price: best.Price,
		Units: m.Units, Created: ctx.Height, Expires: now, Status: BidAccepted}
	if err := put(ctx.KV, keyBid(b.ID), b); err != nil {
		return err
	}
	return k.open(ctx, p, best, b, sum)
}

// reasons lists why listings did not fit, in a stable order.
func reasons(why map[string]int) string {
	if len(why) == 0 {
		return "no active listing of that type"
	}
	out := ""
	for _, r := range []string{"price above the order's", "another model", "accepts bids by hand", "no capacity",
		"outside its availability", "the customer's own", "reputation below the minimum"} {
		if n := why[r]; n > 0 {
			if out != "" {
				out += ", "
			}
			out += fmt.Sprintf("%d %s", n, r)
		}
	}
	return out
}

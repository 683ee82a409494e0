package jobs

import (
	"crypto/ed25519"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if msg.Type == TypeBatch {
		return k.batch(ctx, p, msg)
	}
	return k.exec(ctx, p, msg, nil)
}

// exec runs one message; sigOK is a settlement receipt's signature
// verdict when a batch has already reached it.
func (k *Keeper) exec(ctx *module.Context, p Params, msg tx.Msg, sigOK *bool) error {
	switch msg.Type {
	case TypeCreate:
		var m MsgCreate
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		coord, err := address.FromBytes(m.Coordinator)
		if err != nil {
			return fmt.Errorf("%w: coordinator: %v", ErrInvalidJob, err)
		}
		return k.create(ctx, p, m.Spec, ctx.Signer, coord, false)
	case TypeCreateFor:
		var m MsgCreateFor
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		cust, err := address.FromBytes(m.Customer)
		if err != nil {
			return fmt.Errorf("%w: customer: %v", ErrInvalidJob, err)
		}
		return k.create(ctx, p, m.Spec, cust, ctx.Signer, true)
	case TypeAssign:
		var m MsgAssign
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.assign(ctx, p, m)
	case TypeSettle:
		var m MsgSettle
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.settle(ctx, p, &m.Receipt, sigOK)
	case TypeSettleStages:
		var m MsgSettleStages
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.settleStages(ctx, p, &m)
	case TypeCancel:
		var m MsgCancel
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.cancel(ctx, p, m.ID)
	case TypeCreatePrivate, TypeCreateForPrivate, TypeSettlePrivate:
		return k.execPrivate(ctx, p, msg) // private.go
	case TypeDeposit, TypeWithdraw:
		var m MsgDeposit
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		coord, err := address.FromBytes(m.Coordinator)
		if err != nil {
			return fmt.Errorf("%w: coordinator: %v", ErrInvalidJob, err)
		}
		if m.Amount == 0 {
			return fmt.Errorf("%w: amount must be positive", ErrInvalidJob)
		}
		ctx.Touch(coord)
		if msg.Type == TypeDeposit {
			if err := k.bank.Send(ctx.KV, ctx.Signer, k.deposits, m.Amount); err != nil {
				return err
			}
			return k.addDeposit(ctx.KV, ctx.Signer, coord, m.Amount)
		}
		return k.announceWithdrawal(ctx, p, coord, m.Amount)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k *Keeper) create(ctx *module.Context, p Params, s Spec, cust, coord address.Address, fromDeposit bool) error {
	switch {
	case len(s.ID) != IDLen:
		return fmt.Errorf("%w: id must be %d bytes", ErrInvalidJob, IDLen)
	case s.Model == "" || len(s.Model) > p.MaxModelID:
		return fmt.Errorf("%w: model name must be 1-%d bytes", ErrInvalidJob, p.MaxModelID)
	case len(s.PromptHash) != 32:
		return fmt.Errorf("%w: prompt hash must be 32 bytes", ErrInvalidJob)
	case s.MaxTokens == 0 || s.MaxTokens > p.MaxTokens:
		return fmt.Errorf("%w: max tokens must be 1-%d", ErrInvalidJob, p.MaxTokens)
	case s.MaxPrice == 0:
		return fmt.Errorf("%w: max price must be positive", ErrInvalidJob)
	case s.TTLSeconds < p.MinTTL || s.TTLSeconds > p.MaxTTL:
		return fmt.Errorf("%w: %d s, allowed %d-%d", ErrTTL, s.TTLSeconds, p.MinTTL, p.MaxTTL)
	}
	if existing, err := k.Get(ctx.KV, s.ID); err != nil {
		return err
	} else if existing != nil {
		return fmt.Errorf("%w: %x", ErrJobExists, s.ID)
	}
	if fromDeposit {
		// A deposit job may draw on money announced for withdrawal: the
		// coordinator may already have released its output, on the
		// promise that the deposit stays until the release delay passes.
		if err := k.takeDeposit(ctx.KV, cust, coord, s.MaxPrice); err != nil {
			return err
		}
		if err := k.bank.Send(ctx.KV, k.deposits, k.escrow, s.MaxPrice); err != nil {
			return err
		}
	} else if err := k.bank.Send(ctx.KV, cust, k.escrow, s.MaxPrice); err != nil {
		return err
	}
	j := &Job{
		ID: s.ID, Customer: cust[:], Coordinator: coord[:], Model: s.Model, PromptHash: s.PromptHash,
		MaxTokens: s.MaxTokens, Escrow: s.MaxPrice, FromDeposit: fromDeposit, Created: ctx.Height,
		Expires: ctx.Time.Unix() + s.TTLSeconds, Status: StatusOpen,
	}
	if err := k.put(ctx.KV, j); err != nil {
		return err
	}
	ctx.Touch(cust)
	ctx.Touch(coord)
	return schedule(ctx.KV, j.Expires, due{Kind: dueExpiry, Key: j.ID})
}

func (k *Keeper) job(ctx *module.Context, id []byte) (*Job, error) {
	if len(id) != IDLen {
		return nil, fmt.Errorf("%w: id must be %d bytes", ErrInvalidJob, IDLen)
	}
	j, err := k.Get(ctx.KV, id)
	if err != nil {
		return nil, err
	}
	if j == nil {
		return nil, fmt.Errorf("%w: %x", ErrJobNotFound, id)
	}
	return j, nil
}

func (k *Keeper) assign(ctx *module.Context, p Params, m MsgAssign) error {
	j, err := k.job(ctx, m.ID)
	if err != nil {
		return err
	}
	if string(j.Coordinator) != string(ctx.Signer[:]) {
		return fmt.Errorf("%w: %x", ErrNotCoordinator, j.ID)
	}
	if !j.Active() {
		return fmt.Errorf("%w: %x is %s", ErrJobState, j.ID, StatusName(j.Status))
	}
	if ctx.Time.Unix() >= j.Expires {
		return fmt.Errorf("%w: %x has expired", ErrJobState, j.ID)
	}
	ma, err := address.FromBytes(m.Miner)
	if err != nil {
		return fmt.Errorf("%w: miner address: %v", ErrMinerIneligible, err)
	}
	mi, err := k.miners.Get(ctx.KV, ma)
	if err != nil {
		return err
	}
	switch {
	case mi == nil:
		return fmt.Errorf("%w: %s is not registered", ErrMinerIneligible, ma)
	case mi.Status != miners.StatusActive:
		return fmt.Errorf("%w: %s is unbonding", ErrMinerIneligible, ma)
	case !mi.Caps.Serves(j.Model):
		return fmt.Errorf("%w: %s does not serve %q", ErrMinerIneligible, ma, j.Model)
	}
	if k.bindings != nil {
		if err := k.bindings.MayRun(ctx.KV, j.ID, ma); err != nil {
			return fmt.Errorf("%w: %v", ErrMinerIneligible, err)
		}
	}
	// The escrow must be able to pay the miner for at least one token's
	// worth of its price plus fee; otherwise the job can never settle.
	if minCost := PriceFor(1, mi.Caps.PricePer1k); p.MaxCost(minCost) > j.Escrow {
		return fmt.Errorf("%w: %s charges %s per 1k tokens, escrow is %s", ErrMinerIneligible, ma, mi.Caps.PricePer1k, j.Escrow)
	}
	// An assignment voids a customer's pending cancellation: the
	// coordinator is running the job, and the escrow stays until it
	// settles or expires.
	j.Status, j.Miner, j.PricePer1k, j.CancelAt = StatusAssigned, ma[:], mi.Caps.PricePer1k, 0
	j.Assignments++
	ctx.Touch(ma)
	return k.put(ctx.KV, j)
}

// Settlement is how a settled job's escrow was split.
type Settlement struct {
	Price, Fee, Commission, Refund coin.Amount
}

// Split computes the settlement of escrow for a price: the miner gets the
// price, the protocol fee goes to the block's fee split, the coordinator
// gets its commission, the rest is refunded. When the escrow cannot cover
// all three, the flat part of the commission comes first and the rest of
// the escrow is shared in the ratio 1 : fee_bps : commission_bps, the fee
// taking what rounding leaves; nothing is refunded.
func Split(p Params, escrow, price coin.Amount) Settlement {
	fee, comm := p.Fee(price), p.Commission(price)
	total, err := price.Add(fee)
	if err == nil {
		total, err = total.Add(comm)
	}
	if err != nil || total > escrow {
		flat := min(p.CommissionMin, escrow)
		price = (escrow - flat).MulDiv(10_000, 10_000+p.FeeBps+p.CommissionBps)
		comm = flat + price.MulDiv(p.CommissionBps, 10_000)
		return Settlement{Price: price, Fee: escrow - price - comm, Commission: comm}
	}
	return Settlement{Price: price, Fee: fee, Commission: comm, Refund: escrow - total}
}

// settle settles a job with its miner's receipt. sigOK, when not nil, is
// the receipt signature's verdict already reached (a batch verifies its
// receipts together).
func (k *Keeper) settle(ctx *module.Context, p Params, r *Receipt, sigOK *bool) error {
	if err := r.CheckShape(); err != nil {
		return fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	j, err := k.job(ctx, r.JobID)
	if err != nil {
		return err
	}
	if err := k.refusePrivate(ctx.KV, j.ID); err != nil {
		return err
	}
	if err := checkSettleable(ctx, j, r.ChainID, r.Miner, r.Customer, r.Model, r.PromptHash); err != nil {
		return err
	}
	switch {
	case r.TokensOut > j.MaxTokens:
		return fmt.Errorf("%w: %d tokens out, job allows %d", ErrReceiptInvalid, r.TokensOut, j.MaxTokens)
	case r.Price != PriceFor(r.TokensOut, j.PricePer1k):
		return fmt.Errorf("%w: price %s, %d tokens at %s per 1k is %s", ErrReceiptInvalid, r.Price, r.TokensOut, j.PricePer1k, PriceFor(r.TokensOut, j.PricePer1k))
	}
	mi, err := k.miners.Get(ctx.KV, j.MinerAddr())
	if err != nil {
		return err
	}
	if mi == nil {
		return fmt.Errorf("%w: miner %s left the registry", ErrReceiptInvalid, j.MinerAddr())
	}
	if sigOK != nil {
		if !*sigOK {
			return fmt.Errorf("%w: %v: bad signature", ErrReceiptInvalid, ErrReceipt)
		}
	} else if err := r.Verify(ed25519.PublicKey(mi.PubKey)); err != nil {
		return fmt.Errorf("%w: %v", ErrReceiptInvalid, err)
	}
	h, err := r.Hash()
	if err != nil {
		return err
	}
	price := r.Price
	if k.bindings != nil {
		bound, err := k.bindings.Settling(ctx.KV, j.ID, r.TokensOut)
		if err != nil {
			return err
		}
		if bound {
			// The job's marketplace agreement pays its provider (and the
			// protocol fee) for it: the escrow pays only the coordinator's
			// commission for routing it, and the rest returns, so the
			// customer does not pay twice.
			price = 0
		}
	}
	s := Split(p, j.Escrow, price)
	payTo := j.MinerAddr()
	if k.earnings != nil {
		if payTo, err = k.earnings.Settled(ctx, j.MinerAddr(), r.TokensOut, s.Price, s.Fee); err != nil {
			return err
		}
	}
	if payTo, err = k.payee(ctx, j, r, payTo, s.Price); err != nil { // audits.go: a spot check may hold the pay
		return err
	}
	if s.Price > 0 {
		if err := k.bank.Send(ctx.KV, k.escrow, payTo, s.Price); err != nil {
			return err
		}
	}
	if err := k.bank.CollectFee(ctx.KV, k.escrow, s.Fee); err != nil {
		return err
	}
	if s.Commission > 0 {
		if err := k.bank.Send(ctx.KV, k.escrow, j.CoordinatorAddr(), s.Commission); err != nil {
			return err
		}
	}
	if err := k.refund(ctx.KV, j, s.Refund); err != nil {
		return err
	}
	if err := k.miners.RecordSettlement(ctx.KV, j.MinerAddr(), r.TokensOut); err != nil {
		return err
	}
	j.Status, j.Paid, j.Fee, j.Commission, j.Refund, j.ReceiptHash, j.Settled = StatusSettled, s.Price, s.Fee, s.Commission, s.Refund, h[:], ctx.Height
	ctx.KV.Set(keyReceipt(h), j.ID)
	ctx.Touch(j.MinerAddr())
	ctx.Touch(j.CustomerAddr())
	return k.put(ctx.KV, j)
}

// refund returns amt of j's escrow to where it came from: the customer's
// balance, or its deposit with the coordinator.
func (k *Keeper) refund(kv *state.Cache, j *Job, amt coin.Amount) error {
	if amt == 0 {
		return nil
	}
	if j.FromDeposit {
		if err := k.bank.Send(kv, k.escrow, k.deposits, amt); err != nil {
			return err
		}
		return k.addDeposit(kv, j.CustomerAddr(), j.CoordinatorAddr(), amt)
	}
	return k.bank.Send(kv, k.escrow, j.CustomerAddr(), amt)
}

// end refunds an unsettled job's whole escrow and records why it ended.
func (k *Keeper) end(ctx *module.Context, j *Job, status uint8) error {
	if err := k.refund(ctx.KV, j, j.Escrow); err != nil {
		return err
	}
	j.Status, j.Refund, j.Settled, j.CancelAt = status, j.Escrow, ctx.Height, 0
	return k.put(ctx.KV, j)
}

// cancel ends an unassigned job. Its coordinator may do so at once (it
// knows it is not running the job); its customer only schedules it,
// release_delay seconds ahead, because a coordinator may already be
// running the job on the strength of the escrow it saw. A job the
// coordinator created from the customer's deposit is the coordinator's to
// cancel: its escrow is locked from creation to settlement or expiry, which
// is what lets the coordinator release output once it sees the job created.
func (k *Keeper) cancel(ctx *module.Context, p Params, id []byte) error {
	j, err := k.job(ctx, id)
	if err != nil {
		return err
	}
	byCoordinator := string(j.Coordinator) == string(ctx.Signer[:])
	if string(j.Customer) != string(ctx.Signer[:]) && !byCoordinator {
		return fmt.Errorf("%w: %x", ErrNotCustomer, j.ID)
	}
	if j.FromDeposit && !byCoordinator {
		return fmt.Errorf("%w: %x was created from a deposit: its coordinator cancels it, or it is refunded to the deposit when it expires", ErrNotCoordinator, j.ID)
	}
	if j.Status != StatusOpen {
		return fmt.Errorf("%w: %x is %s; only an unassigned job can be canceled", ErrJobState, j.ID, StatusName(j.Status))
	}
	ctx.Touch(j.CustomerAddr())
	if byCoordinator || p.ReleaseDelay == 0 {
		return k.end(ctx, j, StatusCanceled)
	}
	if j.CancelAt != 0 {
		return fmt.Errorf("%w: %x: cancellation already requested, effective at %s", ErrJobState, j.ID, timeUnix(j.CancelAt))
	}
	j.CancelAt = ctx.Time.Unix() + p.ReleaseDelay
	if err := k.put(ctx.KV, j); err != nil {
		return err
	}
	return schedule(ctx.KV, j.CancelAt, due{Kind: dueCancel, Key: j.ID})
}

// announceWithdrawal schedules amt of the signer's deposit with coord to
// return to it after the release delay. Until then the deposit still pays
// for the coordinator's jobs; a later announcement adds to the amount and
// starts the delay again.
func (k *Keeper) announceWithdrawal(ctx *module.Context, p Params, coord address.Address, amt coin.Amount) error {
	d, err := k.Deposit(ctx.KV, ctx.Signer, coord)
	if err != nil {
		return err
	}
	total, err := d.Withdrawing.Add(amt)
	if err != nil || total > d.Amount {
		return fmt.Errorf("%w: deposit of %s with %s is %s AITBC, %s already announced for withdrawal, cannot withdraw %s more",
			ErrDepositLow, ctx.Signer, coord, d.Amount, d.Withdrawing, amt)
	}
	d.Withdrawing, d.WithdrawAt = total, ctx.Time.Unix()+p.ReleaseDelay
	if p.ReleaseDelay == 0 {
		return k.payWithdrawal(ctx, ctx.Signer, coord, d)
	}
	if err := k.putDeposit(ctx.KV, ctx.Signer, coord, d); err != nil {
		return err
	}
	return schedule(ctx.KV, d.WithdrawAt, due{Kind: dueWithdrawal, Key: append(ctx.Signer[:len(ctx.Signer):len(ctx.Signer)], coord[:]...)})
}

// payWithdrawal pays a matured withdrawal: what was announced, or what is
// left of the deposit if its jobs spent more meanwhile.
func (k *Keeper) payWithdrawal(ctx *module.Context, cust, coord address.Address, d Deposit) error {
	pay := min(d.Withdrawing, d.Amount)
	d.Amount -= pay
	d.Withdrawing, d.WithdrawAt = 0, 0
	if pay > 0 {
		if err := k.bank.Send(ctx.KV, k.deposits, cust, pay); err != nil {
			return err
		}
	}
	ctx.Touch(cust)
	return k.putDeposit(ctx.KV, cust, coord, d)
}

// checkSettleable is what a public and a private settlement both require:
// the signer is the job's coordinator or its assigned miner, the job is
// assigned, and the receipt names this chain, the assigned miner, the
// job's customer, model and prompt.
func checkSettleable(ctx *module.Context, j *Job, chainID string, miner, customer []byte, model string, promptHash []byte) error {
	signer := string(ctx.Signer[:])
	if signer != string(j.Coordinator) && signer != string(j.Miner) {
		return fmt.Errorf("%w: %x", ErrNotCoordinator, j.ID)
	}
	if j.Status != StatusAssigned {
		return fmt.Errorf("%w: %x is %s", ErrJobState, j.ID, StatusName(j.Status))
	}
	mismatch := func(what string) error {
		return fmt.Errorf("%w: %s does not match job %x", ErrReceiptInvalid, what, j.ID)
	}
	switch {
	case chainID != ctx.ChainID:
		return mismatch("chain id")
	case string(miner) != string(j.Miner):
		return mismatch("miner (not the assigned one)")
	case string(customer) != string(j.Customer):
		return mismatch("customer")
	case model != j.Model:
		return mismatch("model")
	case string(promptHash) != string(j.PromptHash):
		return mismatch("prompt hash")
	}
	return nil
}

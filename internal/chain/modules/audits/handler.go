package audits

import (
	"fmt"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler. Guard clauses first, then the writes: a
// refused message changes nothing.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	switch msg.Type {
	case TypeRegister:
		var m MsgRegister
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.register(ctx, p, m)
	case TypeUnregister:
		var m MsgUnregister
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.unregister(ctx)
	case TypeReport:
		var m MsgReport
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.report(ctx, p, m)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k *Keeper) register(ctx *module.Context, p Params, m MsgRegister) error {
	v, err := k.Verifier(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if v == nil {
		n, err := k.countVerifiers(ctx.KV)
		if err != nil {
			return err
		}
		if n >= int(p.MaxVerifiers) {
			return fmt.Errorf("%w: %d", ErrTooManyVerifier, p.MaxVerifiers)
		}
		v = &Verifier{Since: ctx.Height}
	}
	total, err := v.Bond.Add(m.Bond)
	if err != nil || m.Bond == 0 || total < p.MinBond {
		return fmt.Errorf("%w: bond %s + %s, min_bond %s", ErrBond, v.Bond, m.Bond, p.MinBond)
	}
	if err := k.bank.Send(ctx.KV, ctx.Signer, k.bonds, m.Bond); err != nil {
		return err
	}
	v.Bond = total
	return put(ctx.KV, keyVerifier(ctx.Signer), v)
}

func (k *Keeper) unregister(ctx *module.Context) error {
	v, err := k.Verifier(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	switch {
	case v == nil:
		return fmt.Errorf("%w: %s", ErrNotVerifier, ctx.Signer)
	case v.Open > 0:
		return fmt.Errorf("%w: %d open", ErrVerifierBusy, v.Open)
	}
	if v.Bond > 0 {
		if err := k.bank.Send(ctx.KV, k.bonds, ctx.Signer, v.Bond); err != nil {
			return err
		}
	}
	ctx.KV.Delete(keyVerifier(ctx.Signer))
	return nil
}

// Hold implements jobs.Audits: a job settling with an attestation on a
// chain with spot checks on is recorded for the draw at this block's end,
// and its miner's pay goes to audits.held meanwhile. A miner paid through
// a pool (payTo is not the miner) is drawn too but its pay is not held:
// the pool's books count it at settlement, so its stake answers alone.
func (k *Keeper) Hold(ctx *module.Context, j *jobs.Job, r *jobs.Receipt, payTo address.Address, amount coin.Amount) (address.Address, error) {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return payTo, err
	}
	if p.SpotCheckBps == 0 || (len(r.AttestHash) == 0 && !Reexecutable(j.Model)) {
		return payTo, nil
	}
	c := &Check{JobID: j.ID, Miner: j.Miner, Customer: j.Customer, PayTo: payTo[:], AttestHash: r.AttestHash,
		Settled: ctx.Height, Status: StatusPending}
	to := payTo
	if payTo == j.MinerAddr() {
		c.Amount, to = amount, k.held
	}
	if k.work != nil {
		// The settlement has just counted the job's work toward the
		// epoch's rewards: take it out until the pay is released.
		jp, err := k.jobParams.Params(ctx.KV)
		if err != nil {
			return payTo, err
		}
		c.Tokens, c.JobFee = r.TokensOut, jobs.Split(jp, j.Escrow, r.Price).Fee
		if err := k.work.Withhold(ctx.KV, j.MinerAddr(), c.Tokens, c.JobFee); err != nil {
			return payTo, err
		}
	}
	if err := put(ctx.KV, keyCheck(j.ID), c); err != nil {
		return payTo, err
	}
	ctx.KV.Set(keyDraw(j.ID), []byte{1})
	return to, nil
}

func (k *Keeper) report(ctx *module.Context, p Params, m MsgReport) error {
	switch {
	case len(m.JobID) != jobs.IDLen, len(m.Evidence) > MaxEvidence, len(m.Reason) > MaxReason,
		!utf8.ValidString(m.Reason), !m.Pass && m.Reason == "":
		return ErrInvalidReport
	}
	c, err := k.Check(ctx.KV, m.JobID)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("%w: %x", ErrCheckNotFound, m.JobID)
	}
	cur, ok := c.Current()
	if !ok || cur != ctx.Signer {
		return fmt.Errorf("%w: job %x is %s", ErrNotAssigned, m.JobID, StatusName(c.Status))
	}
	if ctx.Height > c.Deadline {
		return fmt.Errorf("%w: deadline %d", ErrLate, c.Deadline)
	}
	ctx.KV.Delete(keyDue(c.Deadline, c.JobID))
	ctx.KV.Delete(keyAssigned(cur, c.JobID))
	if err := k.updateVerifier(ctx.KV, cur, func(v *Verifier) { v.Reports++ }); err != nil {
		return err
	}
	ctx.Touch(c.MinerAddr())
	first := c.Status == StatusAssigned
	if first {
		c.Evidence, c.Reason = m.Evidence, m.Reason
	} else {
		c.Evidence2, c.Reason2 = m.Evidence, m.Reason
	}
	switch {
	case first && m.Pass:
		return k.pass(ctx, p, c)
	case first:
		// A claim of fraud: the miner's stake stays until a second verifier,
		// drawn from this block's hash, has checked the claim.
		if err := k.stake.Freeze(ctx.KV, c.MinerAddr()); err != nil {
			return err
		}
		c.Status = StatusDisputed
		ctx.KV.Set(keyDraw(c.JobID), []byte{1})
		return put(ctx.KV, keyCheck(c.JobID), c)
	case !m.Pass:
		return k.confirm(ctx, p, c)
	default:
		return k.overrule(ctx, p, c)
	}
}

// pay sends amount from account from to a, when there is any.
func (k *Keeper) pay(ctx *module.Context, from, a address.Address, amount coin.Amount) error {
	if amount == 0 {
		return nil
	}
	ctx.Touch(a)
	return k.bank.Send(ctx.KV, from, a, amount)
}

// earn pays a verifier amount from the held pay and counts it.
func (k *Keeper) earn(ctx *module.Context, v address.Address, amount coin.Amount, upheld bool) error {
	if err := k.pay(ctx, k.held, v, amount); err != nil {
		return err
	}
	return k.updateVerifier(ctx.KV, v, func(r *Verifier) {
		r.Open--
		r.Earned += amount
		if upheld {
			r.Upheld++
		}
	})
}

// finish records a check's outcome.
func (k *Keeper) finish(ctx *module.Context, c *Check, status uint8) error {
	c.Status, c.Resolved = status, ctx.Height
	return put(ctx.KV, keyCheck(c.JobID), c)
}

// pass: the first verifier found the job honest; it earns the check fee
// from the pay, the rest is released.
func (k *Keeper) pass(ctx *module.Context, p Params, c *Check) error {
	fee := p.Fee(c.Amount)
	if err := k.earn(ctx, c.VerifierAddr(), fee, true); err != nil {
		return err
	}
	if err := k.payOut(ctx, c, c.Amount-fee); err != nil {
		return err
	}
	if err := k.updateMiner(ctx.KV, c.MinerAddr(), func(m *MinerRecord) { m.Passed++ }); err != nil {
		return err
	}
	c.Fees = fee
	return k.finish(ctx, c, StatusPassed)
}

// confirm: the second verifier agrees the job was not run as attested.
// The customer gets the pay back, less a check fee to each verifier; the
// miner's stake is cut and split between the customer, the verifiers
// (half each, the first taking any odd unit) and the burn.
func (k *Keeper) confirm(ctx *module.Context, p Params, c *Check) error {
	miner := c.MinerAddr()
	if err := k.stake.Unfreeze(ctx.KV, miner); err != nil {
		return err
	}
	seized, err := k.stake.SlashTo(ctx, miner, p.SlashBps, k.held)
	if err != nil {
		return err
	}
	fee := p.Fee(c.Amount)
	toCust := seized.MulDiv(p.SlashCustomerBps, 10_000)
	shares := seized.MulDiv(p.SlashVerifiersBps, 10_000)
	second := shares / 2
	burned := seized - toCust - shares
	if err := k.earn(ctx, c.VerifierAddr(), fee+shares-second, true); err != nil {
		return err
	}
	if err := k.earn(ctx, c.SecondAddr(), fee+second, true); err != nil {
		return err
	}
	refund := c.Amount - 2*fee
	if err := k.pay(ctx, k.held, c.CustomerAddr(), refund+toCust); err != nil {
		return err
	}
	if burned > 0 {
		if err := k.bank.Burn(ctx.KV, k.held, burned); err != nil {
			return err
		}
	}
	if err := k.updateMiner(ctx.KV, miner, func(m *MinerRecord) { m.Frauds++ }); err != nil {
		return err
	}
	if k.rep != nil {
		if err := k.rep.RecordFraud(ctx.KV, miner); err != nil {
			return err
		}
	}
	c.Fees, c.Slashed, c.Refunded, c.Shares, c.Burned = 2*fee, seized, refund+toCust, shares, burned
	return k.finish(ctx, c, StatusConfirmed)
}

// overrule: the second verifier found the job honest, so the first one's
// claim was false. Its bond is cut (burned), the second earns the check
// fee, the miner's stake is freed and its pay released.
func (k *Keeper) overrule(ctx *module.Context, p Params, c *Check) error {
	cut, err := k.cutBond(ctx, c.VerifierAddr(), p.BondSlashBps, func(v *Verifier) { v.Open--; v.Overruled++ })
	if err != nil {
		return err
	}
	fee := p.Fee(c.Amount)
	if err := k.earn(ctx, c.SecondAddr(), fee, true); err != nil {
		return err
	}
	if err := k.release(ctx, c, c.Amount-fee); err != nil {
		return err
	}
	if err := k.updateMiner(ctx.KV, c.MinerAddr(), func(m *MinerRecord) { m.Passed++ }); err != nil {
		return err
	}
	c.Fees, c.BondSlash = fee, cut
	return k.finish(ctx, c, StatusOverruled)
}

// release frees the miner of a dispute (when there is one) and pays it
// amount of the held pay.
func (k *Keeper) release(ctx *module.Context, c *Check, amount coin.Amount) error {
	if c.Status == StatusDisputed || c.Status == StatusRechecking {
		if err := k.stake.Unfreeze(ctx.KV, c.MinerAddr()); err != nil {
			return err
		}
	}
	return k.payOut(ctx, c, amount)
}

// payOut pays the miner (or its pool) amount of a check's held pay and
// counts the job's work toward the current epoch's rewards: every outcome
// but a confirmed fraud ends here.
func (k *Keeper) payOut(ctx *module.Context, c *Check, amount coin.Amount) error {
	if err := k.pay(ctx, k.held, c.PayToAddr(), amount); err != nil {
		return err
	}
	if k.work == nil {
		return nil
	}
	return k.work.Credit(ctx.KV, c.MinerAddr(), c.Tokens, c.JobFee)
}

// cutBond burns bps of a verifier's bond, updating its record with fn too.
func (k *Keeper) cutBond(ctx *module.Context, a address.Address, bps uint64, fn func(v *Verifier)) (coin.Amount, error) {
	var cut coin.Amount
	err := k.updateVerifier(ctx.KV, a, func(v *Verifier) {
		cut = v.Bond.MulDiv(bps, 10_000)
		v.Bond -= cut
		v.Slashed += cut
		fn(v)
	})
	if err != nil || cut == 0 {
		return cut, err
	}
	return cut, k.bank.Burn(ctx.KV, k.bonds, cut)
}

// Reexecutable reports whether a job's model names a deterministic kind
// (package jobkind: data processing, classifier training) whose result a
// verifier re-runs exactly: such jobs are checked without an attestation,
// their output's hash being the receipt's result hash. The names are
// jobkind's, repeated here so that the chain does not import the
// processors.
func Reexecutable(model string) bool {
	return model == "data-processing" || model == "custom-classifier"
}

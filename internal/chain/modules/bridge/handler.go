package bridge

import (
	"bytes"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeAddress:
		var m MsgAddress
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.assign(ctx)
	case TypeAttest:
		var m MsgAttest
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.attest(ctx, m)
	case TypeWithdraw:
		var m MsgWithdraw
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.withdraw(ctx, m)
	case TypePaid:
		var m MsgPaid
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.paid(ctx, m)
	case TypeHalt:
		var m MsgHalt
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.halt(ctx, m)
	case TypeProposePayout:
		var m MsgProposePayout
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.proposePayout(ctx, m)
	case TypeSignPayout:
		var m MsgSignPayout
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.signPayout(ctx, m)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

// assign gives the signer the next deposit address.
func (k *Keeper) assign(ctx *module.Context) error {
	p, err := k.checkOpen(ctx.KV)
	if err != nil {
		return err
	}
	if a, ok, err := read[Assigned](ctx.KV, keyAcct(ctx.Signer)); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%w: %s", ErrHasAddress, a.Address)
	}
	t, err := k.totals(ctx.KV)
	if err != nil {
		return err
	}
	if t.Next >= 1<<31 {
		return ErrAddressesFull
	}
	idx := uint32(t.Next)
	addr, err := p.DepositAddress(idx)
	if err != nil {
		return err
	}
	s := addr.EncodeAddress()
	t.Next++
	ctx.KV.Set(keyAddr(s), ctx.Signer[:])
	ctx.KV.Set(keyIdx(idx), ctx.Signer[:])
	if err := write(ctx.KV, keyAcct(ctx.Signer), Assigned{Index: idx, Address: s}); err != nil {
		return err
	}
	ctx.Note("deposit address " + s)
	return write(ctx.KV, keyTotals, t)
}

func (k *Keeper) operator(ctx *module.Context) (Params, error) {
	p, err := k.checkOpen(ctx.KV)
	if err != nil {
		return p, err
	}
	if !p.IsOperator(ctx.Signer) {
		return p, fmt.Errorf("%w: %s", ErrNotOperator, ctx.Signer)
	}
	return p, nil
}

// attest records one operator's attestation, and mints once threshold agree.
func (k *Keeper) attest(ctx *module.Context, m MsgAttest) error {
	if len(m.Txid) != 32 || len(m.BlockHash) != 32 || m.BlockH < 0 || len(m.Address) > MaxBTCAddress {
		return fmt.Errorf("%w: txid and block hash are 32 bytes, the address at most %d", ErrInvalid, MaxBTCAddress)
	}
	p, err := k.operator(ctx)
	if err != nil {
		return err
	}
	if m.Amount > MaxSat {
		return fmt.Errorf("%w: %d sat", ErrAmountTooLarge, m.Amount)
	}
	if m.Amount < p.MinDepositSat {
		return fmt.Errorf("%w: %d sat, the bridge mints deposits of %d sat or more", ErrDust, m.Amount, p.MinDepositSat)
	}
	raw, err := ctx.KV.Get(keyAddr(m.Address))
	if err != nil {
		return err
	}
	if raw == nil {
		return fmt.Errorf("%w: %q", ErrUnknownAddress, m.Address)
	}
	owner, err := address.FromBytes(raw)
	if err != nil {
		return err
	}
	key := keyDep(m.Txid, m.Vout)
	d, ok, err := read[Deposit](ctx.KV, key)
	if err != nil {
		return err
	}
	if !ok {
		d = Deposit{Account: owner[:], Address: m.Address, Amount: m.Amount, BlockHash: m.BlockHash, BlockH: m.BlockH}
		ctx.KV.Set(keyAcctDep(owner, m.Txid, m.Vout), []byte{1})
	}
	if d.Minted != 0 {
		return fmt.Errorf("%w: %x:%d at AITBC height %d", ErrMinted, reverse(m.Txid), m.Vout, d.Minted)
	}
	if d.Address != m.Address || d.Amount != m.Amount || !bytes.Equal(d.BlockHash, m.BlockHash) || d.BlockH != m.BlockH {
		return fmt.Errorf("%w: %d sat to %s in block %x at %d; attested so far: %d sat to %s in block %x at %d",
			ErrMismatch, m.Amount, m.Address, reverse(m.BlockHash), m.BlockH, d.Amount, d.Address, reverse(d.BlockHash), d.BlockH)
	}
	for _, a := range d.Attesters {
		if bytes.Equal(a, ctx.Signer[:]) {
			return fmt.Errorf("%w: %x:%d", ErrAttested, reverse(m.Txid), m.Vout)
		}
	}
	d.Attesters = append(d.Attesters, bytes.Clone(ctx.Signer[:]))
	ctx.Touch(owner)
	if len(d.Attesters) >= p.Threshold {
		// the minted output joins the bridge's outputs a payout may spend
		a, ok, err := read[Assigned](ctx.KV, keyAcct(owner))
		if err != nil {
			return err
		}
		if !ok || a.Address != m.Address {
			return fmt.Errorf("%w: %q is not %s's address", ErrUnknownAddress, m.Address, owner)
		}
		if err := write(ctx.KV, keyUTXO(m.Txid, m.Vout), UTXO{Amount: m.Amount, Chain: DepositChain, Index: a.Index}); err != nil {
			return err
		}
		if err := k.bank.MintDenom(ctx.KV, Name, owner, Denom, coin.Amount(m.Amount)); err != nil {
			return err
		}
		t, err := k.totals(ctx.KV)
		if err != nil {
			return err
		}
		t.Minted += m.Amount
		t.Deposits++
		if err := write(ctx.KV, keyTotals, t); err != nil {
			return err
		}
		d.Minted = ctx.Height
		ctx.Note(fmt.Sprintf("minted %d sat to %s", m.Amount, owner))
	}
	return write(ctx.KV, key, d)
}

// withdraw burns the signer's btc and records the payment to make.
func (k *Keeper) withdraw(ctx *module.Context, m MsgWithdraw) error {
	p, err := k.checkOpen(ctx.KV)
	if err != nil {
		return err
	}
	if _, err := p.CheckAddress(m.To); err != nil {
		return err
	}
	// paying the bridge itself would burn the btc and keep the bitcoin
	// (its change address) or mint it again to someone else (a deposit
	// address): refused
	if chg, err := p.ChangeAddress(); err == nil && chg.EncodeAddress() == m.To {
		return fmt.Errorf("%w: %s is the bridge's own change address", ErrBTCAddress, m.To)
	}
	if own, err := ctx.KV.Get(keyAddr(m.To)); err != nil {
		return err
	} else if own != nil {
		return fmt.Errorf("%w: %s is a bridge deposit address (send btc on AITBC instead)", ErrBTCAddress, m.To)
	}
	if m.Amount > MaxSat {
		return fmt.Errorf("%w: %d sat", ErrAmountTooLarge, m.Amount)
	}
	if m.Amount < p.MinWithdrawSat {
		return fmt.Errorf("%w: %d sat, withdrawals are %d sat or more (%d sat of it pays the Bitcoin fee)", ErrDust, m.Amount, p.MinWithdrawSat, p.WithdrawFeeSat)
	}
	bal, err := k.bank.BalanceOf(ctx.KV, ctx.Signer, Denom)
	if err != nil {
		return err
	}
	if uint64(bal) < m.Amount {
		return fmt.Errorf("%w: %s holds %d sat, asked %d", ErrFunds, ctx.Signer, uint64(bal), m.Amount)
	}
	if err := k.bank.BurnDenom(ctx.KV, Name, ctx.Signer, Denom, coin.Amount(m.Amount)); err != nil {
		return err
	}
	t, err := k.totals(ctx.KV)
	if err != nil {
		return err
	}
	id := t.NextWD
	t.NextWD++
	t.Withdrawn += m.Amount
	if err := write(ctx.KV, keyTotals, t); err != nil {
		return err
	}
	ctx.KV.Set(keyWDP(id), []byte{1})
	ctx.Note(fmt.Sprintf("withdrawal %d", id))
	return write(ctx.KV, keyWD(id), Withdrawal{Owner: ctx.Signer[:], To: m.To, Amount: m.Amount, Fee: p.WithdrawFeeSat, Height: ctx.Height})
}

// paid records a withdrawal's Bitcoin payment, once.
func (k *Keeper) paid(ctx *module.Context, m MsgPaid) error {
	if len(m.Txid) != 32 {
		return fmt.Errorf("%w: txid is 32 bytes", ErrInvalid)
	}
	// a halted bridge still records payments already made
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if !p.Enabled() {
		return ErrDisabled
	}
	if !p.IsOperator(ctx.Signer) {
		return fmt.Errorf("%w: %s", ErrNotOperator, ctx.Signer)
	}
	w, ok, err := read[Withdrawal](ctx.KV, keyWD(m.ID))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %d", ErrNoWithdrawal, m.ID)
	}
	if w.PaidTx != nil {
		return fmt.Errorf("%w: withdrawal %d by %x", ErrPaid, m.ID, reverse(w.PaidTx))
	}
	// the payment is the proposal signed by Threshold operators, nothing else
	pr, ok, err := read[Proposal](ctx.KV, keyProp(m.ID))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: withdrawal %d", ErrNoProposal, m.ID)
	}
	pt, err := DecodePayoutTx(pr.Tx)
	if err != nil {
		return err
	}
	ptxid := pt.TxHash()
	if !bytes.Equal(m.Txid, ptxid[:]) {
		return fmt.Errorf("%w: withdrawal %d's payout is %s, not %x", ErrPayoutMismatch, m.ID, ptxid, reverse(m.Txid))
	}
	if len(pr.Shares) < p.Threshold {
		return fmt.Errorf("%w: %d of %d shares", ErrUnsigned, len(pr.Shares), p.Threshold)
	}
	// its inputs are spent, its change is the bridge's
	for _, in := range pt.TxIn {
		ctx.KV.Delete(keyUTXO(in.PreviousOutPoint.Hash[:], in.PreviousOutPoint.Index))
	}
	if len(pt.TxOut) == 2 {
		if err := write(ctx.KV, keyUTXO(ptxid[:], 1), UTXO{Amount: uint64(pt.TxOut[1].Value), Chain: ChangeChain, Index: 0}); err != nil {
			return err
		}
	}
	ctx.KV.Delete(keyProp(m.ID))
	w.PaidTx, w.PaidBy, w.PaidAt = m.Txid, ctx.Signer[:], ctx.Height
	t, err := k.totals(ctx.KV)
	if err != nil {
		return err
	}
	t.PaidOut += w.Amount
	if err := write(ctx.KV, keyTotals, t); err != nil {
		return err
	}
	ctx.KV.Delete(keyWDP(m.ID))
	if owner, err := address.FromBytes(w.Owner); err == nil {
		ctx.Touch(owner)
	}
	return write(ctx.KV, keyWD(m.ID), w)
}

// halt stops minting and withdrawals.
func (k *Keeper) halt(ctx *module.Context, m MsgHalt) error {
	if len(m.Reason) == 0 || len(m.Reason) > MaxReason {
		return fmt.Errorf("%w: a reason of 1 to %d bytes", ErrInvalid, MaxReason)
	}
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if !p.Enabled() {
		return ErrDisabled
	}
	if !p.IsOperator(ctx.Signer) {
		return fmt.Errorf("%w: %s", ErrNotOperator, ctx.Signer)
	}
	if h, err := k.Halted(ctx.KV); err != nil {
		return err
	} else if h != nil {
		return fmt.Errorf("%w: %s", ErrAlreadyHalted, h.Reason)
	}
	return write(ctx.KV, keyHalt, Halt{Reason: m.Reason, By: ctx.Signer[:], Height: ctx.Height})
}

// reverse returns a hash in the byte order Bitcoin shows it.
func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

package multisig

import (
	"fmt"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler.
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
		return k.create(ctx, m)
	case TypePropose:
		var m MsgPropose
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.propose(ctx, p, m)
	case TypeSign:
		var m MsgSign
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.sign(ctx, m)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k *Keeper) create(ctx *module.Context, m MsgCreate) error {
	if err := CheckName(m.Name); err != nil {
		return err
	}
	n := len(m.Signers)
	switch {
	case n == 0 || n > MaxSigners:
		return fmt.Errorf("%w: %d signers, 1 to %d", ErrInvalid, n, MaxSigners)
	case m.Threshold == 0 || int(m.Threshold) > n:
		return fmt.Errorf("%w: threshold %d of %d signers", ErrInvalid, m.Threshold, n)
	}
	seen := map[string]bool{}
	for _, s := range m.Signers {
		if _, err := address.FromBytes(s); err != nil {
			return fmt.Errorf("%w: signer: %v", ErrInvalid, err)
		}
		if seen[string(s)] {
			a, _ := address.FromBytes(s)
			return fmt.Errorf("%w: duplicate signer %s", ErrInvalid, a)
		}
		seen[string(s)] = true
	}
	if a, err := k.GetAccount(ctx.KV, m.Name); err != nil || a != nil {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: %q", ErrExists, m.Name)
	}
	ctx.Touch(Address(m.Name))
	return put(ctx.KV, keyAccount(m.Name), Account{Threshold: m.Threshold, Signers: m.Signers})
}

func (k *Keeper) member(ctx *module.Context, name string) (*Account, error) {
	a, err := k.GetAccount(ctx.KV, name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if !a.IsSigner(ctx.Signer) {
		return nil, fmt.Errorf("%w: %s is not a signer of %q", ErrNotSigner, ctx.Signer, name)
	}
	return a, nil
}

func (k *Keeper) propose(ctx *module.Context, p Params, m MsgPropose) error {
	a, err := k.member(ctx, m.Name)
	if err != nil {
		return err
	}
	mod, _, _ := strings.Cut(m.Msg.Type, "/")
	if mod == Name || k.route == nil || k.route(m.Msg.Type) == nil {
		return fmt.Errorf("%w: %q", ErrBadProposal, m.Msg.Type)
	}
	id := a.Next
	a.Next++
	pr := Proposal{Msg: m.Msg, Proposer: ctx.Signer[:], Approvals: [][]byte{ctx.Signer[:]}, Expires: ctx.Height + p.ExpiryBlocks}
	if err := put(ctx.KV, keyAccount(m.Name), a); err != nil {
		return err
	}
	ctx.Note(fmt.Sprintf("multisig %s: proposal %d", m.Name, id))
	return k.approve(ctx, m.Name, a, id, &pr)
}

func (k *Keeper) sign(ctx *module.Context, m MsgSign) error {
	a, err := k.member(ctx, m.Name)
	if err != nil {
		return err
	}
	pr, err := k.GetProposal(ctx.KV, m.Name, m.ID)
	if err != nil {
		return err
	}
	switch {
	case pr == nil:
		return fmt.Errorf("%w: %q has no proposal %d", ErrNoProposal, m.Name, m.ID)
	case pr.Executed > 0:
		return fmt.Errorf("%w: proposal %d of %q executed at height %d", ErrExecuted, m.ID, m.Name, pr.Executed)
	case ctx.Height > pr.Expires:
		return fmt.Errorf("%w: proposal %d of %q expired at height %d", ErrExpired, m.ID, m.Name, pr.Expires)
	}
	for _, s := range pr.Approvals {
		if string(s) == string(ctx.Signer[:]) {
			return fmt.Errorf("%w: %s, proposal %d of %q", ErrSigned, ctx.Signer, m.ID, m.Name)
		}
	}
	pr.Approvals = append(pr.Approvals, ctx.Signer[:])
	return k.approve(ctx, m.Name, a, m.ID, pr)
}

// approve stores the proposal and, once it has the threshold's approvals,
// executes its message as the account. A message that fails refuses the
// approval that would have executed it (nothing changes; it can be signed
// again once the message can succeed, until it expires).
func (k *Keeper) approve(ctx *module.Context, name string, a *Account, id uint64, pr *Proposal) error {
	if uint32(len(pr.Approvals)) >= a.Threshold {
		sub := ctx.Sub(ctx.KV.Child())
		sub.Signer, sub.SignerKey = Address(name), nil
		h := k.route(pr.Msg.Type)
		if h == nil {
			return fmt.Errorf("%w: %q", ErrBadProposal, pr.Msg.Type)
		}
		if err := h.Exec(sub, pr.Msg); err != nil {
			return fmt.Errorf("multisig %s proposal %d: %w", name, id, err)
		}
		sub.KV.Write()
		ctx.Keep(sub)
		ctx.Touch(Address(name))
		pr.Executed = ctx.Height
		ctx.Note(fmt.Sprintf("multisig %s: proposal %d executed", name, id))
	}
	return put(ctx.KV, keyProposal(name, id), pr)
}

package bridge

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// MaxPage bounds a listing's page.
const MaxPage = 500

// View is GET /api/v1/bridge.
type View struct {
	Params    Params    `json:"params"`
	Enabled   bool      `json:"enabled"`
	Halted    *HaltView `json:"halted,omitempty"`
	Supply    uint64    `json:"btc_supply_sat"`
	Minted    uint64    `json:"minted_sat"`
	Withdrawn uint64    `json:"withdrawn_sat"`
	PaidOut   uint64    `json:"paid_out_sat"`
	Pending   uint64    `json:"pending_withdrawals_sat"`
	Deposits  uint64    `json:"deposits"`
	Addresses uint64    `json:"addresses"`
	Change    string    `json:"change_address,omitempty"`
}

// HaltView is a halt, for people.
type HaltView struct {
	Reason string          `json:"reason"`
	By     address.Address `json:"by"`
	Height int64           `json:"height"`
}

// AddressView is an account's deposit address.
type AddressView struct {
	Account address.Address `json:"account"`
	Index   uint32          `json:"index"`
	Address string          `json:"address"`
}

// DepositView is a deposit.
type DepositView struct {
	Outpoint  string            `json:"outpoint"` // txid:vout, txid as Bitcoin shows it
	Account   address.Address   `json:"account"`
	Address   string            `json:"address"`
	Amount    uint64            `json:"amount_sat"`
	BlockHash string            `json:"block_hash"`
	BlockH    int64             `json:"block_height"`
	Attesters []address.Address `json:"attesters"`
	Minted    int64             `json:"minted_height,omitempty"`
}

// WithdrawalView is a withdrawal.
type WithdrawalView struct {
	ID     uint64           `json:"id"`
	Owner  address.Address  `json:"owner"`
	To     string           `json:"to"`
	Amount uint64           `json:"amount_sat"`
	Fee    uint64           `json:"fee_sat"`
	Payout uint64           `json:"payout_sat"`
	Height int64            `json:"height"`
	Status string           `json:"status"` // pending | paid
	PaidTx string           `json:"paid_txid,omitempty"`
	PaidBy *address.Address `json:"paid_by,omitempty"`
	PaidAt int64            `json:"paid_height,omitempty"`
	// PayoutTxid is the proposed payout's txid, Shares how many operators
	// have signed it; Proposer, while none is proposed, the operator who
	// may propose it at the next height.
	PayoutTxid string `json:"payout_txid,omitempty"`
	Shares     int    `json:"shares,omitempty"`
	Proposer   string `json:"proposer,omitempty"`
}

// PayoutView is a withdrawal's payout proposal with its shares.
type PayoutView struct {
	ID       uint64            `json:"id"`
	Txid     string            `json:"txid"`
	Tx       string            `json:"tx"` // hex, unsigned
	Inputs   []PayoutInputView `json:"inputs"`
	Proposer address.Address   `json:"proposer"`
	Height   int64             `json:"height"`
	Signers  []address.Address `json:"signers"`
	// Sigs[i] are Signers[i]'s signatures, hex, one per input.
	Sigs     [][]string `json:"signatures"`
	Complete bool       `json:"complete"` // Threshold shares: ready to broadcast
}

// PayoutInputView is what an input of a proposal spends.
type PayoutInputView struct {
	Outpoint string `json:"outpoint"`
	Amount   uint64 `json:"amount_sat"`
	Chain    uint32 `json:"chain"`
	Index    uint32 `json:"index"`
}

// UTXOView is an output the bridge holds, as the chain knows it.
type UTXOView struct {
	Outpoint string `json:"outpoint"`
	Amount   uint64 `json:"amount_sat"`
	Chain    uint32 `json:"chain"`
	Index    uint32 `json:"index"`
	// LockedBy is the withdrawal whose payout proposal spends it.
	LockedBy *uint64 `json:"locked_by,omitempty"`
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/bridge", Summary: "the Bitcoin bridge: parameters, btc supply, minted, withdrawn, halt", Handle: k.qBridge},
		{Method: "GET", Path: "/api/v1/bridge/addresses", Summary: "deposit addresses in index order (?from=index&limit=)", Handle: k.qAddresses},
		{Method: "GET", Path: "/api/v1/bridge/addresses/{account}", Summary: "an account's Bitcoin deposit address", Handle: k.qAddress},
		{Method: "GET", Path: "/api/v1/bridge/deposits/{outpoint}", Summary: "a deposit (txid:vout) and its attestations", Handle: k.qDeposit},
		{Method: "GET", Path: "/api/v1/bridge/deposits", Summary: "deposits in outpoint order (?after=txid:vout&limit=&account=)", Handle: k.qDeposits},
		{Method: "GET", Path: "/api/v1/bridge/withdrawals/{id}", Summary: "a withdrawal", Handle: k.qWithdrawal},
		{Method: "GET", Path: "/api/v1/bridge/withdrawals", Summary: "withdrawals by id (?status=pending&from=id&limit=&owner=)", Handle: k.qWithdrawals},
		{Method: "GET", Path: "/api/v1/bridge/withdrawals/{id}/payout", Summary: "a withdrawal's payout proposal and its operators' signature shares", Handle: k.qPayout},
		{Method: "GET", Path: "/api/v1/bridge/utxos", Summary: "the Bitcoin outputs the bridge holds, in outpoint order (?after=txid:vout&limit=)", Handle: k.qUTXOs},
	}
}

func (k *Keeper) qBridge(q module.Query, _ module.Request) (any, error) {
	p, err := k.Params(q.State)
	if err != nil {
		return nil, err
	}
	t, err := k.totals(q.State)
	if err != nil {
		return nil, err
	}
	sup, err := k.bank.SupplyOf(q.State, Denom)
	if err != nil {
		return nil, err
	}
	v := View{Params: p, Enabled: p.Enabled(), Supply: uint64(sup), Minted: t.Minted, Withdrawn: t.Withdrawn, PaidOut: t.PaidOut,
		Pending: t.Withdrawn - t.PaidOut, Deposits: t.Deposits, Addresses: t.Next}
	if p.Enabled() {
		if c, err := p.ChangeAddress(); err == nil {
			v.Change = c.EncodeAddress()
		}
	}
	h, err := k.Halted(q.State)
	if err != nil {
		return nil, err
	}
	if h != nil {
		by, _ := address.FromBytes(h.By)
		v.Halted = &HaltView{Reason: h.Reason, By: by, Height: h.Height}
	}
	return v, nil
}

func limitParam(in module.Request) (int, error) {
	s := in.Param("limit")
	if s == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPage {
		return 0, fmt.Errorf("%w: limit %q (1 to %d)", ErrQuery, s, MaxPage)
	}
	return n, nil
}

func (k *Keeper) qAddresses(q module.Query, in module.Request) (any, error) {
	limit, err := limitParam(in)
	if err != nil {
		return nil, err
	}
	from := uint64(0)
	if s := in.Param("from"); s != "" {
		if from, err = strconv.ParseUint(s, 10, 32); err != nil {
			return nil, fmt.Errorf("%w: from %q", ErrQuery, s)
		}
	}
	out := []AddressView{}
	var ierr error
	err = state.IterateFrom(q.State, []byte(pIdx), keyIdx(uint32(from)), func(_, v []byte) bool {
		a, err := address.FromBytes(v)
		if err != nil {
			ierr = err
			return false
		}
		as, _, err := read[Assigned](q.State, keyAcct(a))
		if err != nil {
			ierr = err
			return false
		}
		out = append(out, AddressView{Account: a, Index: as.Index, Address: as.Address})
		return len(out) < limit
	})
	if err == nil {
		err = ierr
	}
	return out, err
}

func (k *Keeper) qAddress(q module.Query, in module.Request) (any, error) {
	a, err := address.Parse(in.PathValue("account"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errs.ErrInvalidAddress, err)
	}
	as, ok, err := read[Assigned](q.State, keyAcct(a))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoAddress, a)
	}
	return AddressView{Account: a, Index: as.Index, Address: as.Address}, nil
}

// ParseOutpoint reads "txid:vout" (txid as Bitcoin shows it) into the
// internal byte order and the output index.
func ParseOutpoint(s string) ([32]byte, uint32, error) {
	var id [32]byte
	h, v, ok := strings.Cut(s, ":")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != 32 {
		return id, 0, fmt.Errorf("%w: outpoint %q (txid:vout)", ErrQuery, s)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return id, 0, fmt.Errorf("%w: outpoint %q (txid:vout)", ErrQuery, s)
	}
	copy(id[:], reverse(b))
	return id, uint32(n), nil
}

func depositView(key, raw []byte) (DepositView, error) {
	var d Deposit
	if err := tx.Unmarshal(raw, &d); err != nil {
		return DepositView{}, err
	}
	id := key[len(pDep):]
	acct, err := address.FromBytes(d.Account)
	if err != nil {
		return DepositView{}, err
	}
	v := DepositView{Outpoint: fmt.Sprintf("%x:%d", reverse(id[:32]), binary.BigEndian.Uint32(id[32:])), Account: acct, Address: d.Address,
		Amount: d.Amount, BlockHash: fmt.Sprintf("%x", reverse(d.BlockHash)), BlockH: d.BlockH, Minted: d.Minted, Attesters: []address.Address{}}
	for _, a := range d.Attesters {
		if x, err := address.FromBytes(a); err == nil {
			v.Attesters = append(v.Attesters, x)
		}
	}
	return v, nil
}

func (k *Keeper) qDeposit(q module.Query, in module.Request) (any, error) {
	id, vout, err := ParseOutpoint(in.PathValue("outpoint"))
	if err != nil {
		return nil, err
	}
	key := keyDep(id[:], vout)
	raw, err := q.State.Get(key)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoDeposit, in.PathValue("outpoint"))
	}
	return depositView(key, raw)
}

func (k *Keeper) qDeposits(q module.Query, in module.Request) (any, error) {
	limit, err := limitParam(in)
	if err != nil {
		return nil, err
	}
	start := []byte(pDep)
	if s := in.Param("after"); s != "" {
		id, vout, err := ParseOutpoint(s)
		if err != nil {
			return nil, err
		}
		start = append(keyDep(id[:], vout), 0)
	}
	var acct *address.Address
	if s := in.Param("account"); s != "" {
		a, err := address.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errs.ErrInvalidAddress, err)
		}
		acct = &a
	}
	out := []DepositView{}
	var ierr error
	if acct != nil {
		// the account's index, not every deposit
		prefix := append([]byte(pAD), acct[:]...)
		from := prefix
		if len(start) > len(pDep) {
			from = append(bytesClone(prefix), start[len(pDep):]...)
		}
		err = state.IterateFrom(q.State, prefix, from, func(key, _ []byte) bool {
			dk := append([]byte(pDep), key[len(prefix):]...)
			raw, err := q.State.Get(dk)
			if err == nil && raw == nil {
				err = fmt.Errorf("deposit index names %x, which is missing", dk)
			}
			var v DepositView
			if err == nil {
				v, err = depositView(dk, raw)
			}
			if err != nil {
				ierr = err
				return false
			}
			out = append(out, v)
			return len(out) < limit
		})
		if err == nil {
			err = ierr
		}
		return out, err
	}
	err = state.IterateFrom(q.State, []byte(pDep), start, func(key, raw []byte) bool {
		v, err := depositView(key, raw)
		if err != nil {
			ierr = err
			return false
		}
		out = append(out, v)
		return len(out) < limit
	})
	if err == nil {
		err = ierr
	}
	return out, err
}

// withdrawalView adds the payout's progress to the record.
func (k *Keeper) withdrawalView(q module.Query, id uint64, w Withdrawal) (WithdrawalView, error) {
	v := withdrawalRecord(id, w)
	if w.PaidTx != nil {
		return v, nil
	}
	pr, ok, err := read[Proposal](q.State, keyProp(id))
	if err != nil {
		return v, err
	}
	if ok {
		t, err := DecodePayoutTx(pr.Tx)
		if err != nil {
			return v, err
		}
		v.PayoutTxid, v.Shares = t.TxHash().String(), len(pr.Shares)
		return v, nil
	}
	p, err := k.Params(q.State)
	if err != nil {
		return v, err
	}
	v.Proposer = p.Proposer(id, w.Height, q.Height+1)
	return v, nil
}

func withdrawalRecord(id uint64, w Withdrawal) WithdrawalView {
	owner, _ := address.FromBytes(w.Owner)
	v := WithdrawalView{ID: id, Owner: owner, To: w.To, Amount: w.Amount, Fee: w.Fee, Payout: w.Amount - w.Fee, Height: w.Height, Status: "pending"}
	if w.PaidTx != nil {
		by, _ := address.FromBytes(w.PaidBy)
		v.Status, v.PaidTx, v.PaidBy, v.PaidAt = "paid", fmt.Sprintf("%x", reverse(w.PaidTx)), &by, w.PaidAt
	}
	return v
}

func (k *Keeper) qWithdrawal(q module.Query, in module.Request) (any, error) {
	id, err := strconv.ParseUint(in.PathValue("id"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: withdrawal id %q", ErrQuery, in.PathValue("id"))
	}
	w, ok, err := read[Withdrawal](q.State, keyWD(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoWithdrawal, id)
	}
	return k.withdrawalView(q, id, w)
}

func (k *Keeper) qPayout(q module.Query, in module.Request) (any, error) {
	id, err := strconv.ParseUint(in.PathValue("id"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: withdrawal id %q", ErrQuery, in.PathValue("id"))
	}
	pr, ok, err := read[Proposal](q.State, keyProp(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: withdrawal %d", ErrNoProposal, id)
	}
	p, err := k.Params(q.State)
	if err != nil {
		return nil, err
	}
	t, err := DecodePayoutTx(pr.Tx)
	if err != nil {
		return nil, err
	}
	by, _ := address.FromBytes(pr.Proposer)
	v := PayoutView{ID: id, Txid: t.TxHash().String(), Tx: hex.EncodeToString(pr.Tx), Proposer: by, Height: pr.Height,
		Signers: []address.Address{}, Sigs: [][]string{}, Complete: len(pr.Shares) >= p.Threshold}
	for i, in := range pr.Inputs {
		v.Inputs = append(v.Inputs, PayoutInputView{Outpoint: t.TxIn[i].PreviousOutPoint.String(), Amount: in.Amount, Chain: in.Chain, Index: in.Index})
	}
	for _, s := range pr.Shares {
		a, _ := address.FromBytes(s.Signer)
		var sigs []string
		for _, x := range s.Sigs {
			sigs = append(sigs, hex.EncodeToString(x))
		}
		v.Signers, v.Sigs = append(v.Signers, a), append(v.Sigs, sigs)
	}
	return v, nil
}

func (k *Keeper) qUTXOs(q module.Query, in module.Request) (any, error) {
	limit, err := limitParam(in)
	if err != nil {
		return nil, err
	}
	start := []byte(pUTXO)
	if s := in.Param("after"); s != "" {
		id, vout, err := ParseOutpoint(s)
		if err != nil {
			return nil, err
		}
		start = append(keyUTXO(id[:], vout), 0)
	}
	out := []UTXOView{}
	var ierr error
	err = state.IterateFrom(q.State, []byte(pUTXO), start, func(key, raw []byte) bool {
		var u UTXO
		if err := tx.Unmarshal(raw, &u); err != nil {
			ierr = err
			return false
		}
		op := key[len(pUTXO):]
		v := UTXOView{Outpoint: fmt.Sprintf("%x:%d", reverse(op[:32]), binary.BigEndian.Uint32(op[32:])), Amount: u.Amount, Chain: u.Chain, Index: u.Index}
		if u.Lock != 0 {
			l := u.Lock - 1
			v.LockedBy = &l
		}
		out = append(out, v)
		return len(out) < limit
	})
	if err == nil {
		err = ierr
	}
	return out, err
}

func (k *Keeper) qWithdrawals(q module.Query, in module.Request) (any, error) {
	limit, err := limitParam(in)
	if err != nil {
		return nil, err
	}
	from := uint64(0)
	if s := in.Param("from"); s != "" {
		if from, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: from %q", ErrQuery, s)
		}
	}
	var owner *address.Address
	if s := in.Param("owner"); s != "" {
		a, err := address.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errs.ErrInvalidAddress, err)
		}
		owner = &a
	}
	pending := false
	switch in.Param("status") {
	case "", "all":
	case "pending":
		pending = true
	default:
		return nil, fmt.Errorf("%w: status %q (pending or all)", ErrQuery, in.Param("status"))
	}
	prefix := []byte(pWD)
	if pending {
		prefix = []byte(pWDP)
	}
	out := []WithdrawalView{}
	var ierr error
	err = state.IterateFrom(q.State, prefix, binary.BigEndian.AppendUint64(bytesClone(prefix), from), func(key, raw []byte) bool {
		id := binary.BigEndian.Uint64(key[len(prefix):])
		w, ok, err := read[Withdrawal](q.State, keyWD(id))
		if err != nil || !ok {
			ierr = fmt.Errorf("withdrawal %d: %v", id, err)
			return false
		}
		if owner == nil || string(w.Owner) == string(owner[:]) {
			v, err := k.withdrawalView(q, id, w)
			if err != nil {
				ierr = err
				return false
			}
			out = append(out, v)
		}
		return len(out) < limit
	})
	if err == nil {
		err = ierr
	}
	return out, err
}

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }

// Query fetches GET /api/v1/bridge.
func Query(ctx context.Context, g module.Getter) (View, error) {
	var v View
	return v, g.GetJSON(ctx, "/api/v1/bridge", &v)
}

// QueryAddress fetches an account's deposit address (ErrNoAddress's code
// when it has none).
func QueryAddress(ctx context.Context, g module.Getter, a address.Address) (AddressView, error) {
	var v AddressView
	return v, g.GetJSON(ctx, "/api/v1/bridge/addresses/"+a.String(), &v)
}

// QueryAddresses fetches up to limit deposit addresses from index from.
func QueryAddresses(ctx context.Context, g module.Getter, from uint32, limit int) ([]AddressView, error) {
	var v []AddressView
	return v, g.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/addresses?from=%d&limit=%d", from, limit), &v)
}

// QueryDeposit fetches a deposit by outpoint ("txid:vout").
func QueryDeposit(ctx context.Context, g module.Getter, outpoint string) (DepositView, error) {
	var v DepositView
	return v, g.GetJSON(ctx, "/api/v1/bridge/deposits/"+url.PathEscape(outpoint), &v)
}

// QueryDeposits fetches up to limit deposits after outpoint ("" from the first).
func QueryDeposits(ctx context.Context, g module.Getter, after string, limit int) ([]DepositView, error) {
	var v []DepositView
	return v, g.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/deposits?after=%s&limit=%d", url.QueryEscape(after), limit), &v)
}

// QueryWithdrawal fetches a withdrawal.
func QueryWithdrawal(ctx context.Context, g module.Getter, id uint64) (WithdrawalView, error) {
	var v WithdrawalView
	return v, g.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/withdrawals/%d", id), &v)
}

// QueryPending fetches up to limit pending withdrawals from id from.
func QueryPending(ctx context.Context, g module.Getter, from uint64, limit int) ([]WithdrawalView, error) {
	var v []WithdrawalView
	return v, g.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/withdrawals?status=pending&from=%d&limit=%d", from, limit), &v)
}

// QueryPayout fetches withdrawal id's payout proposal (ErrNoProposal's
// code when there is none).
func QueryPayout(ctx context.Context, g module.Getter, id uint64) (PayoutView, error) {
	var v PayoutView
	return v, g.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/withdrawals/%d/payout", id), &v)
}

// QueryUTXOs fetches up to limit of the bridge's outputs after outpoint
// ("" from the first).
func QueryUTXOs(ctx context.Context, g module.Getter, after string, limit int) ([]UTXOView, error) {
	var v []UTXOView
	return v, g.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/utxos?after=%s&limit=%d", url.QueryEscape(after), limit), &v)
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeAddress:
		return map[string]any{}, nil
	case TypeAttest:
		var m MsgAttest
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"outpoint": fmt.Sprintf("%x:%d", reverse(m.Txid), m.Vout), "address": m.Address, "amount_sat": m.Amount,
			"block_hash": fmt.Sprintf("%x", reverse(m.BlockHash)), "block_height": m.BlockH}, nil
	case TypeWithdraw:
		var m MsgWithdraw
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"to": m.To, "amount_sat": m.Amount}, nil
	case TypePaid:
		var m MsgPaid
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"id": m.ID, "txid": fmt.Sprintf("%x", reverse(m.Txid))}, nil
	case TypeHalt:
		var m MsgHalt
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"reason": m.Reason}, nil
	case TypeProposePayout:
		var m MsgProposePayout
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		v := map[string]any{"id": m.ID, "tx_bytes": len(m.Tx)}
		if t, err := DecodePayoutTx(m.Tx); err == nil {
			v["txid"] = t.TxHash().String()
			v["inputs"], v["outputs"] = len(t.TxIn), len(t.TxOut)
		}
		return v, nil
	case TypeSignPayout:
		var m MsgSignPayout
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"id": m.ID, "txid": fmt.Sprintf("%x", reverse(m.Txid)), "signatures": len(m.Sigs)}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

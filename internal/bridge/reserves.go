package bridge

import (
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/aitbc/aitbc/internal/chain/module"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
)

// UTXOReader is what a reserves check needs of a Bitcoin node.
type UTXOReader interface {
	GetTxOut(hash *chainhash.Hash, index uint32, mempool bool) (*btcjson.GetTxOutResult, error)
	GetRawTransactionVerbose(hash *chainhash.Hash) (*btcjson.TxRawResult, error)
}

// ReserveReport compares the bitcoin the bridge holds with the btc on AITBC.
type ReserveReport struct {
	Network string `json:"network"`
	// ReserveSat is the sum of the unspent outputs the chain's records
	// point at: every minted deposit and the change of every paid
	// withdrawal, as the Bitcoin node sees them now (mempool spends count
	// as spent).
	ReserveSat int64 `json:"reserve_sat"`
	Outputs    int   `json:"outputs"`
	// SupplySat is btc on AITBC; PendingSat of it is already burned by
	// withdrawals not yet paid, and still held on Bitcoin.
	SupplySat  uint64 `json:"btc_supply_sat"`
	PendingSat uint64 `json:"pending_withdrawals_sat"`
	// OK: the reserve covers the supply and the pending withdrawals.
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Halted string `json:"halted,omitempty"`
}

// Reserves checks the bridge's reserves from the chain's records and a
// Bitcoin node alone (not the daemon's own books): an auditor's check.
func Reserves(ctx context.Context, chain module.Getter, btc UTXOReader) (ReserveReport, error) {
	v, err := cb.Query(ctx, chain)
	if err != nil {
		return ReserveReport{}, err
	}
	if !v.Enabled {
		return ReserveReport{}, cb.ErrDisabled
	}
	r := ReserveReport{Network: v.Params.Network, SupplySat: v.Supply, PendingSat: v.Pending}
	if v.Halted != nil {
		r.Halted = v.Halted.Reason
	}
	add := func(hash *chainhash.Hash, vout uint32) error {
		o, err := btc.GetTxOut(hash, vout, true)
		if err != nil {
			return fmt.Errorf("bitcoin gettxout %s:%d: %w", hash, vout, err)
		}
		if o == nil {
			return nil
		}
		amt, err := btcutil.NewAmount(o.Value)
		if err != nil {
			return err
		}
		r.ReserveSat += int64(amt)
		r.Outputs++
		return nil
	}
	after := ""
	for {
		page, err := cb.QueryDeposits(ctx, chain, after, cb.MaxPage)
		if err != nil {
			return r, err
		}
		for _, d := range page {
			after = d.Outpoint
			if d.Minted == 0 {
				continue
			}
			id, vout, err := cb.ParseOutpoint(d.Outpoint)
			if err != nil {
				return r, err
			}
			h := chainhash.Hash(id)
			if err := add(&h, vout); err != nil {
				return r, err
			}
		}
		if len(page) < cb.MaxPage {
			break
		}
	}
	change := v.Change
	var from uint64
	for {
		var page []cb.WithdrawalView
		if err := chain.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/withdrawals?status=all&from=%d&limit=%d", from, cb.MaxPage), &page); err != nil {
			return r, err
		}
		for _, w := range page {
			from = w.ID + 1
			if w.PaidTx == "" {
				continue
			}
			h, err := chainhash.NewHashFromStr(w.PaidTx)
			if err != nil {
				return r, err
			}
			t, err := btc.GetRawTransactionVerbose(h)
			if err != nil {
				return r, fmt.Errorf("bitcoin payment %s of withdrawal %d: %w", w.PaidTx, w.ID, err)
			}
			for _, o := range t.Vout {
				if len(o.ScriptPubKey.Address) > 0 && o.ScriptPubKey.Address == change {
					if err := add(h, o.N); err != nil {
						return r, err
					}
				}
			}
		}
		if len(page) < cb.MaxPage {
			break
		}
	}
	need := r.SupplySat + r.PendingSat
	r.OK = r.ReserveSat >= 0 && uint64(r.ReserveSat) >= need && r.Halted == ""
	r.Detail = fmt.Sprintf("%d sat held in %d outputs against %d sat of btc and %d sat of withdrawals being paid", r.ReserveSat, r.Outputs, r.SupplySat, r.PendingSat)
	return r, nil
}

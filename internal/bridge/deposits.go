package bridge

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
)

// BlockReader is what following an address's deposits needs of a Bitcoin
// node.
type BlockReader interface {
	GetBlockCount() (int64, error)
	GetBlockHash(height int64) (*chainhash.Hash, error)
	GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error)
	GetRawMempool() ([]*chainhash.Hash, error)
	GetRawTransaction(hash *chainhash.Hash) (*btcutil.Tx, error)
}

// DepositStatus is one deposit to an account's address and how far along
// it is: in the mempool, confirming (Confirmations of Needed), minted, or
// below the bridge's minimum (never minted).
type DepositStatus struct {
	Outpoint      string `json:"outpoint"`
	Amount        uint64 `json:"amount_sat"`
	Confirmations int64  `json:"confirmations"`
	Needed        int64  `json:"confirmations_needed"`
	Status        string `json:"status"` // mempool | confirming | minted | below_minimum
	MintedHeight  int64  `json:"minted_height,omitempty"`
}

// MaxWatchBlocks bounds how far back AccountDeposits reads Bitcoin blocks.
const MaxWatchBlocks = 1000

// AccountDeposits lists account's deposits: the chain's records (minted or
// attested), and, when btc is not nil, outputs to its address in Bitcoin's
// mempool and its last `window` blocks that the chain has not minted yet.
func AccountDeposits(ctx context.Context, chain module.Getter, btc BlockReader, account address.Address, window int64) ([]DepositStatus, error) {
	v, err := cb.Query(ctx, chain)
	if err != nil {
		return nil, err
	}
	a, err := cb.QueryAddress(ctx, chain, account)
	if err != nil {
		return nil, err
	}
	need := v.Params.Confirmations
	byOutpoint := map[string]*DepositStatus{}
	var recs []cb.DepositView
	if err := chain.GetJSON(ctx, fmt.Sprintf("/api/v1/bridge/deposits?account=%s&limit=%d", account, cb.MaxPage), &recs); err != nil {
		return nil, err
	}
	for _, d := range recs {
		s := &DepositStatus{Outpoint: d.Outpoint, Amount: d.Amount, Needed: need, Status: "confirming", MintedHeight: d.Minted}
		if d.Minted != 0 {
			s.Status = "minted"
		}
		byOutpoint[d.Outpoint] = s
	}
	if btc != nil {
		net, err := cb.NetParams(v.Params.Network)
		if err != nil {
			return nil, err
		}
		addr, err := btcutil.DecodeAddress(a.Address, net)
		if err != nil {
			return nil, err
		}
		script, err := txscript.PayToAddrScript(addr)
		if err != nil {
			return nil, err
		}
		want := hex.EncodeToString(script)
		see := func(t *wire.MsgTx, confs int64) {
			for i, o := range t.TxOut {
				if hex.EncodeToString(o.PkScript) != want {
					continue
				}
				op := fmt.Sprintf("%s:%d", t.TxHash(), i)
				s, ok := byOutpoint[op]
				if !ok {
					s = &DepositStatus{Outpoint: op, Amount: uint64(o.Value), Needed: need}
					byOutpoint[op] = s
				}
				s.Confirmations = confs
				switch {
				case s.Status == "minted":
				case uint64(o.Value) < v.Params.MinDepositSat:
					s.Status = "below_minimum"
				case confs == 0:
					s.Status = "mempool"
				default:
					s.Status = "confirming"
				}
			}
		}
		pool, err := btc.GetRawMempool()
		if err != nil {
			return nil, fmt.Errorf("bitcoin mempool: %w", err)
		}
		for _, h := range pool {
			t, err := btc.GetRawTransaction(h)
			if err != nil {
				continue // mined or dropped since the list was taken
			}
			see(t.MsgTx(), 0)
		}
		tip, err := btc.GetBlockCount()
		if err != nil {
			return nil, fmt.Errorf("bitcoin: %w", err)
		}
		window = min(max(window, need+6), MaxWatchBlocks)
		for h := max(1, tip-window+1); h <= tip; h++ {
			hash, err := btc.GetBlockHash(h)
			if err != nil {
				return nil, err
			}
			b, err := btc.GetBlock(hash)
			if err != nil {
				return nil, err
			}
			for _, t := range b.Transactions {
				see(t, tip-h+1)
			}
		}
	}
	out := make([]DepositStatus, 0, len(byOutpoint))
	for _, s := range byOutpoint {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Outpoint < out[j].Outpoint })
	return out, nil
}

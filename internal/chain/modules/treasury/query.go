package treasury

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// MaxSpendsShown bounds the spends GET /api/v1/treasury lists (the newest).
const MaxSpendsShown = 100

// SpendView is one spend as the API shows it.
type SpendView struct {
	ID     uint64          `json:"id"`
	Height int64           `json:"height"`
	To     address.Address `json:"to"`
	Amount coin.Amount     `json:"amount"`
	Memo   string          `json:"memo,omitempty"`
	TxHash string          `json:"tx_hash"`
}

// View is GET /api/v1/treasury.
type View struct {
	Height  int64           `json:"height"`
	Address address.Address `json:"address"`
	Balance coin.Amount     `json:"balance"`
	Admin   string          `json:"admin,omitempty"` // "": the treasury cannot spend
	Spent   coin.Amount     `json:"spent"`
	Count   uint64          `json:"spends_total"`
	Spends  []SpendView     `json:"spends"` // newest first, at most MaxSpendsShown
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{{Method: "GET", Path: "/api/v1/treasury", Summary: "the treasury: balance, admin, total spent and the latest spends", Handle: k.query}}
}

func (k *Keeper) query(q module.Query, _ module.Request) (any, error) {
	p, err := k.Params(q.State)
	if err != nil {
		return nil, err
	}
	v := View{Height: q.Height, Address: k.treasury.Treasury(), Admin: p.Admin, Spends: []SpendView{}}
	if v.Balance, err = k.bank.Balance(q.State, v.Address); err != nil {
		return nil, err
	}
	if v.Spent, err = k.treasury.TreasurySpent(q.State); err != nil {
		return nil, err
	}
	if v.Count, err = getUint(q.State, keySeq); err != nil {
		return nil, err
	}
	var bad error
	err = q.State.Iterate(SpendPrefix, true, func(key, val []byte) bool {
		var s Spend
		if bad = tx.Unmarshal(val, &s); bad != nil {
			return false
		}
		to, _ := address.FromBytes(s.To)
		v.Spends = append(v.Spends, SpendView{ID: beUint(key[len(SpendPrefix):]), Height: s.Height, To: to, Amount: s.Amount, Memo: s.Memo, TxHash: fmt.Sprintf("%X", s.TxHash)})
		return len(v.Spends) < MaxSpendsShown
	})
	if err == nil {
		err = bad
	}
	return v, err
}

func beUint(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

// Query fetches the treasury view from a node.
func Query(ctx context.Context, g module.Getter) (View, error) {
	var out View
	return out, g.GetJSON(ctx, "/api/v1/treasury", &out)
}

// ExportGenesis implements module.Exporter: the parameters and the log.
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	if err := module.ImportPrefix(ctx, raw, Name+"/", module.CheckParams(keyParams, Params.Validate)); err != nil {
		return fmt.Errorf("treasury: %w", err)
	}
	return nil
}

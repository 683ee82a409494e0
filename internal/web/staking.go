package web

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/rpc"
)

// stakeSnapshot is the staking module's operators, read once a block.
type stakeSnapshot struct {
	Params staking.Params
	Ops    map[string]staking.OperatorView
	Total  coin.Amount // bonded stake of active operators
}

// stakeSnap reads every operator once a block; a node without the
// staking module answers an error the pages show as a note.
func (s *Server) stakeSnap(ctx context.Context) (stakeSnapshot, error) {
	_, _, height := s.feed.latest(0, 0)
	return s.stakes.get(ctx, "operators", height, func(ctx context.Context) (stakeSnapshot, error) {
		p, err := staking.QueryParams(ctx, s.cfg.Node)
		if err != nil {
			return stakeSnapshot{}, err
		}
		ops, err := staking.QueryOperators(ctx, s.cfg.Node)
		if err != nil {
			return stakeSnapshot{}, err
		}
		out := stakeSnapshot{Params: p, Ops: map[string]staking.OperatorView{}, Total: ops.TotalBonded}
		for _, o := range ops.Operators {
			out.Ops[o.Address.String()] = o
		}
		return out, nil
	})
}

// Staker is one staker of an operator as the staking module holds it.
type Staker struct {
	Address    string                  `json:"address"`
	Amount     coin.Amount             `json:"amount"`     // bonded to the operator
	Unbonding  coin.Amount             `json:"unbonding"`  // on its way back from the operator
	Unbondings []staking.UnbondingView `json:"unbondings"` // from this operator only
}

// OperatorStake is an operator's stake: the module's record and its
// stakers. The module keeps no list of an operator's stakers, so they are
// the senders of stake and unstake messages to it among its newest
// transactions, each read back from the module; Unlisted is the part of
// its bonded stake that comes from stakers beyond that history.
type OperatorStake struct {
	Operator staking.OperatorView `json:"operator"`
	Stakers  []Staker             `json:"stakers"`
	Unlisted coin.Amount          `json:"unlisted_bonded"`
	History  int                  `json:"history_read"` // transactions of its history read
}

// Commission shows the operator's commission as a percentage.
func (o OperatorStake) Commission() string { return bpsPct(o.Operator.CommissionBps) }

// NextCommission is the announced commission, or "".
func (o OperatorStake) NextCommission() string {
	if o.Operator.NextCommission == nil {
		return ""
	}
	return bpsPct(*o.Operator.NextCommission)
}

func bpsPct(bps uint64) string {
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%d.%02d", bps/100, bps%100), "0"), ".")
	return s + "%"
}

// stakeView is what the address page and the miner dashboard show of
// staking: the operator's stake when the address is one, and the
// address's own delegations and unbonding.
type stakeView struct {
	Op       *OperatorStake
	Own      *staking.Delegator
	Unbond   int64  // the unbonding period in blocks
	Err      string // why the staking module could not be read
	Operator bool   // the address is an operator
}

// readStake reads the staking module's view of a: its operator record
// with its stakers found in history (its newest transactions), and its
// own delegations. A failure is a note on the page, not a failed page.
func (s *Server) readStake(ctx context.Context, a address.Address, history []rpc.Transaction) stakeView {
	var v stakeView
	snap, err := s.stakeSnap(ctx)
	if err != nil {
		_, _, v.Err = classify(err)
		return v
	}
	v.Unbond = snap.Params.UnbondingBlocks
	own, err := staking.QueryDelegator(ctx, s.cfg.Node, a)
	if err != nil {
		_, _, v.Err = classify(err)
		return v
	}
	v.Own = &own
	if o, ok := snap.Ops[a.String()]; ok {
		v.Operator = true
		op, err := s.stakersOf(ctx, o, history)
		if err != nil {
			_, _, v.Err = classify(err)
			return v
		}
		v.Op = &op
	}
	return v
}

func (s *Server) stakersOf(ctx context.Context, o staking.OperatorView, history []rpc.Transaction) (OperatorStake, error) {
	out := OperatorStake{Operator: o, Stakers: []Staker{}, History: len(history)}
	seen := map[address.Address]bool{}
	var cands []address.Address
	for _, t := range history {
		if t.Status != "committed" || (t.Type != staking.TypeStake && t.Type != staking.TypeUnstake) || seen[t.From] {
			continue
		}
		if op, _ := bodyMap(t.Body)["operator"].(string); op != o.Address.String() {
			continue
		}
		seen[t.From] = true
		cands = append(cands, t.From)
	}
	var listed coin.Amount
	for _, c := range cands {
		d, err := staking.QueryDelegator(ctx, s.cfg.Node, c)
		if err != nil {
			return out, err
		}
		st := Staker{Address: c.String(), Unbondings: []staking.UnbondingView{}}
		for _, x := range d.Delegations {
			if x.Operator == o.Address {
				st.Amount += x.Amount
			}
		}
		for _, u := range d.Unbondings {
			if u.Operator == o.Address {
				st.Unbonding += u.Amount
				st.Unbondings = append(st.Unbondings, u)
			}
		}
		if st.Amount == 0 && st.Unbonding == 0 {
			continue
		}
		listed += st.Amount
		out.Stakers = append(out.Stakers, st)
	}
	slices.SortStableFunc(out.Stakers, func(a, b Staker) int {
		if a.Amount != b.Amount {
			return cmpDesc(uint64(a.Amount), uint64(b.Amount))
		}
		return strings.Compare(a.Address, b.Address)
	})
	if o.Bonded > listed {
		out.Unlisted = o.Bonded - listed
	}
	return out, nil
}

package multisig

import (
	"context"
	"fmt"
	"net/url"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// ProposalView is one proposal as GET /api/v1/multisig/{name} shows it.
type ProposalView struct {
	ID        uint64            `json:"id"`
	Type      string            `json:"type"`
	Body      any               `json:"body,omitempty"`
	Proposer  address.Address   `json:"proposer"`
	Approvals []address.Address `json:"approvals"`
	Expires   int64             `json:"expires_height"`
	Executed  int64             `json:"executed_height,omitempty"`
	Status    string            `json:"status"` // open, executed, expired
}

// View is GET /api/v1/multisig/{name}.
type View struct {
	Name      string            `json:"name"`
	Address   address.Address   `json:"address"`
	Threshold uint32            `json:"threshold"`
	Signers   []address.Address `json:"signers"`
	Balance   coin.Amount       `json:"balance"`
	Height    int64             `json:"height"`
	Proposals []ProposalView    `json:"proposals"`
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/multisig/{name}", Summary: "a multisig account: threshold, signers, balance and its proposals", Handle: k.query},
	}
}

func (k *Keeper) query(q module.Query, in module.Request) (any, error) {
	name := in.PathValue("name")
	if err := CheckName(name); err != nil {
		return nil, err
	}
	a, err := k.GetAccount(q.State, name)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	v := View{Name: name, Address: Address(name), Threshold: a.Threshold, Height: q.Height, Proposals: []ProposalView{}}
	for _, s := range a.Signers {
		x, _ := address.FromBytes(s)
		v.Signers = append(v.Signers, x)
	}
	if v.Balance, err = k.bank.Balance(q.State, v.Address); err != nil {
		return nil, err
	}
	for id := uint64(0); id < a.Next; id++ {
		pr, err := k.GetProposal(q.State, name, id)
		if err != nil || pr == nil {
			return nil, err
		}
		pv := ProposalView{ID: id, Type: pr.Msg.Type, Expires: pr.Expires, Executed: pr.Executed, Status: "open"}
		pv.Proposer, _ = address.FromBytes(pr.Proposer)
		for _, s := range pr.Approvals {
			x, _ := address.FromBytes(s)
			pv.Approvals = append(pv.Approvals, x)
		}
		switch {
		case pr.Executed > 0:
			pv.Status = "executed"
		case q.Height > pr.Expires:
			pv.Status = "expired"
		}
		v.Proposals = append(v.Proposals, pv)
	}
	return v, nil
}

// Query fetches a multisig account from a node.
func Query(ctx context.Context, g module.Getter, name string) (View, error) {
	var out View
	return out, g.GetJSON(ctx, "/api/v1/multisig/"+url.PathEscape(name), &out)
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeCreate:
		var m MsgCreate
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		var signers []address.Address
		for _, s := range m.Signers {
			x, _ := address.FromBytes(s)
			signers = append(signers, x)
		}
		return map[string]any{"name": m.Name, "address": Address(m.Name), "threshold": m.Threshold, "signers": signers}, nil
	case TypePropose:
		var m MsgPropose
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"name": m.Name, "type": m.Msg.Type}, nil
	case TypeSign:
		var m MsgSign
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"name": m.Name, "proposal": m.ID}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

// Invariants implements module.Invariants: every executed proposal had
// its account's threshold of distinct approvals.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{{Name: "multisig/threshold", Check: k.checkThreshold}}
}

func (k *Keeper) checkThreshold(q module.Query) module.Finding {
	n, bad := 0, 0
	thresholds := map[string]uint32{}
	err := q.State.Iterate([]byte("multisig/a/"), false, func(key, v []byte) bool {
		var a Account
		if tx.Unmarshal(v, &a) == nil {
			thresholds[string(key[len("multisig/a/"):])] = a.Threshold
		}
		return true
	})
	if err == nil {
		err = q.State.Iterate([]byte("multisig/p/"), false, func(key, v []byte) bool {
			rest := string(key[len("multisig/p/"):])
			name := rest[:max(0, len(rest)-9)]
			var pr Proposal
			if tx.Unmarshal(v, &pr) != nil {
				bad++
				return true
			}
			if pr.Executed > 0 {
				n++
				seen := map[string]bool{}
				for _, s := range pr.Approvals {
					seen[string(s)] = true
				}
				if uint32(len(seen)) < thresholds[name] || len(seen) != len(pr.Approvals) {
					bad++
				}
			}
			return true
		})
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Finding{Broken: bad > 0, Detail: fmt.Sprintf("%d executed proposals, %d without their threshold of distinct approvals", n, bad),
		Figures: map[string]string{"executed": fmt.Sprint(n), "bad": fmt.Sprint(bad)}}
}

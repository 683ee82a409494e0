package agents

import (
	"bytes"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Invariants implements module.Invariants. The module holds no money; its
// invariant is that every record is whole: stored under its own address,
// within the bounds a registration checks, its heights in order.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{{Name: "agents/records", Check: k.checkRecords}}
}

func (k *Keeper) checkRecords(q module.Query) module.Finding {
	var detail string
	n := 0
	err := q.State.Iterate(AgentPrefix, false, func(key, val []byte) bool {
		var a Agent
		if err := tx.Unmarshal(val, &a); err != nil {
			detail = fmt.Sprintf("record %x: %v", key, err)
			return false
		}
		switch {
		case !bytes.Equal(key[len(AgentPrefix):], a.Address):
			detail = fmt.Sprintf("record under %x names %x", key[len(AgentPrefix):], a.Address)
		case MsgRegister{Name: a.Name, ModelHash: a.ModelHash, Caps: a.Caps, Span: a.Span, Endpoint: a.Endpoint, More: a.More}.Check() != nil:
			detail = fmt.Sprintf("agent %s out of bounds", a.Addr())
		case a.Created > a.Updated || a.Updated > a.Heartbeat || a.Heartbeat > q.Height && q.Height > 0:
			detail = fmt.Sprintf("agent %s heights out of order: registered %d, updated %d, heartbeat %d", a.Addr(), a.Created, a.Updated, a.Heartbeat)
		}
		n++
		return detail == ""
	})
	if err != nil {
		detail = err.Error()
	}
	if detail != "" {
		return module.Finding{Broken: true, Detail: detail}
	}
	return module.Finding{Detail: fmt.Sprintf("%d agent records whole", n), Figures: map[string]string{"agents": fmt.Sprint(n)}}
}

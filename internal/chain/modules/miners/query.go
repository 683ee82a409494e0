package miners

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// View is a miner as the REST API shows it: GET /api/v1/miners/{address}
// and each entry of GET /api/v1/miners.
type View struct {
	Address       address.Address `json:"address"`
	PubKey        string          `json:"pubkey"` // hex ed25519: verifies the miner's receipts
	Models        []string        `json:"models"`
	GPU           string          `json:"gpu"`
	GPUMemoryMB   uint64          `json:"gpu_memory_mb"`
	PricePer1k    coin.Amount     `json:"price_per_1k_tokens"`
	Endpoint      string          `json:"endpoint,omitempty"`
	Stake         coin.Amount     `json:"stake"`
	Status        string          `json:"status"` // active, unbonding
	Registered    int64           `json:"registered_height"`
	LastHeartbeat time.Time       `json:"last_heartbeat"`
	UnbondAt      int64           `json:"unbond_at_height,omitempty"`
	JobsSettled   uint64          `json:"jobs_settled"`
	TokensOut     uint64          `json:"tokens_out"`
	// Provider is the marketplace provider the miner named
	// (miners/set_provider): its consent to run that provider's jobs.
	Provider *address.Address `json:"provider,omitempty"`
}

// List is GET /api/v1/miners.
type List struct {
	Height int64  `json:"height"`
	Miners []View `json:"miners"`
}

// ViewOf describes a registry record.
func ViewOf(m *Miner) View {
	out := View{
		Address: m.Addr(), PubKey: hex.EncodeToString(m.PubKey), Models: m.Caps.Models, GPU: m.Caps.GPU,
		GPUMemoryMB: m.Caps.GPUMemoryMB, PricePer1k: m.Caps.PricePer1k, Endpoint: m.Caps.Endpoint, Stake: m.Stake,
		Status: "active", Registered: m.Registered, LastHeartbeat: time.Unix(m.LastHeartbeat, 0).UTC(),
		JobsSettled: m.JobsSettled, TokensOut: m.TokensOut,
	}
	if m.Status == StatusUnbonding {
		out.Status, out.UnbondAt = "unbonding", m.UnbondAt
	}
	return out
}

// Routes implements module.Querier.
func (k *Keeper) Routes() []module.Route {
	return []module.Route{
		{Method: "GET", Path: "/api/v1/miners", Summary: "every registered miner", Handle: k.queryAll},
		{Method: "GET", Path: "/api/v1/miners/{address}", Summary: "one miner", Handle: k.queryOne},
	}
}

func (k *Keeper) queryAll(q module.Query, _ module.Request) (any, error) {
	out := List{Height: q.Height, Miners: []View{}}
	err := each(q.State, func(m *Miner) error {
		v, err := k.viewAt(q, m)
		out.Miners = append(out.Miners, v)
		return err
	})
	return out, err
}

func (k *Keeper) queryOne(q module.Query, in module.Request) (any, error) {
	a, err := address.Parse(in.PathValue("address"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errs.ErrInvalidAddress, err)
	}
	m, err := k.Get(q.State, a)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("%w: %s", ErrMinerNotFound, a)
	}
	return k.viewAt(q, m)
}

// viewAt is ViewOf with the provider the miner named.
func (k *Keeper) viewAt(q module.Query, m *Miner) (View, error) {
	v := ViewOf(m)
	p, ok, err := k.Provider(q.State, m.Addr())
	if ok {
		v.Provider = &p
	}
	return v, err
}

// QueryAll fetches the registry from a node.
func QueryAll(ctx context.Context, g module.Getter) (List, error) {
	var out List
	return out, g.GetJSON(ctx, "/api/v1/miners", &out)
}

// Query fetches one miner from a node.
func Query(ctx context.Context, g module.Getter, a address.Address) (View, error) {
	var out View
	return out, g.GetJSON(ctx, "/api/v1/miners/"+a.String(), &out)
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	caps := func(c Capabilities) map[string]any {
		return map[string]any{"models": c.Models, "gpu": c.GPU, "gpu_memory_mb": c.GPUMemoryMB, "price_per_1k_tokens": c.PricePer1k, "endpoint": c.Endpoint}
	}
	switch msg.Type {
	case TypeRegister:
		var m MsgRegister
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		out := caps(m.Caps)
		out["stake"] = m.Stake
		return out, nil
	case TypeUpdate:
		var m MsgUpdate
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return caps(m.Caps), nil
	case TypeHeartbeat, TypeDeregister:
		return map[string]any{}, nil
	case TypeSetProvider:
		var m MsgSetProvider
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		if len(m.Provider) == 0 {
			return map[string]any{"provider": nil}, nil
		}
		p, err := address.FromBytes(m.Provider)
		if err != nil {
			return nil, err
		}
		return map[string]any{"provider": p}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

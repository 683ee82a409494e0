// Package agents is the chain module of AI agents (docs/AGENTS.md): an
// agent — a miner serving a model or a span of its layers — registers
// itself with a name, the hash of its model, its capabilities and
// optionally the span it serves (agents/register, the seed's precompile
// 0x21), and sends heartbeats (agents/heartbeat, 0x22). The agent's id is
// the address of the key that signs them. An agent whose last heartbeat
// (or registration) is more than Params.ActiveWindow blocks old is shown
// inactive and is not routed to. An oracle named in the parameters
// commits each agent's metrics aggregate per epoch (agents/metrics), which
// reputation and rewards can read.
//
// The module holds no money: registration costs the transaction fee only.
package agents

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "agents"

// Agent is an agent's record.
type Agent struct {
	_         struct{} `cbor:",toarray"`
	Address   []byte
	Name      string
	ModelHash string
	Caps      []string
	Span      *Span
	Created   int64 // height of the first registration
	Updated   int64 // height of the last registration
	Heartbeat int64 // height of the last heartbeat (or registration)
	Metrics   *Metrics
	Endpoint  string // the span API's public base URL ("" : none; endpoint.go)
	More      []Span // spans served besides Span
}

// Addr is the agent's address.
func (a *Agent) Addr() address.Address { ad, _ := address.FromBytes(a.Address); return ad }

// Active reports whether the agent was heard from within window blocks of
// height.
func (a *Agent) Active(height, window int64) bool { return height-a.Heartbeat <= window }

var (
	// AgentPrefix + address: an Agent.
	AgentPrefix = []byte("agents/a/")
	keyParams   = []byte("agents/params")
)

func keyAgent(a address.Address) []byte { return append(append([]byte{}, AgentPrefix...), a[:]...) }

// Params of the module.
type Params struct {
	// ActiveWindow: an agent is active while its last heartbeat is at most
	// this many blocks old (60 blocks: a minute at the devnet's 1 s blocks).
	ActiveWindow int64 `json:"active_window_blocks"`
	// Oracles are the addresses whose agents/metrics the chain accepts.
	Oracles []string `json:"oracles"`
}

// DefaultParams: a 60-block window, no oracle.
func DefaultParams() Params { return Params{ActiveWindow: 60} }

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.ActiveWindow < 1 || p.ActiveWindow > 1_000_000 {
		return fmt.Errorf("%w: active_window_blocks %d (1 to 1000000)", ErrParams, p.ActiveWindow)
	}
	if len(p.Oracles) > MaxOracles {
		return fmt.Errorf("%w: %d oracles, at most %d", ErrParams, len(p.Oracles), MaxOracles)
	}
	for _, o := range p.Oracles {
		if _, err := address.Parse(o); err != nil {
			return fmt.Errorf("%w: oracle %q: %w", ErrParams, o, err)
		}
	}
	return nil
}

// IsOracle reports whether a is one of the oracles.
func (p Params) IsOracle(a address.Address) bool {
	for _, o := range p.Oracles {
		if oa, err := address.Parse(o); err == nil && oa == a {
			return true
		}
	}
	return false
}

// Keeper implements the module.
type Keeper struct{}

// NewKeeper returns the module.
func NewKeeper() *Keeper { return &Keeper{} }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
	_ module.Genesis    = (*Keeper)(nil)
	_ module.Exporter   = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Params returns the module's parameters.
func (*Keeper) Params(r state.Reader) (Params, error) {
	return module.ReadParams(r, keyParams, DefaultParams())
}

// Get returns the agent at a, or nil.
func (*Keeper) Get(r state.Reader, a address.Address) (*Agent, error) {
	b, err := r.Get(keyAgent(a))
	if err != nil || b == nil {
		return nil, err
	}
	var ag Agent
	if err := tx.Unmarshal(b, &ag); err != nil {
		return nil, fmt.Errorf("agents: corrupt agent %s: %w", a, err)
	}
	return &ag, nil
}

func (*Keeper) put(kv *state.Cache, a *Agent) error {
	b, err := tx.Marshal(a)
	if err != nil {
		return err
	}
	kv.Set(keyAgent(a.Addr()), b)
	return nil
}

package app

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
)

// Params are the chain's economic parameters, fixed at genesis.
type Params struct {
	// MinFee is the smallest fee a transaction may carry.
	MinFee coin.Amount `json:"min_fee"`
	// BurnBps is the share of a block's fees (transaction fees and
	// protocol fees) that is burned, in basis points (5000 = 50%).
	BurnBps uint64 `json:"burn_bps"`
	// TreasuryBps is the share of a block's fees paid to the treasury;
	// the block's proposer gets the rest (rewards.SplitFees).
	TreasuryBps uint64 `json:"treasury_bps,omitempty"`
}

// DefaultParams: a 0.001 AITBC minimum fee; of a block's fees half is
// burned, 20% goes to the treasury and 30% to the proposer.
func DefaultParams() Params {
	return Params{MinFee: coin.Unit / 1000, BurnBps: 5000, TreasuryBps: 2000}
}

// Validate checks the parameters.
func (p Params) Validate() error {
	if p.BurnBps > 10_000 || p.TreasuryBps > 10_000 || p.BurnBps+p.TreasuryBps > 10_000 {
		return fmt.Errorf("app: burn_bps %d + treasury_bps %d exceed 10000", p.BurnBps, p.TreasuryBps)
	}
	return nil
}

// GenesisAccount is an account funded at genesis.
type GenesisAccount struct {
	Name    string          `json:"name,omitempty"` // informational
	Address address.Address `json:"address"`
	Balance coin.Amount     `json:"balance"`
}

// GenesisValidator maps a validator's consensus address to the account that
// receives its share of fees. Without an entry, the fees go to the account
// with the consensus address itself (the same derivation).
type GenesisValidator struct {
	ConsensusAddress string          `json:"consensus_address"` // hex, as CometBFT shows it
	RewardAddress    address.Address `json:"reward_address"`
}

// Genesis is the app_state of the CometBFT genesis document.
type Genesis struct {
	Params     Params             `json:"params"`
	Accounts   []GenesisAccount   `json:"accounts"`
	Validators []GenesisValidator `json:"validators,omitempty"`
	// Modules holds each module's own genesis (parameters, state), by name.
	Modules map[string]json.RawMessage `json:"modules,omitempty"`
	// State, in a genesis written by `aitbc chain export`, is the whole
	// state of the chain it was exported from; the chain then starts at
	// its height + 1 (the genesis document's initial_height).
	State *ExportedState `json:"state,omitempty"`
}

// ParseGenesis decodes and validates app_state.
func ParseGenesis(b []byte) (Genesis, error) {
	var g Genesis
	if len(b) == 0 {
		return g, fmt.Errorf("app: empty app_state in genesis")
	}
	if err := json.Unmarshal(b, &g); err != nil {
		return g, fmt.Errorf("app: genesis app_state: %w", err)
	}
	if err := g.Params.Validate(); err != nil {
		return g, err
	}
	seen := map[address.Address]bool{}
	for _, a := range g.Accounts {
		if seen[a.Address] {
			return g, fmt.Errorf("app: genesis account %s listed twice", a.Address)
		}
		seen[a.Address] = true
	}
	for _, v := range g.Validators {
		if b, err := hex.DecodeString(v.ConsensusAddress); err != nil || len(b) != address.Len {
			return g, fmt.Errorf("app: genesis validator consensus address %q is not 20 hex bytes", v.ConsensusAddress)
		}
	}
	return g, nil
}

package miners

import (
	"fmt"
	"unicode/utf8"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeRegister   = "miners/register"
	TypeUpdate     = "miners/update"
	TypeHeartbeat  = "miners/heartbeat"
	TypeDeregister = "miners/deregister"
	// TypeSetProvider names (or, empty, stops naming) the marketplace
	// provider the signing miner works for: the miner's half of the
	// consent that lets the provider's agreements run on it (the
	// provider's half is market/add_miner).
	TypeSetProvider = "miners/set_provider"
)

// Capabilities describe what a miner offers.
type Capabilities struct {
	_           struct{} `cbor:",toarray"`
	Models      []string
	GPU         string // e.g. "NVIDIA H100 80GB" or "cpu"
	GPUMemoryMB uint64
	PricePer1k  coin.Amount // per 1,000 output tokens
	Endpoint    string      // optional, informational
}

// Validate checks sizes and characters.
func (c Capabilities) Validate() error {
	if len(c.Models) == 0 || len(c.Models) > 64 {
		return fmt.Errorf("%w: 1 to 64 models", ErrCapabilities)
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		if m == "" || len(m) > 128 || !printable(m) {
			return fmt.Errorf("%w: model name %q", ErrCapabilities, m)
		}
		if seen[m] {
			return fmt.Errorf("%w: model %q listed twice", ErrCapabilities, m)
		}
		seen[m] = true
	}
	if len(c.GPU) > 128 || !printable(c.GPU) || len(c.Endpoint) > 256 || !printable(c.Endpoint) {
		return fmt.Errorf("%w: gpu or endpoint too long or not printable", ErrCapabilities)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Serves reports whether the miner lists model.
func (c Capabilities) Serves(model string) bool {
	for _, m := range c.Models {
		if m == model {
			return true
		}
	}
	return false
}

// MsgRegister registers the signer as a miner, locking Stake in the
// module's stake account.
type MsgRegister struct {
	_     struct{} `cbor:",toarray"`
	Caps  Capabilities
	Stake coin.Amount
}

// MsgUpdate changes the signer's capabilities.
type MsgUpdate struct {
	_    struct{} `cbor:",toarray"`
	Caps Capabilities
}

// MsgHeartbeat records that the miner is alive at the block's time.
type MsgHeartbeat struct {
	_ struct{} `cbor:",toarray"`
}

// MsgDeregister starts unbonding; the stake returns after UnbondingBlocks.
type MsgDeregister struct {
	_ struct{} `cbor:",toarray"`
}

// MsgSetProvider names the provider the signing miner works for; an
// empty Provider ends it.
type MsgSetProvider struct {
	_        struct{} `cbor:",toarray"`
	Provider []byte
}

// NewSetProviderMsg builds the miner's consent to run provider's
// marketplace jobs (nil: none).
func NewSetProviderMsg(provider *address.Address) tx.Msg {
	var b []byte
	if provider != nil {
		b = provider[:]
	}
	m, _ := tx.NewMsg(TypeSetProvider, MsgSetProvider{Provider: b})
	return m
}

// NewRegisterMsg builds a registration message.
func NewRegisterMsg(caps Capabilities, stake coin.Amount) (tx.Msg, error) {
	if err := caps.Validate(); err != nil {
		return tx.Msg{}, err
	}
	return tx.NewMsg(TypeRegister, MsgRegister{Caps: caps, Stake: stake})
}

// NewUpdateMsg builds a capabilities update.
func NewUpdateMsg(caps Capabilities) (tx.Msg, error) {
	if err := caps.Validate(); err != nil {
		return tx.Msg{}, err
	}
	return tx.NewMsg(TypeUpdate, MsgUpdate{Caps: caps})
}

// NewHeartbeatMsg builds a heartbeat.
func NewHeartbeatMsg() tx.Msg {
	m, _ := tx.NewMsg(TypeHeartbeat, MsgHeartbeat{})
	return m
}

// NewDeregisterMsg builds a deregistration.
func NewDeregisterMsg() tx.Msg {
	m, _ := tx.NewMsg(TypeDeregister, MsgDeregister{})
	return m
}

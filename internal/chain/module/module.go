// Package module is the contract between the chain application and its
// modules (bank, and later market, jobs, miners, staking, ...). A module
// owns a key prefix, its message types ("<module>/<action>") and their
// handlers; it reads and writes state only through the Context it is given,
// so a failed message leaves no trace.
//
// The state machine is deterministic: handlers must not read the clock,
// randomness, the network or iterate maps in an order that affects writes.
// Time comes from the block header (Context.Time).
package module

import (
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Context is what a handler sees of the chain while it executes a message.
type Context struct {
	KV      *state.Cache
	Height  int64
	Time    time.Time
	ChainID string
	Signer  address.Address
	// SignerKey is the signer's ed25519 public key (nil in EndBlock).
	SignerKey []byte
	TxHash    [32]byte

	touched []address.Address
}

// Touch records that the transaction affects addr (beyond its signer), so
// it shows in that account's transaction history.
func (c *Context) Touch(addr address.Address) { c.touched = append(c.touched, addr) }

// Touched returns the addresses recorded with Touch.
func (c *Context) Touched() []address.Address { return c.touched }

// Module handles the messages of one module.
type Module interface {
	// Name is the module's name and the prefix of its message types.
	Name() string
	// Exec executes one message signed by ctx.Signer. It returns a
	// registered errs.Error (wrapped) on failure.
	Exec(ctx *Context, msg tx.Msg) error
}

// EndBlocker is implemented by modules with work at the end of every block
// (maturing unbondings, expiring jobs). EndBlock runs after the block's
// transactions, in module registration order, with Signer unset.
type EndBlocker interface {
	EndBlock(ctx *Context) error
}

// Genesis is implemented by modules with state or parameters at genesis.
// raw is the module's entry in the genesis app_state ("modules" object),
// or nil when absent (the module then uses its defaults).
type Genesis interface {
	InitGenesis(ctx *Context, raw []byte) error
}

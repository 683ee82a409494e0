// Package module is the contract between the chain application and its
// modules (bank, miners, jobs, and the market, staking, exchange ... that
// follow). A module is one folder under internal/chain/modules that owns
// everything about its part of the state: its key prefix, its message types
// ("<module>/<action>") with their builders and handlers, its end-of-block
// work, its genesis, its module accounts, its invariants, and its REST
// queries with their JSON types. The application, the node and the REST
// server know modules only through the interfaces here, so adding a module
// touches its folder and the one list in internal/chain/modules.
//
// A module reads and writes state only through the Context it is given, so
// a failed message leaves no trace. The state machine is deterministic:
// handlers must not read the clock, randomness or the network, nor iterate
// maps in an order that affects writes. Time comes from the block header
// (Context.Time).
//
// Imported by the chain application, its modules, the node and the REST
// server.
package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
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
	// Proposer is the reward account of the block's proposer (zero in
	// CheckTx, where the next proposer is not known): the rewards module
	// pays the validators' share of each block's reward to it.
	Proposer address.Address
	// BlockHash is the hash of the block being executed (CometBFT's
	// FinalizeBlock hash), set in EndBlock only: nobody who submitted a
	// transaction in the block could know it, so the audits module draws
	// its spot checks and verifiers from it. Empty in tests that do not
	// set one.
	BlockHash []byte

	touched []address.Address
	notes   []string
}

// Touch records that the transaction affects addr (beyond its signer), so
// it shows in that account's transaction history.
func (c *Context) Touch(addr address.Address) { c.touched = append(c.touched, addr) }

// Touched returns the addresses recorded with Touch.
func (c *Context) Touched() []address.Address { return c.touched }

// Sub returns a context for one part of a message (an item of a batch,
// a multisig's proposed message) that writes into kv, a child of c.KV.
// Keep adds what it touched and noted to c once its writes are kept.
func (c *Context) Sub(kv *state.Cache) *Context {
	s := *c
	s.KV, s.touched, s.notes = kv, nil, nil
	return &s
}

// Keep adds what s (from Sub) touched and noted to c.
func (c *Context) Keep(s *Context) {
	c.touched = append(c.touched, s.touched...)
	c.notes = append(c.notes, s.notes...)
}

// Note records a line for the transaction's result log, shown even when
// it succeeds (a batch says which of its items it skipped and why).
func (c *Context) Note(line string) { c.notes = append(c.notes, line) }

// Notes returns the lines recorded with Note.
func (c *Context) Notes() []string { return c.notes }

// Module is a chain module: it has a name, which is also the prefix of its
// message types and of its state keys. What else it does it says by
// implementing the interfaces below.
type Module interface {
	Name() string
}

// Handler is implemented by modules with messages.
type Handler interface {
	// Exec executes one message signed by ctx.Signer. It returns a
	// registered errs.Error (wrapped) on failure, having written nothing
	// the caller keeps (the app discards the transaction's cache).
	Exec(ctx *Context, msg tx.Msg) error
}

// EndBlocker is implemented by modules with work at the end of every block
// (maturing unbondings, expiring jobs). EndBlock runs after the block's
// transactions, in module order, with Signer unset.
type EndBlocker interface {
	EndBlock(ctx *Context) error
}

// Genesis is implemented by modules with state or parameters at genesis.
// raw is the module's entry in the genesis app_state ("modules" object),
// or nil when absent (the module then uses its defaults).
type Genesis interface {
	InitGenesis(ctx *Context, raw []byte) error
}

// Accounts is implemented by modules that hold money. Each name is a
// module account: an ordinary balance at address.Module(name), which no
// key can sign for, and which ordinary transfers cannot pay into (only the
// module moves its funds, so its records and its balance stay equal).
type Accounts interface {
	Accounts() []string
}

// FeePayer is implemented by modules that pay the transaction fee of some
// of their messages themselves (the faucet pays for a drip, so that a new
// address with no balance can ask for one). PayFee is called before the
// fee is charged, with the transaction's cache: it returns the account the
// fee is taken from, having recorded it in its own books, or ok false for
// the signer to pay as usual. The transaction is still refused, and
// nothing kept, if the message then fails.
type FeePayer interface {
	PayFee(ctx *Context, msg tx.Msg, fee coin.Amount) (payer address.Address, ok bool, err error)
}

// Misbehavior is implemented by modules that act on evidence of a
// validator's misbehavior (CometBFT's duplicate votes): the staking module
// slashes the stake bonded to it. validator is its reward account.
type Misbehavior interface {
	Misbehaved(ctx *Context, validator address.Address, kind string) error
}

// Describer is implemented by modules that can show their messages to
// people: the REST API and the explorer display a transaction's body with
// it. It returns a JSON-friendly value (field names as the module's query
// types use them), or an error for a body it cannot decode.
type Describer interface {
	Describe(msg tx.Msg) (any, error)
}

// Querier is implemented by modules that answer REST queries. The node's
// REST server mounts every route under its path, runs it against committed
// state and writes the answer as JSON.
type Querier interface {
	Routes() []Route
}

// Route is one REST query of a module. It is data, not an http.Handler, so
// the chain's packages never import net/http and a module still owns its
// routes.
type Route struct {
	Method  string // "GET"
	Path    string // a net/http pattern path: "/api/v1/jobs/{id}"
	Summary string // one line, for the route list and docs
	// Handle answers the query. Errors should be registered errs.Errors
	// (KindNotFound for a missing record, KindInvalid for a bad argument).
	Handle func(q Query, in Request) (any, error)
}

// Query is committed state as a route handler or an invariant sees it.
type Query struct {
	State   state.View
	Height  int64
	Time    time.Time // the block time at Height
	ChainID string
}

// Request is what a route handler may read of the request.
type Request interface {
	PathValue(name string) string // a {name} segment of the path
	Param(name string) string     // a URL query parameter ("" if absent)
}

// Getter fetches a path from a node's REST API and decodes its JSON answer
// into out; a refusal comes back as an error carrying the answer's code.
// The REST client (internal/rpc) implements it, and each module builds its
// typed query functions on it, so that no client needs per-module methods.
type Getter interface {
	GetJSON(ctx context.Context, path string, out any) error
}

// Invariants is implemented by modules with properties that must hold
// after every block: Cosmos' crisis module checks the same kind.
type Invariants interface {
	Invariants() []Invariant
}

// Invariant is one checked property of committed state.
type Invariant struct {
	Name  string // "<module>/<property>", e.g. "jobs/escrow"
	Check func(q Query) Finding
}

// Finding is the outcome of one invariant: the figures compared, and
// whether they disagree.
type Finding struct {
	Broken  bool
	Detail  string            // one line, with the figures
	Figures map[string]string // named amounts or counts, for machines
}

// Compare is the usual finding: an account's balance against the sum of
// the records it should equal.
func Compare(account address.Address, balance, records coin.Amount, what string) Finding {
	f := Finding{
		Broken:  balance != records,
		Detail:  "account " + account.String() + " holds " + balance.String() + " AITBC, " + what + " sum to " + records.String(),
		Figures: map[string]string{"account": account.String(), "balance": balance.String(), "records": records.String()},
	}
	return f
}

// Audit is the outcome of every module's invariants on committed state.
type Audit struct {
	Height     int64            `json:"height"`
	Time       time.Time        `json:"block_time"`
	OK         bool             `json:"ok"`
	Invariants []AuditInvariant `json:"invariants"`
}

// AuditInvariant is one invariant's finding.
type AuditInvariant struct {
	Name    string            `json:"name"`
	OK      bool              `json:"ok"`
	Detail  string            `json:"detail"`
	Figures map[string]string `json:"figures,omitempty"`
}

// ErrInvariant is a broken invariant.
var ErrInvariant = errors.New("invariant broken")

// Err is nil when every invariant holds; otherwise it names each broken
// one with the height and its figures.
func (au Audit) Err() error {
	var bad []string
	for _, in := range au.Invariants {
		if !in.OK {
			bad = append(bad, in.Name+": "+in.Detail)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w at height %d: %s", ErrInvariant, au.Height, strings.Join(bad, "; "))
}

// InitParams is the usual InitGenesis of a module's parameters: def,
// overridden by the genesis entry raw (JSON) when there is one, checked
// with validate, and stored canonically under key.
func InitParams[P any](ctx *Context, raw []byte, key []byte, def P, validate func(P) error) error {
	p := def
	if raw != nil {
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("genesis parameters: %w", err)
		}
	}
	if err := validate(p); err != nil {
		return err
	}
	b, err := tx.Marshal(p)
	if err != nil {
		return err
	}
	ctx.KV.Set(key, b)
	return nil
}

// ReadParams reads parameters stored by InitParams, or def when a chain
// started before the module had them.
func ReadParams[P any](r state.Reader, key []byte, def P) (P, error) {
	b, err := r.Get(key)
	if err != nil || b == nil {
		return def, err
	}
	var p P
	return p, tx.Unmarshal(b, &p)
}

// Package errs defines the chain's coded errors. Each failure a transaction
// can meet has one registered *Error with a codespace (the module), an ABCI
// code, and a stable snake_case name that clients see in HTTP bodies
// ({"error":{"code":"insufficient_funds",...}}). Handlers return them wrapped
// with %w for context; the ABCI layer and the RPC find them with errors.As,
// and a client maps an ABCI (codespace, code) back with Lookup.
package errs

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Kind says what sort of failure an error is, so that a transport maps it
// to its own status (the REST API: 400, 404, 500) without a table of every
// error.
type Kind uint8

// Kinds of error.
const (
	KindInvalid  Kind = iota // the transaction or query is wrong
	KindNotFound             // what it names does not exist
	KindInternal             // not the caller's fault
)

// Error is a registered chain error.
type Error struct {
	Codespace string // module name, e.g. "tx", "bank"
	Code      uint32 // ABCI code, unique within the codespace, never 0
	Name      string // stable machine-readable name
	Desc      string // human description
	Kind      Kind
}

func (e *Error) Error() string { return e.Codespace + ": " + e.Desc }

// Is makes errors.Is match by codespace and code, so an error rebuilt by
// Lookup from an ABCI result matches the sentinel.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Codespace == e.Codespace && t.Code == e.Code
}

var (
	mu       sync.RWMutex
	registry = map[string]map[uint32]*Error{}
	byName   = map[string]*Error{}
)

// Register adds an error of KindInvalid to the registry and returns it. It
// panics on a duplicate, which is a programming error found at init time.
func Register(codespace string, code uint32, name, desc string) *Error {
	return RegisterKind(KindInvalid, codespace, code, name, desc)
}

// RegisterNotFound registers an error of KindNotFound: a query or message
// named a record (a job, a miner) that does not exist.
func RegisterNotFound(codespace string, code uint32, name, desc string) *Error {
	return RegisterKind(KindNotFound, codespace, code, name, desc)
}

// RegisterKind registers an error of the given kind.
func RegisterKind(kind Kind, codespace string, code uint32, name, desc string) *Error {
	if code == 0 {
		panic("errs: code 0 means success")
	}
	mu.Lock()
	defer mu.Unlock()
	if registry[codespace] == nil {
		registry[codespace] = map[uint32]*Error{}
	}
	if _, dup := registry[codespace][code]; dup {
		panic(fmt.Sprintf("errs: duplicate %s/%d", codespace, code))
	}
	if _, dup := byName[name]; dup {
		panic(fmt.Sprintf("errs: duplicate name %s", name))
	}
	e := &Error{Codespace: codespace, Code: code, Name: name, Desc: desc, Kind: kind}
	registry[codespace][code] = e
	byName[name] = e
	return e
}

// Lookup returns the registered error for an ABCI result, or nil.
func Lookup(codespace string, code uint32) *Error {
	mu.RLock()
	defer mu.RUnlock()
	return registry[codespace][code]
}

// ByName returns the registered error with the given name, or nil.
func ByName(name string) *Error {
	mu.RLock()
	defer mu.RUnlock()
	return byName[name]
}

// All returns every registered error, ordered by codespace and code
// (for documentation).
func All() []*Error {
	mu.RLock()
	defer mu.RUnlock()
	var out []*Error
	for _, m := range registry {
		for _, e := range m {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Codespace != out[j].Codespace {
			return out[i].Codespace < out[j].Codespace
		}
		return out[i].Code < out[j].Code
	})
	return out
}

// ABCI returns the codespace, code and log for err: a registered error
// found in its chain keeps its code; anything else is ErrInternal.
func ABCI(err error) (codespace string, code uint32, log string) {
	if err == nil {
		return "", 0, ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Codespace, e.Code, err.Error()
	}
	return ErrInternal.Codespace, ErrInternal.Code, err.Error()
}

// ErrInternal is any failure that is not the transaction's fault.
var ErrInternal = RegisterKind(KindInternal, "app", 1, "internal", "internal error")

// ErrInvalidAddress is a query argument that is not an AITBC address.
var ErrInvalidAddress = Register("query", 1, "invalid_address", "invalid address")

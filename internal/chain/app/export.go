package app

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// ExportedState is the whole state of a chain at one height, as a new
// chain's genesis carries it (`aitbc chain export`): the new chain starts
// at Height+1 with every balance, record and nonce the old one had, and
// its supply's books (genesis, minted, burned) continue the old chain's.
type ExportedState struct {
	// ChainID, Height, Time and AppHash name where the state comes from.
	ChainID string    `json:"chain_id"`
	Height  int64     `json:"height"`
	Time    time.Time `json:"block_time"`
	AppHash string    `json:"app_hash"` // hex
	// StateVersion is the layout the records were written in: a build with
	// another layout refuses them (or, later, converts them).
	StateVersion uint64 `json:"state_version"`
	// Nonces are the accounts' next transaction numbers: they carry over,
	// so that no transaction of the old chain can be replayed on the new
	// one when it keeps the chain id.
	Nonces []module.Record `json:"nonces,omitempty"`
	// Modules is each module's ExportGenesis, by name.
	Modules map[string]json.RawMessage `json:"modules"`
}

// ErrExportHeight means an export asked for a height whose state the store
// no longer has: it keeps the latest state only.
var ErrExportHeight = errors.New("app: the state store keeps only the latest height")

// ErrExportedState means a genesis carries an exported state this build
// cannot start from.
var ErrExportedState = errors.New("app: exported state refused")

var keyNoncePrefix = []byte("auth/n/")

// owned are the prefixes of the app's own hashed keys, besides the
// modules' "<name>/": an export must account for every key in the state.
var owned = [][]byte{keyNoncePrefix, keyParams, keyStateVersion, []byte("app/reward/")}

// Export returns a genesis carrying the whole committed state at height
// (0: the latest), for a new chain to start from. Only the latest height
// can be exported: the store does not keep older states. It reads a
// snapshot, so a running node keeps committing meanwhile.
func (a *App) Export(height int64) (Genesis, error) {
	a.mu.RLock()
	h, ah, bt, p, snap := a.height, a.appHash, a.blockTime, a.params, a.store.Snapshot()
	a.mu.RUnlock()
	defer snap.Close()
	if h == 0 {
		return Genesis{}, fmt.Errorf("%w: the chain has no committed block yet", ErrExportHeight)
	}
	switch {
	case height < 0 || height > h:
		return Genesis{}, fmt.Errorf("%w: height %d: the chain is at %d", ErrExportHeight, height, h)
	case height != 0 && height != h:
		return Genesis{}, fmt.Errorf("%w (%d): export at %d or leave the height out", ErrExportHeight, h, h)
	}
	g := Genesis{Params: p, Accounts: []GenesisAccount{}, State: &ExportedState{
		ChainID: a.chainID, Height: h, Time: bt, AppHash: hex.EncodeToString(ah),
		StateVersion: StateVersion, Modules: map[string]json.RawMessage{},
	}}
	if err := checkOwned(snap, a.order); err != nil {
		return Genesis{}, err
	}
	var bad error
	err := snap.Iterate([]byte("app/reward/"), false, func(k, v []byte) bool {
		cons := k[len("app/reward/"):]
		ra, err := address.FromBytes(v)
		if err != nil {
			bad = err
			return false
		}
		g.Validators = append(g.Validators, GenesisValidator{ConsensusAddress: hex.EncodeToString(cons), RewardAddress: ra})
		return true
	})
	if err = errors.Join(err, bad); err != nil {
		return Genesis{}, fmt.Errorf("app: export reward accounts: %w", err)
	}
	err = snap.Iterate(keyNoncePrefix, false, func(k, v []byte) bool {
		g.State.Nonces = append(g.State.Nonces, module.Record{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		return true
	})
	if err != nil {
		return Genesis{}, fmt.Errorf("app: export nonces: %w", err)
	}
	for _, m := range a.order {
		ex, ok := m.(module.Exporter)
		if !ok {
			if n, err := countPrefix(snap, []byte(m.Name()+"/")); err != nil || n > 0 {
				return Genesis{}, errors.Join(err, fmt.Errorf("app: module %s has %d records and cannot export them", m.Name(), n))
			}
			continue
		}
		raw, err := ex.ExportGenesis(snap)
		if err != nil {
			return Genesis{}, fmt.Errorf("app: export %s: %w", m.Name(), err)
		}
		g.State.Modules[m.Name()] = raw
	}
	return g, nil
}

// checkOwned fails when the state holds a hashed key that neither a
// module ("<name>/") nor the app owns: the export would silently drop it.
func checkOwned(v state.View, mods []module.Module) error {
	var stray []byte
	err := v.Iterate(nil, false, func(k, _ []byte) bool {
		if !state.IsHashed(k) {
			return true
		}
		for _, p := range owned {
			if bytes.HasPrefix(k, p) {
				return true
			}
		}
		for _, m := range mods {
			if bytes.HasPrefix(k, []byte(m.Name()+"/")) {
				return true
			}
		}
		stray = bytes.Clone(k)
		return false
	})
	if err != nil {
		return err
	}
	if stray != nil {
		return fmt.Errorf("app: export: key %q belongs to no module", stray)
	}
	return nil
}

func countPrefix(v state.View, prefix []byte) (int, error) {
	n := 0
	err := v.Iterate(prefix, false, func(_, _ []byte) bool { n++; return true })
	return n, err
}

// importState writes an exported state into kv at genesis, in place of
// the genesis accounts and the modules' InitGenesis for the modules it
// carries; initialHeight is the new chain's first height, which must
// follow the exported one, since records name heights (unbondings,
// expiries, epochs).
func (a *App) importState(gctx *module.Context, g Genesis, initialHeight int64) error {
	s := g.State
	switch {
	case s.StateVersion != StateVersion:
		return fmt.Errorf("%w: state version %d, this build reads %d", ErrExportedState, s.StateVersion, StateVersion)
	case len(g.Accounts) > 0:
		return fmt.Errorf("%w: an exported genesis carries its balances in its state; accounts must be empty", ErrExportedState)
	case s.Height < 1 || initialHeight != s.Height+1:
		return fmt.Errorf("%w: exported at height %d, so the chain must start at %d (genesis initial_height), not %d", ErrExportedState, s.Height, s.Height+1, initialHeight)
	}
	for name := range s.Modules {
		if !slices.ContainsFunc(a.order, func(m module.Module) bool { return m.Name() == name }) {
			return fmt.Errorf("%w: state of %q, which is not a module of this chain", ErrExportedState, name)
		}
	}
	seen := map[string]bool{}
	for _, r := range s.Nonces {
		if !bytes.HasPrefix(r.Key, keyNoncePrefix) || len(r.Key) != len(keyNoncePrefix)+address.Len || len(r.Value) != 8 || seen[string(r.Key)] {
			return fmt.Errorf("%w: nonce record %q", ErrExportedState, r.Key)
		}
		seen[string(r.Key)] = true
		gctx.KV.Set(r.Key, r.Value)
	}
	for _, m := range a.order {
		raw, carried := s.Modules[m.Name()]
		if !carried {
			// A module new in this version starts from its genesis entry.
			if gm, ok := m.(module.Genesis); ok {
				if err := gm.InitGenesis(gctx, g.Modules[m.Name()]); err != nil {
					return fmt.Errorf("app: genesis of module %s: %w", m.Name(), err)
				}
			}
			continue
		}
		if _, ok := g.Modules[m.Name()]; ok {
			return fmt.Errorf("%w: module %s has both an exported state and genesis parameters; its parameters are in its state", ErrExportedState, m.Name())
		}
		ex, ok := m.(module.Exporter)
		if !ok {
			return fmt.Errorf("%w: module %s cannot import a state", ErrExportedState, m.Name())
		}
		if err := ex.ImportGenesis(gctx, raw); err != nil {
			return fmt.Errorf("%w: %w", ErrExportedState, err)
		}
	}
	// The books must balance before a single block builds on them.
	q := module.Query{State: gctx.KV, Height: s.Height, Time: gctx.Time, ChainID: a.chainID}
	if err := audit(a.order, q).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrExportedState, err)
	}
	return nil
}

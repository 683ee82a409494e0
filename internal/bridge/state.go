package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// UTXO is a Bitcoin output the bridge holds: at a deposit address (chain
// 0) or its change address (chain 1).
type UTXO struct {
	Value  int64  `json:"value_sat"`
	Chain  uint32 `json:"chain"`
	Index  uint32 `json:"index"`
	Height int64  `json:"height"`
	Script string `json:"script"` // hex
}

// PendingDeposit is a deposit seen with enough confirmations, to attest.
type PendingDeposit struct {
	Outpoint  string `json:"outpoint"` // txid:vout
	Address   string `json:"address"`
	Amount    int64  `json:"amount_sat"`
	BlockHash string `json:"block_hash"`
	BlockH    int64  `json:"block_height"`
	// Final is when the daemon saw the deposit reach its Nth confirmation
	// (unix ms): the mint latency is measured from it.
	Final int64 `json:"final_ms"`
}

// State is what the daemon keeps across restarts, in one JSON file written
// atomically (temporary file, fsync, rename): the chain records what was
// minted and paid; this file records what only the daemon knows — how far
// it has read Bitcoin, the outputs it holds, and each withdrawal's signed
// transaction before it is broadcast, so that a restart broadcasts the
// same transaction again and never builds a second payment.
type State struct {
	Cursor  int64             `json:"cursor"` // last Bitcoin height read (all its deposits queued)
	Hashes  map[int64]string  `json:"hashes"` // recent heights read → block hash, to detect reorganisations
	UTXOs   map[string]UTXO   `json:"utxos"`  // outpoint → output
	Pending []PendingDeposit  `json:"pending_deposits"`
	Signed  map[uint64]string `json:"signed"` // withdrawal id → raw signed transaction (hex)
	Halted  string            `json:"halted,omitempty"`
	Skipped map[string]string `json:"skipped,omitempty"` // outpoint → why it is not minted (dust)
}

func newState(start int64) *State {
	return &State{Cursor: start, Hashes: map[int64]string{}, UTXOs: map[string]UTXO{}, Signed: map[uint64]string{}, Skipped: map[string]string{}}
}

// loadState reads the state file, or a fresh state starting after height
// start when there is none.
func loadState(path string, start int64) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(start), nil
	}
	if err != nil {
		return nil, err
	}
	s := newState(start)
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("bridge state %s: %w", path, err)
	}
	if s.Hashes == nil {
		s.Hashes = map[int64]string{}
	}
	if s.UTXOs == nil {
		s.UTXOs = map[string]UTXO{}
	}
	if s.Signed == nil {
		s.Signed = map[uint64]string{}
	}
	if s.Skipped == nil {
		s.Skipped = map[string]string{}
	}
	return s, nil
}

// save writes the state durably: a crash leaves the old file or the new
// one, never half of one.
func (s *State) save(path string) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

package module

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exporter is implemented by modules whose whole state a genesis can carry
// (`aitbc chain export`): a chain upgraded to a new version starts from the
// state the old one had at some height, as Cosmos chains upgrade.
// ExportGenesis returns the module's state as JSON; ImportGenesis writes it
// back at the new chain's genesis, in place of InitGenesis, and refuses a
// record it cannot read rather than start a chain on it. A new version
// whose layout differs converts the old records in its ImportGenesis (the
// genesis names the state version they were written in).
type Exporter interface {
	ExportGenesis(v state.View) (json.RawMessage, error)
	ImportGenesis(ctx *Context, raw json.RawMessage) error
}

// Record is one state entry of an exported genesis (JSON: base64).
type Record struct {
	Key   []byte `json:"k"`
	Value []byte `json:"v"`
}

// Records is the usual exported state of a module: every record under its
// prefix, in key order, which is all the module knows (params, accounts'
// books, indexes), so nothing is left behind.
type Records struct {
	Records []Record `json:"records"`
}

// maxRecordKey bounds the key of an imported record; the chain's own keys
// are well under it.
const maxRecordKey = 1024

// ExportPrefix is ExportGenesis for a module whose records all sit under
// prefix ("<name>/").
func ExportPrefix(v state.View, prefix string) (json.RawMessage, error) {
	var out Records
	err := v.Iterate([]byte(prefix), false, func(k, val []byte) bool {
		out.Records = append(out.Records, Record{Key: bytes.Clone(k), Value: bytes.Clone(val)})
		return true
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// ImportPrefix is ImportGenesis for records exported by ExportPrefix: each
// key must be under prefix, appear once and carry a value; check, when not
// nil, reads each record the module's way and refuses one it cannot.
func ImportPrefix(ctx *Context, raw json.RawMessage, prefix string, check func(key, value []byte) error) error {
	var in Records
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("exported state: %w", err)
	}
	seen := make(map[string]bool, len(in.Records))
	for i, r := range in.Records {
		switch {
		case !bytes.HasPrefix(r.Key, []byte(prefix)) || len(r.Key) == len(prefix):
			return fmt.Errorf("exported state: record %d: key %q is not under %q", i, r.Key, prefix)
		case len(r.Key) > maxRecordKey:
			return fmt.Errorf("exported state: record %d: key of %d bytes (at most %d)", i, len(r.Key), maxRecordKey)
		case r.Value == nil:
			return fmt.Errorf("exported state: record %d (%q) has no value", i, r.Key)
		case seen[string(r.Key)]:
			return fmt.Errorf("exported state: record %d: key %q twice", i, r.Key)
		}
		seen[string(r.Key)] = true
		if check != nil {
			if err := check(r.Key, r.Value); err != nil {
				return fmt.Errorf("exported state: record %q: %w", r.Key, err)
			}
		}
		ctx.KV.Set(r.Key, r.Value)
	}
	return nil
}

// CheckParams is an import check for ImportPrefix: the record under key
// must decode as the module's parameters and pass validate; other records
// pass.
func CheckParams[P any](key []byte, validate func(P) error) func(k, v []byte) error {
	return func(k, v []byte) error {
		if !bytes.Equal(k, key) {
			return nil
		}
		var p P
		if err := tx.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("parameters: %w", err)
		}
		return validate(p)
	}
}

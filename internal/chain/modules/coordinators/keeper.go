// Package coordinators is the chain module where coordinators announce
// themselves (docs/COORDINATOR.md, "Finding a coordinator"): the key a
// marketplace's coordinators sign with announces each coordinator's public
// URL and region (coordinators/announce), and withdraws one
// (coordinators/retire). Clients and miners given no coordinator read the
// announced ones (GET /api/v1/coordinators) and pick the nearest healthy
// one by measured latency (internal/coordinator's Picker). The coordinators
// of one marketplace share its key (they drive each other's jobs), so one
// key announces up to MaxEndpoints URLs, one record per URL.
//
// The module holds no money: an announcement costs the transaction fee
// only, and a key holds at most MaxEndpoints records, so the state one key
// can fill is bounded.
//
// Imported by internal/chain/modules (wiring), the coordinator (it
// announces itself at start) and the CLI.
package coordinators

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Name is the module's name.
const Name = "coordinators"

// Endpoint is one announced coordinator.
type Endpoint struct {
	_       struct{} `cbor:",toarray"`
	Address []byte
	URL     string
	Region  string
	Name    string
	Created int64 // height of the first announcement of this URL
	Updated int64 // height of the last
}

// Addr is the announcing key's address.
func (e *Endpoint) Addr() address.Address { a, _ := address.FromBytes(e.Address); return a }

// EndpointPrefix + address + URL: an Endpoint.
var EndpointPrefix = []byte("coordinators/e/")

func keyOwner(a address.Address) []byte {
	return append(append([]byte{}, EndpointPrefix...), a[:]...)
}

func keyEndpoint(a address.Address, u string) []byte { return append(keyOwner(a), u...) }

// Keeper implements the module.
type Keeper struct{}

// NewKeeper returns the module.
func NewKeeper() *Keeper { return &Keeper{} }

var (
	_ module.Module     = (*Keeper)(nil)
	_ module.Handler    = (*Keeper)(nil)
	_ module.Querier    = (*Keeper)(nil)
	_ module.Describer  = (*Keeper)(nil)
	_ module.Exporter   = (*Keeper)(nil)
	_ module.Invariants = (*Keeper)(nil)
)

// Name implements module.Module.
func (*Keeper) Name() string { return Name }

// Get returns a's endpoint at u, or nil.
func (*Keeper) Get(r state.Reader, a address.Address, u string) (*Endpoint, error) {
	b, err := r.Get(keyEndpoint(a, u))
	if err != nil || b == nil {
		return nil, err
	}
	return decode(b)
}

func decode(b []byte) (*Endpoint, error) {
	var e Endpoint
	if err := tx.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("coordinators: corrupt endpoint: %w", err)
	}
	return &e, nil
}

// Of returns every endpoint a announced, by URL.
func (*Keeper) Of(r state.View, a address.Address) ([]*Endpoint, error) {
	var out []*Endpoint
	var bad error
	err := r.Iterate(keyOwner(a), false, func(_, v []byte) bool {
		e, err := decode(v)
		if err != nil {
			bad = err
			return false
		}
		out = append(out, e)
		return true
	})
	if err == nil {
		err = bad
	}
	return out, err
}

func (*Keeper) put(kv *state.Cache, e *Endpoint) error {
	b, err := tx.Marshal(e)
	if err != nil {
		return err
	}
	kv.Set(keyEndpoint(e.Addr(), e.URL), b)
	return nil
}

// Exec implements module.Handler. A refused message changes nothing: every
// check comes before the one write.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeAnnounce:
		var m MsgAnnounce
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.announce(ctx, m)
	case TypeRetire:
		var m MsgRetire
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.retire(ctx, m)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k *Keeper) announce(ctx *module.Context, m MsgAnnounce) error {
	if err := m.Check(); err != nil {
		return err
	}
	e, err := k.Get(ctx.KV, ctx.Signer, m.URL)
	if err != nil {
		return err
	}
	if e == nil {
		have, err := k.Of(ctx.KV, ctx.Signer)
		if err != nil {
			return err
		}
		if len(have) >= MaxEndpoints {
			return fmt.Errorf("%w: %s has %d", ErrTooMany, ctx.Signer, len(have))
		}
		e = &Endpoint{Address: ctx.Signer[:], URL: m.URL, Created: ctx.Height}
	}
	e.Region, e.Name, e.Updated = m.Region, m.Name, ctx.Height
	return k.put(ctx.KV, e)
}

func (k *Keeper) retire(ctx *module.Context, m MsgRetire) error {
	if err := CheckURL(m.URL); err != nil {
		return err
	}
	e, err := k.Get(ctx.KV, ctx.Signer, m.URL)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("%w: %s at %s", ErrNotFound, ctx.Signer, m.URL)
	}
	ctx.KV.Delete(keyEndpoint(ctx.Signer, m.URL))
	return nil
}

// ExportGenesis implements module.Exporter: every record.
func (*Keeper) ExportGenesis(v state.View) (json.RawMessage, error) {
	return module.ExportPrefix(v, Name+"/")
}

// ImportGenesis implements module.Exporter: each record must be a whole
// endpoint stored under its own key.
func (*Keeper) ImportGenesis(ctx *module.Context, raw json.RawMessage) error {
	if err := module.ImportPrefix(ctx, raw, Name+"/", checkRecord); err != nil {
		return fmt.Errorf("coordinators: %w", err)
	}
	return nil
}

// checkRecord reads one stored record the module's way.
func checkRecord(key, val []byte) error {
	if !bytes.HasPrefix(key, EndpointPrefix) {
		return fmt.Errorf("unknown key %q", key)
	}
	e, err := decode(val)
	if err != nil {
		return err
	}
	if _, err := address.FromBytes(e.Address); err != nil {
		return fmt.Errorf("%w: %w", ErrAddress, err)
	}
	if !bytes.Equal(key, keyEndpoint(e.Addr(), e.URL)) {
		return fmt.Errorf("record under %q is %s at %s", key, e.Addr(), e.URL)
	}
	if err := (MsgAnnounce{URL: e.URL, Region: e.Region, Name: e.Name}).Check(); err != nil {
		return err
	}
	if e.Created > e.Updated {
		return fmt.Errorf("%s at %s: announced at %d, updated at %d", e.Addr(), e.URL, e.Created, e.Updated)
	}
	return nil
}

// Invariants implements module.Invariants. The module holds no money; its
// invariant is that every record is whole and no key holds more than
// MaxEndpoints.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{{Name: "coordinators/records", Check: k.checkRecords}}
}

func (k *Keeper) checkRecords(q module.Query) module.Finding {
	var detail string
	n := 0
	per := map[string]int{}
	err := q.State.Iterate(EndpointPrefix, false, func(key, val []byte) bool {
		if err := checkRecord(key, val); err != nil {
			detail = err.Error()
			return false
		}
		e, _ := decode(val)
		if e.Updated > q.Height && q.Height > 0 {
			detail = fmt.Sprintf("%s at %s updated at %d, after height %d", e.Addr(), e.URL, e.Updated, q.Height)
			return false
		}
		per[string(e.Address)]++
		if per[string(e.Address)] > MaxEndpoints {
			detail = fmt.Sprintf("%s announced more than %d URLs", e.Addr(), MaxEndpoints)
			return false
		}
		n++
		return true
	})
	if err != nil {
		detail = err.Error()
	}
	if detail != "" {
		return module.Finding{Broken: true, Detail: detail}
	}
	return module.Finding{Detail: fmt.Sprintf("%d coordinator records whole", n), Figures: map[string]string{"coordinators": fmt.Sprint(n)}}
}

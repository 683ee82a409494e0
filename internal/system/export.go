package system

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/node"
)

// ExportOptions choose what ExportChain writes (node.ExportOptions).
type ExportOptions = node.ExportOptions

// Exported is a chain's state written as a new chain's genesis: the
// document, ready to write as config/genesis.json, and what it holds.
type Exported struct {
	Genesis        []byte    `json:"-"` // the genesis document, indented JSON
	ChainID        string    `json:"chain_id"`
	ExportedFrom   string    `json:"exported_from"`
	ExportedHeight int64     `json:"exported_height"`
	InitialHeight  int64     `json:"initial_height"`
	GenesisTime    time.Time `json:"genesis_time"`
	AppHash        string    `json:"app_hash"`
	Modules        []string  `json:"modules"`
	Validators     int       `json:"validators"`
}

// ExportChain reads the state of the stopped node in home and returns the
// genesis of a new chain that starts from it (docs/OPERATIONS.md,
// "Upgrading the chain"). The CLI reaches the node's store only through
// here: the composition root is the one place that knows the chain's
// internals.
func ExportChain(home string, o ExportOptions) (Exported, error) {
	doc, err := node.Export(home, o)
	if err != nil {
		return Exported{}, err
	}
	b, err := cmtjson.MarshalIndent(doc, "", "  ")
	if err != nil {
		return Exported{}, fmt.Errorf("export: %w", err)
	}
	var ag app.Genesis
	if err := json.Unmarshal(doc.AppState, &ag); err != nil {
		return Exported{}, fmt.Errorf("export: %w", err)
	}
	e := Exported{
		Genesis: b, ChainID: doc.ChainID, ExportedFrom: ag.State.ChainID, ExportedHeight: ag.State.Height,
		InitialHeight: doc.InitialHeight, GenesisTime: doc.GenesisTime, AppHash: ag.State.AppHash, Validators: len(doc.Validators),
	}
	for name := range ag.State.Modules {
		e.Modules = append(e.Modules, name)
	}
	slices.Sort(e.Modules)
	return e, nil
}

// ReadFaucetKey reads a faucet key file (node.ReadFaucetKey): what
// `aitbc node start --faucet-key` signs drips with.
func ReadFaucetKey(path string) (ed25519.PrivateKey, error) { return node.ReadFaucetKey(path) }

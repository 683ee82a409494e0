package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cometbft/cometbft/types"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/state"
)

// ExportOptions says what `aitbc chain export` writes.
type ExportOptions struct {
	// Height to export; 0 is the latest, the only one the state store
	// keeps (app.ErrExportHeight otherwise).
	Height int64
	// ChainID of the new chain; "" keeps the old one (the nonces carry
	// over, so old transactions still cannot be replayed).
	ChainID string
	// GenesisTime of the new chain; zero is now. It may not be before the
	// exported block's time: records count time from it (faucet periods,
	// job deadlines).
	GenesisTime time.Time
}

// ErrNodeRunning means the node's state is open in another process: an
// export reads a stopped node's state, as a Cosmos chain's export does.
var ErrNodeRunning = errors.New("node: the node's state is in use: stop the node first")

// Export reads the state of the stopped node in home and returns the
// genesis document of a new chain that starts from it at the next height,
// with the same validators and consensus parameters.
func Export(home string, o ExportOptions) (*types.GenesisDoc, error) {
	if !Exists(home) {
		return nil, fmt.Errorf("node: no genesis in %s", home)
	}
	old, err := types.GenesisDocFromFile(genesisFile(home))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	store, err := state.Open(appDBDir(home))
	if err != nil {
		// Pebble holds a lock on its directory while a node runs.
		return nil, fmt.Errorf("%w (%v)", ErrNodeRunning, err)
	}
	defer store.Close()
	a, err := app.New(store, old.ChainID, nil)
	if err != nil {
		return nil, err
	}
	g, err := a.Export(o.Height)
	if err != nil {
		return nil, err
	}
	appState, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, err
	}
	t := o.GenesisTime
	if t.IsZero() {
		t = time.Now().UTC()
	}
	if t.Before(g.State.Time) {
		return nil, fmt.Errorf("node: genesis time %s is before the exported block's time %s", t.Format(time.RFC3339), g.State.Time.Format(time.RFC3339))
	}
	doc := &types.GenesisDoc{
		ChainID:         old.ChainID,
		GenesisTime:     t,
		InitialHeight:   g.State.Height + 1,
		ConsensusParams: old.ConsensusParams,
		Validators:      old.Validators,
		AppState:        appState,
	}
	if o.ChainID != "" {
		doc.ChainID = o.ChainID
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("node: exported genesis: %w", err)
	}
	return doc, nil
}

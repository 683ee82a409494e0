package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// ChainID of the new chain; "" is NextChainID of the old one. It must
	// differ from the old: the validators start the new chain with a reset
	// signing state, and a validator may have voted on the old chain's
	// next height before it stopped — under the same chain id that vote
	// and the new chain's would be a double sign.
	ChainID string
	// GenesisTime of the new chain; zero is now. It may not be before the
	// exported block's time: records count time from it (faucet periods,
	// job deadlines).
	GenesisTime time.Time
}

// ErrNodeRunning means the node's state is open in another process: an
// export reads a stopped node's state, as a Cosmos chain's export does.
var ErrNodeRunning = errors.New("node: the node's state is in use: stop the node first")

// ErrSameChainID refuses an export that keeps the old chain's id.
var ErrSameChainID = errors.New("node: the new chain needs a new chain id")

// NextChainID is the chain id an upgrade gives the new chain by default,
// as Cosmos chains count theirs: a trailing "-N" goes up by one
// ("aitbc-devnet-1" → "aitbc-devnet-2"), else "-2" is added.
func NextChainID(old string) string {
	i := strings.LastIndexByte(old, '-')
	if i >= 0 && i+1 < len(old) {
		if n, err := strconv.ParseUint(old[i+1:], 10, 32); err == nil && old[i+1] != '0' {
			return old[:i+1] + strconv.FormatUint(n+1, 10)
		}
	}
	return old + "-2"
}

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
	switch o.ChainID {
	case "":
		doc.ChainID = NextChainID(old.ChainID)
	case old.ChainID:
		return nil, fmt.Errorf("%w: %q is the exported chain's", ErrSameChainID, o.ChainID)
	default:
		doc.ChainID = o.ChainID
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("node: exported genesis: %w", err)
	}
	return doc, nil
}

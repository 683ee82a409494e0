package testnet

import (
	"errors"
	"fmt"
	"os"

	"github.com/cometbft/cometbft/types"

	"github.com/aitbc/aitbc/internal/node"
)

// JoinOptions describe a new node home for a network that already runs.
type JoinOptions struct {
	Home    string   // the new node's home (must not hold a node yet)
	Genesis string   // path of the network's genesis.json (any node's <home>/config/genesis.json)
	Peers   []string // persistent peers, "node-id@host:port" (`aitbc node status` shows node ids)
	// Config for the new node; zero fields keep DefaultNodeConfig's.
	Config NodeConfig
}

// InitJoin makes a home for a full node (not a validator) of an existing
// network: fresh node and consensus keys, the network's genesis, and an
// aitbc-node.json that dials the given peers. `aitbc node start --home`
// then block-syncs it from genesis.
func InitJoin(o JoinOptions) (nodeID string, err error) {
	if o.Home == "" {
		return "", errors.New("testnet: join: a home directory is required")
	}
	if node.Exists(o.Home) {
		return "", fmt.Errorf("testnet: join: %s already holds a node", o.Home)
	}
	if len(o.Peers) == 0 {
		return "", errors.New("testnet: join: at least one peer (node-id@host:port) is required")
	}
	raw, err := os.ReadFile(o.Genesis)
	if err != nil {
		return "", fmt.Errorf("testnet: join: genesis: %w", err)
	}
	doc, err := types.GenesisDocFromJSON(raw)
	if err != nil {
		return "", fmt.Errorf("testnet: join: %s is not a genesis document: %w", o.Genesis, err)
	}
	if len(doc.Validators) == 0 || len(doc.AppState) == 0 {
		return "", fmt.Errorf("testnet: join: %s is not the genesis of an AITBC network (no validators or no app state)", o.Genesis)
	}
	c := DefaultNodeConfig()
	if o.Config.Moniker != "" {
		c.Moniker = o.Config.Moniker
	}
	if o.Config.BlockTime != 0 {
		c.BlockTime = o.Config.BlockTime
	}
	if o.Config.P2PListen != "" {
		c.P2PListen = o.Config.P2PListen
	}
	if o.Config.RESTListen != "" {
		c.RESTListen = o.Config.RESTListen
	}
	switch o.Config.CometRPCListen {
	case "":
	case "off":
		c.CometRPCListen = ""
	default:
		c.CometRPCListen = o.Config.CometRPCListen
	}
	if o.Config.LogLevel != "" {
		c.LogLevel = o.Config.LogLevel
	}
	c.PersistentPeers = append([]string(nil), o.Peers...)
	if err := c.Validate(); err != nil {
		return "", err
	}
	id, pub, err := genKeys(o.Home)
	if err != nil {
		return "", err
	}
	for _, v := range doc.Validators {
		if v.PubKey.Equals(pub) {
			return "", errors.New("testnet: join: the new consensus key is a genesis validator's (impossible unless keys were copied)")
		}
	}
	if err := writeFileAtomic(node.GenesisFile(o.Home), raw, 0o600); err != nil {
		return "", err
	}
	if err := c.Save(o.Home); err != nil {
		return "", err
	}
	return id, nil
}

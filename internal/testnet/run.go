package testnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aitbc/aitbc/internal/node"
	"github.com/aitbc/aitbc/internal/rpc"
)

// Running describes a node that RunNode has brought up.
type Running struct {
	Moniker   string   `json:"moniker"`
	ChainID   string   `json:"chain_id"`
	NodeID    string   `json:"node_id"`
	Height    int64    `json:"height"`
	Validator bool     `json:"validator"`
	P2P       string   `json:"p2p_listen"`       // CometBFT P2P listen address
	REST      string   `json:"rest_listen"`      // where the REST API listens, host:port
	CometRPC  string   `json:"comet_rpc_listen"` // CometBFT RPC listen address, "" when off
	Peers     []string `json:"persistent_peers"`
}

// RunNode runs the node in home with configuration c and its REST API
// until ctx ends, then stops both cleanly. ready, if not nil, is called
// once both listen. A node killed instead of stopped recovers at its next
// start: CometBFT replays the blocks the app had not committed.
func RunNode(ctx context.Context, home string, c NodeConfig, log *slog.Logger, ready func(Running)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	n, err := node.New(c.Node(home), log)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		_ = n.Stop()
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rlog := log.With("service", "rpc")
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addr, done, err := rpc.Serve(sctx, c.RESTListen, rpc.NewServer(n, node.HTTPError, reg, rlog), rlog)
	if err != nil {
		_ = n.Stop()
		return fmt.Errorf("testnet: node REST API on %s: %w", c.RESTListen, err)
	}
	if ready != nil {
		s := n.Sync()
		ready(Running{
			Moniker: c.Moniker, ChainID: n.ChainID(), NodeID: n.NodeID(), Height: s.LatestBlockHeight,
			Validator: s.Validator, P2P: c.P2PListen, REST: addr.String(), CometRPC: c.CometRPCListen, Peers: c.PersistentPeers,
		})
	}
	var serveErr error
	select {
	case <-ctx.Done():
		cancel()
		serveErr = <-done
	case serveErr = <-done:
	}
	if serveErr != nil {
		serveErr = fmt.Errorf("testnet: node REST API: %w", serveErr)
	}
	log.Info("stopping node")
	return errors.Join(serveErr, n.Stop())
}

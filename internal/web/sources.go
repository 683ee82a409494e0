package web

import (
	"context"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/walletd"
)

// Node is what the pages read from a chain node; *rpc.Client is one.
type Node interface {
	module.Getter
	Head(ctx context.Context) (rpc.Head, error)
	Block(ctx context.Context, height int64) (rpc.Block, error)
	BlockTransactions(ctx context.Context, height int64, offset, limit int) (rpc.BlockTxs, error)
	Tx(ctx context.Context, hash string) (rpc.Transaction, error)
	Account(ctx context.Context, a address.Address) (rpc.Account, error)
	Transactions(ctx context.Context, a address.Address, limit int) (rpc.TxList, error)
	Chain(ctx context.Context) (rpc.ChainInfo, error)
	Audit(ctx context.Context) (module.Audit, error)
	Validators(ctx context.Context, window int) (rpc.ValidatorSet, error)
}

var _ Node = (*rpc.Client)(nil)

// Coordinator is a coordinator's API as the pages use it: its public
// routes, registering a signed-in wallet as a tenant, and acting as that
// tenant. CoordinatorClient is the HTTP one.
type Coordinator interface {
	Health(ctx context.Context) (coordinator.Health, error)
	Miners(ctx context.Context) ([]coordinator.MinerView, error)
	Register(ctx context.Context, r coordinator.RegisterRequest) (string, error)
	// Tenant is the coordinator as the customer holding apiKey.
	Tenant(apiKey string) Tenant
}

// Tenant is the coordinator as one customer; *coordinator.Client is one.
type Tenant interface {
	Submit(ctx context.Context, r coordinator.JobRequest) (coordinator.JobView, error)
	Results(ctx context.Context, id string) (coordinator.JobView, error)
	Jobs(ctx context.Context, limit int) ([]coordinator.JobView, error)
	Stream(ctx context.Context, id string, onEvent func(coordinator.Event)) error
}

var _ Tenant = (*coordinator.Client)(nil)

// CoordinatorClient reaches a coordinator over HTTP.
type CoordinatorClient struct{ URL string }

func (c CoordinatorClient) public() *coordinator.Client { return coordinator.NewClient(c.URL, "") }

// Health implements Coordinator.
func (c CoordinatorClient) Health(ctx context.Context) (coordinator.Health, error) {
	return c.public().Health(ctx)
}

// Miners implements Coordinator.
func (c CoordinatorClient) Miners(ctx context.Context) ([]coordinator.MinerView, error) {
	return c.public().Miners(ctx)
}

// Register implements Coordinator.
func (c CoordinatorClient) Register(ctx context.Context, r coordinator.RegisterRequest) (string, error) {
	return c.public().Register(ctx, r)
}

// Tenant implements Coordinator.
func (c CoordinatorClient) Tenant(apiKey string) Tenant { return coordinator.NewClient(c.URL, apiKey) }

// Signer signs messages with wallets held by the wallet daemon;
// *walletd.Client and *walletd.Service are both one.
type Signer interface {
	SignMessage(ctx context.Context, name, password, domain string, payload []byte) (walletd.Signature, error)
}

var (
	_ Signer = (*walletd.Client)(nil)
	_ Signer = (*walletd.Service)(nil)
)

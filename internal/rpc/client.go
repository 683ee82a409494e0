package rpc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Client talks to a node's REST API. Errors from the node are
// *httpx.APIError whose Code is the chain error's name
// ("insufficient_funds", "invalid_nonce", ...).
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// NewClient returns a client for the node at baseURL (e.g. http://127.0.0.1:8006).
func NewClient(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	err := httpx.Do(ctx, c.HTTP, method, c.BaseURL+path, nil, body, out)
	if err != nil {
		if _, ok := err.(*httpx.APIError); ok {
			return err
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("node at %s is not reachable (is `aitbc devnet` running? set --node or AITBC_NODE): %w", c.BaseURL, err)
		}
		return fmt.Errorf("node %s: %w", c.BaseURL, err)
	}
	return nil
}

// Health returns GET /api/v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.do(ctx, http.MethodGet, "/api/v1/health", nil, &h)
}

// Chain returns the chain id, parameters and supply.
func (c *Client) Chain(ctx context.Context) (ChainInfo, error) {
	var v ChainInfo
	return v, c.do(ctx, http.MethodGet, "/api/v1/chain", nil, &v)
}

// Account returns the balance and next nonce of addr.
func (c *Client) Account(ctx context.Context, addr address.Address) (Account, error) {
	var v Account
	return v, c.do(ctx, http.MethodGet, "/api/v1/account/"+addr.String(), nil, &v)
}

// Submit sends signed transaction bytes; it returns once the node's
// CheckTx accepted them into the mempool (not yet committed).
func (c *Client) Submit(ctx context.Context, txBytes []byte) (SubmitResult, error) {
	var v SubmitResult
	return v, c.do(ctx, http.MethodPost, "/api/v1/transaction/submit", SubmitRequest{Tx: base64.StdEncoding.EncodeToString(txBytes)}, &v)
}

// SubmitMany sends up to MaxSubmitBatch signed transactions in one request;
// each is admitted or refused on its own, in order (see SubmitBatchResult).
func (c *Client) SubmitMany(ctx context.Context, txs [][]byte) (SubmitBatchResult, error) {
	req := SubmitBatchRequest{Txs: make([]string, len(txs))}
	for i, t := range txs {
		req.Txs[i] = base64.StdEncoding.EncodeToString(t)
	}
	var v SubmitBatchResult
	return v, c.do(ctx, http.MethodPost, "/api/v1/transactions/submit", req, &v)
}

// Tx looks a transaction up by hash.
func (c *Client) Tx(ctx context.Context, hash string) (Transaction, error) {
	var v Transaction
	return v, c.do(ctx, http.MethodPost, "/api/v1/transaction/get", TxGetRequest{TxHash: hash}, &v)
}

// Proof returns the inclusion proof of a committed transaction.
func (c *Client) Proof(ctx context.Context, hash string) (TxProof, error) {
	var v TxProof
	return v, c.do(ctx, http.MethodGet, "/api/v1/transaction/"+url.PathEscape(hash)+"/proof", nil, &v)
}

// Block returns the block at height, or the latest when height is 0.
func (c *Client) Block(ctx context.Context, height int64) (Block, error) {
	var v Block
	p := "/api/v1/block/latest"
	if height > 0 {
		p = fmt.Sprintf("/api/v1/block/%d", height)
	}
	return v, c.do(ctx, http.MethodGet, p, nil, &v)
}

// Sync returns the node's sync status.
func (c *Client) Sync(ctx context.Context) (SyncStatus, error) {
	var v SyncStatus
	return v, c.do(ctx, http.MethodGet, "/api/v1/sync/status", nil, &v)
}

// Transactions lists the newest transactions sent or received by addr.
func (c *Client) Transactions(ctx context.Context, addr address.Address, limit int) (TxList, error) {
	var v TxList
	return v, c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/account/%s/transactions?limit=%d", addr, limit), nil, &v)
}

// WaitTx polls until the transaction is committed or failed, or ctx ends.
func (c *Client) WaitTx(ctx context.Context, hash string, every time.Duration) (Transaction, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		v, err := c.Tx(ctx, hash)
		if err == nil && v.Status != "pending" {
			return v, nil
		}
		if err != nil && !httpx.IsCode(err, "tx_not_found") {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("waiting for %s: %w", hash, ctx.Err())
		case <-t.C:
		}
	}
}

// Miners lists the registered miners.
func (c *Client) Miners(ctx context.Context) (MinerList, error) {
	var v MinerList
	return v, c.do(ctx, http.MethodGet, "/api/v1/miners", nil, &v)
}

// Miner returns one registered miner.
func (c *Client) Miner(ctx context.Context, a address.Address) (Miner, error) {
	var v Miner
	return v, c.do(ctx, http.MethodGet, "/api/v1/miners/"+a.String(), nil, &v)
}

// Job returns a job's on-chain record (id: 32 hex digits).
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var v Job
	return v, c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &v)
}

// Deposit returns a customer's deposit with a coordinator.
func (c *Client) Deposit(ctx context.Context, customer, coordinator address.Address) (Deposit, error) {
	var v Deposit
	return v, c.do(ctx, http.MethodGet, "/api/v1/deposits/"+customer.String()+"/"+coordinator.String(), nil, &v)
}

// Receipt reports whether a receipt hash is anchored on chain.
func (c *Client) Receipt(ctx context.Context, hash string) (ReceiptAnchor, error) {
	var v ReceiptAnchor
	return v, c.do(ctx, http.MethodGet, "/api/v1/receipts/"+url.PathEscape(hash), nil, &v)
}

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
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Client talks to a node's REST API. Errors from the node are
// *httpx.APIError whose Code is the chain error's name
// ("insufficient_funds", "invalid_nonce", ...).
//
// A client can know several nodes of one network: it uses one until that
// node stops answering (connection refused, reset, timed out), then moves
// to the next and stays there. A node that answers, even with an error, is
// never skipped: the error is the answer. Retrying a request on another
// node is safe because every write is a signed transaction, identified by
// its hash: the same bytes sent twice are one transaction.
type Client struct {
	BaseURL string // the first node; see Endpoint for the one in use
	HTTP    *http.Client

	endpoints []string
	cur       atomic.Int32 // index into endpoints of the node in use
	onSwitch  func(from, to string, err error)
}

// clientMaxConns bounds one Client's connections to a node.
const clientMaxConns = 64

// NewClient returns a client for the node at baseURL (e.g.
// http://127.0.0.1:8006), or for several nodes given as a comma-separated
// list, tried in order when one goes away.
func NewClient(baseURL string) *Client {
	var eps []string
	for _, u := range strings.Split(baseURL, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			eps = append(eps, u)
		}
	}
	if len(eps) == 0 {
		eps = []string{""}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A node that is gone should cost a failover seconds, not the
	// request's whole timeout.
	tr.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	// A node serves at most httpx.DefaultMaxConnsPerClient (256)
	// connections to one address, and a devnet's services all reach it from
	// 127.0.0.1: a client that opened one connection per concurrent request
	// (the web pages under 200 viewers did) took the others' share and got
	// 503 overloaded. Requests beyond these wait for a connection instead,
	// and idle ones are kept for reuse rather than redialed.
	tr.MaxConnsPerHost = clientMaxConns
	tr.MaxIdleConnsPerHost = clientMaxConns
	return &Client{BaseURL: eps[0], endpoints: eps, HTTP: &http.Client{Timeout: 30 * time.Second, Transport: tr}}
}

// Endpoints lists the nodes this client knows, in failover order.
func (c *Client) Endpoints() []string { return append([]string(nil), c.endpoints...) }

// Endpoint is the node the client currently uses.
func (c *Client) Endpoint() string { return c.endpoints[int(c.cur.Load())%len(c.endpoints)] }

// OnFailover sets a function called when the client moves to another node
// (for a log line); call it before the client is shared.
func (c *Client) OnFailover(fn func(from, to string, err error)) { c.onSwitch = fn }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	n := len(c.endpoints)
	start := int(c.cur.Load()) % n
	var errs []string
	for i := 0; i < n; i++ {
		idx := (start + i) % n
		base := c.endpoints[idx]
		err := httpx.Do(ctx, c.HTTP, method, base+path, nil, body, out)
		var apiErr *httpx.APIError
		if err == nil || errors.As(err, &apiErr) {
			if idx != start && c.cur.CompareAndSwap(int32(start), int32(idx)) && c.onSwitch != nil {
				c.onSwitch(c.endpoints[start], base, errors.New(errs[0]))
			}
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("node %s: %w", base, err)
		}
		var op *net.OpError
		if n == 1 && errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("node at %s is not reachable (is `aitbc devnet` running? set --node or AITBC_NODE): %w", base, err)
		}
		if n == 1 {
			return fmt.Errorf("node %s: %w", base, err)
		}
		errs = append(errs, fmt.Sprintf("%s: %v", base, err))
	}
	return fmt.Errorf("%w: none of %d nodes answered: %s", ErrNoNode, n, strings.Join(errs, "; "))
}

// ErrNoNode is returned when no node of a multi-node client answers.
var ErrNoNode = errors.New("no node reachable")

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

// Head returns the latest committed block's height, hash and time: the
// cheapest way to watch for new blocks.
func (c *Client) Head(ctx context.Context) (Head, error) {
	var v Head
	return v, c.do(ctx, http.MethodGet, "/rpc/head", nil, &v)
}

// BlockTransactions returns up to limit (at most MaxBlockTxsPage) of the
// block's transactions from index offset, decoded.
func (c *Client) BlockTransactions(ctx context.Context, height int64, offset, limit int) (BlockTxs, error) {
	var v BlockTxs
	return v, c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/block/%d/transactions?offset=%d&limit=%d", height, offset, limit), nil, &v)
}

// Validators returns the validator set with how many of the last window
// blocks each signed and proposed.
func (c *Client) Validators(ctx context.Context, window int) (ValidatorSet, error) {
	var v ValidatorSet
	return v, c.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/validators?window=%d", window), nil, &v)
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

// GetJSON fetches path and decodes its JSON answer into out: modules build
// their typed queries on it (module.Getter).
func (c *Client) GetJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// Audit runs the chain's invariants on the node (GET /api/v1/audit).
func (c *Client) Audit(ctx context.Context) (module.Audit, error) {
	var v module.Audit
	return v, c.do(ctx, http.MethodGet, "/api/v1/audit", nil, &v)
}

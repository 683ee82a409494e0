package walletd

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
)

// Client talks to a wallet daemon. Its methods match the Service's, and
// its errors match them too: errors.Is finds the same sentinels
// (keystore.ErrWrongPassword, ErrLocked, bank.ErrInsufficientFunds, ...),
// and the message is the daemon's.
type Client struct {
	BaseURL string
	APIKey  string
	HTTP    *http.Client
}

// NewClient returns a client for the daemon at baseURL (e.g.
// http://127.0.0.1:8002) using apiKey.
func NewClient(baseURL, apiKey string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: apiKey, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	h := http.Header{}
	h.Set(APIKeyHeader, c.APIKey)
	err := httpx.Do(ctx, c.HTTP, method, c.BaseURL+path, h, body, out)
	if err == nil {
		return nil
	}
	var api *httpx.APIError
	if errors.As(err, &api) {
		return fromAPIError(api)
	}
	return fmt.Errorf("wallet daemon %s: %w", c.BaseURL, err)
}

// onWallet calls an endpoint under /api/v1/wallets/{name}, refusing an
// invalid name before it can reach another route.
func (c *Client) onWallet(ctx context.Context, method, name, op string, body, out any) error {
	if err := keystore.ValidateName(name); err != nil {
		return err
	}
	p := "/api/v1/wallets/" + url.PathEscape(name)
	if op != "" {
		p += "/" + op
	}
	return c.do(ctx, method, p, body, out)
}

// Health returns GET /api/v1/health (it needs the API key too, so it also
// checks the key).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.do(ctx, http.MethodGet, "/api/v1/health", nil, &h)
}

// Create makes a new wallet.
func (c *Client) Create(ctx context.Context, name, password string) (WalletInfo, error) {
	var v WalletInfo
	return v, c.do(ctx, http.MethodPost, "/api/v1/wallets", CreateRequest{Name: name, Password: password}, &v)
}

// Restore makes a wallet from a recovery phrase.
func (c *Client) Restore(ctx context.Context, name, mnemonic, password string) (WalletInfo, error) {
	var v WalletInfo
	return v, c.do(ctx, http.MethodPost, "/api/v1/wallets/restore", RestoreRequest{Name: name, Mnemonic: mnemonic, Password: password}, &v)
}

// List returns every wallet.
func (c *Client) List(ctx context.Context) ([]WalletInfo, error) {
	var v WalletList
	return v.Wallets, c.do(ctx, http.MethodGet, "/api/v1/wallets", nil, &v)
}

// Get returns one wallet.
func (c *Client) Get(ctx context.Context, name string) (WalletInfo, error) {
	var v WalletInfo
	return v, c.onWallet(ctx, http.MethodGet, name, "", nil, &v)
}

// Address returns a wallet's address.
func (c *Client) Address(ctx context.Context, name string) (address.Address, error) {
	w, err := c.Get(ctx, name)
	return w.Address, err
}

// Backup returns a wallet's recovery phrase.
func (c *Client) Backup(ctx context.Context, name, password string) (Backup, error) {
	var v Backup
	return v, c.onWallet(ctx, http.MethodPost, name, "backup", PasswordRequest{Password: password}, &v)
}

// Unlock keeps a wallet's key in the daemon for timeout (0: the default).
func (c *Client) Unlock(ctx context.Context, name, password string, timeout time.Duration) (WalletInfo, error) {
	req := UnlockRequest{Password: password}
	if timeout != 0 {
		req.Timeout = []byte(`"` + timeout.String() + `"`)
	}
	var v WalletInfo
	return v, c.onWallet(ctx, http.MethodPost, name, "unlock", req, &v)
}

// Lock wipes a wallet's unlocked key in the daemon.
func (c *Client) Lock(ctx context.Context, name string) (WalletInfo, error) {
	var v WalletInfo
	return v, c.onWallet(ctx, http.MethodPost, name, "lock", nil, &v)
}

// Balance returns the balance of wallet name ("" for the daemon's default).
func (c *Client) Balance(ctx context.Context, name string) (Balance, error) {
	p := "/api/v1/wallet/balance"
	if name != "" {
		p += "?name=" + url.QueryEscape(name)
	}
	var v Balance
	return v, c.do(ctx, http.MethodGet, p, nil, &v)
}

// BalanceOf returns the balance of any address.
func (c *Client) BalanceOf(ctx context.Context, addr address.Address) (Balance, error) {
	var v Balance
	return v, c.do(ctx, http.MethodGet, "/api/v1/wallet/balance?address="+addr.String(), nil, &v)
}

func amountJSON(a coin.Amount) []byte { return []byte(`"` + a.String() + `"`) }

// Send transfers amount to to from wallet name.
func (c *Client) Send(ctx context.Context, name, password string, to address.Address, amount, fee coin.Amount) (Submitted, error) {
	req := SendRequest{To: to.String(), Amount: amountJSON(amount), Password: password}
	if fee != 0 {
		req.Fee = amountJSON(fee)
	}
	var v Submitted
	return v, c.onWallet(ctx, http.MethodPost, name, "send", req, &v)
}

// SignAndSubmit has the daemon sign and submit any module message.
func (c *Client) SignAndSubmit(ctx context.Context, name, password string, msg tx.Msg, fee coin.Amount) (Submitted, error) {
	req := SubmitRequest{MsgType: msg.Type, Body: base64.StdEncoding.EncodeToString(msg.Body), Password: password}
	if fee != 0 {
		req.Fee = amountJSON(fee)
	}
	var v Submitted
	return v, c.onWallet(ctx, http.MethodPost, name, "submit", req, &v)
}

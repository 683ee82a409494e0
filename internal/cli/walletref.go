package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/httpx"
)

// walletAPIKey is the wallet daemon's key: AITBC_WALLET_API_KEY, or the
// file the daemon writes under the home directory.
func (g *Globals) walletAPIKey() string {
	if k := os.Getenv("AITBC_WALLET_API_KEY"); k != "" {
		return k
	}
	b, err := os.ReadFile(filepath.Join(g.Home, "wallet", "api-key"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// walletAddress resolves a wallet name to its address through the wallet
// daemon.
func (g *Globals) walletAddress(ctx context.Context, name string) (address.Address, error) {
	var out struct {
		Address address.Address `json:"address"`
	}
	h := http.Header{"X-API-Key": {g.walletAPIKey()}}
	err := httpx.Do(ctx, nil, http.MethodGet, strings.TrimRight(g.WalletURL, "/")+"/api/v1/wallets/"+url.PathEscape(name), h, nil, &out)
	if err != nil {
		if _, ok := err.(*httpx.APIError); ok {
			return address.Address{}, err
		}
		return address.Address{}, fmt.Errorf("wallet daemon at %s: %w (is `aitbc devnet` running?)", g.WalletURL, err)
	}
	return out.Address, nil
}

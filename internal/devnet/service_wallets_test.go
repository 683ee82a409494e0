package devnet_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/walletd"
)

// The coordinator's and miners' wallets, unlocked in the devnet's wallet
// daemon, are kept apart from the customers': the daemon's admin key (the
// one the CLI, customers and the web pages use) cannot sign with them; the
// key the devnet writes to walletd.ServiceKeyPath opens them and nothing
// else; a restart keeps that key.
func TestDevnetServiceWalletsKeptApartFromCustomers(t *testing.T) {
	e := start(t, devnet.Config{})
	ctx := context.Background()
	admin, err := walletd.ReadAPIKey(e.home)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(walletd.ServiceKeyPath(e.home))
	if err != nil {
		t.Fatal(err)
	}
	serviceKey := strings.TrimSpace(string(b))
	adminC := walletd.NewClient(e.d.WalletURL(), admin)
	serviceC := walletd.NewClient(e.d.WalletURL(), serviceKey)
	payload := []byte("x")
	for _, w := range []string{devnet.CoordinatorWallet, devnet.MinerWallet(0)} {
		if _, err := adminC.SignMessage(ctx, w, "", "AITBC/tenant/v2\x00", payload); !errors.Is(err, walletd.ErrServiceWallet) {
			t.Errorf("admin key signing with %s: %v, want service_wallet", w, err)
		}
		if _, err := serviceC.SignMessage(ctx, w, "", "AITBC/tenant/v2\x00", payload); err != nil {
			t.Errorf("service key signing with %s (unlocked for the devnet): %v", w, err)
		}
	}
	if _, err := serviceC.Get(ctx, devnet.GenesisWallet); !errors.Is(err, walletd.ErrOutOfScope) {
		t.Errorf("service key reading a customer wallet: %v, want wallet_out_of_scope", err)
	}
	if _, err := adminC.SignMessage(ctx, devnet.GenesisWallet, "123", "AITBC/tenant/v2\x00", payload); err != nil {
		t.Errorf("admin key signing with a customer wallet: %v", err)
	}
	// The web pages act for customers too.
	if _, err := e.d.Wallets.Customers().SignMessage(ctx, devnet.CoordinatorWallet, "123", "AITBC/tenant/v2\x00", payload); !errors.Is(err, walletd.ErrServiceWallet) {
		t.Errorf("customer signer with the coordinator's wallet: %v", err)
	}

	e.stop()
	e2 := start(t, e.cfg)
	if b, _ := os.ReadFile(walletd.ServiceKeyPath(e2.home)); strings.TrimSpace(string(b)) != serviceKey {
		t.Error("the service key changed across a restart")
	}
	if keys, err := walletd.NewClient(e2.d.WalletURL(), admin).Keys(ctx); err != nil || len(keys) != 1 {
		t.Errorf("scoped keys after a restart: %+v %v", keys, err)
	}
}

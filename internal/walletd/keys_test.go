package walletd_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/walletd"
)

// A key scoped to wallet A cannot read, unlock or sign with wallet B, nor
// list it, nor manage keys: 403 with a specific code, and B is untouched.
// With A it does what the admin key does.
func TestScopedKeyOpensOnlyItsWallets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	addrA := e.mustCreate("alice", "pw")
	e.mustCreate("bob", "pw")
	k, err := e.client.CreateKey(ctx, []string{"alice"}, "alice's app")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Key, "aitbcw_") || len(k.ID) != 16 || len(k.Wallets) != 1 || k.Wallets[0] != "alice" {
		t.Fatalf("new key %+v", k)
	}

	// Wallet B: every operation refused, before the password is looked at.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/wallets/bob", ""},
		{"GET", "/api/v1/wallet/balance?name=bob", ""},
		{"POST", "/api/v1/wallets/bob/unlock", `{"password":"pw"}`},
		{"POST", "/api/v1/wallets/bob/lock", ""},
		{"POST", "/api/v1/wallets/bob/backup", `{"password":"pw"}`},
		{"POST", "/api/v1/wallets/bob/send", `{"to":"` + addrA + `","amount":"1","password":"pw"}`},
		{"POST", "/api/v1/wallets/bob/submit", `{"type":"bank/send","body":"","password":"pw"}`},
		{"POST", "/api/v1/wallets/bob/sign-message", `{"domain":"AITBC/tenant/v2","payload":"AA==","password":"pw"}`},
		{"POST", "/api/v1/wallets", `{"name":"carol","password":"pw"}`},
	} {
		r := e.callKey(k.Key, c.method, c.path, c.body)
		if r.status != http.StatusForbidden || r.code() != "wallet_out_of_scope" {
			t.Errorf("%s %s with alice's key: %d %q, want 403 wallet_out_of_scope", c.method, c.path, r.status, r.code())
		}
	}
	if w, err := e.svc.Get(ctx, "bob"); err != nil || w.Unlocked {
		t.Fatalf("bob after the refused calls: %+v %v", w, err)
	}
	if _, err := e.svc.Get(ctx, "carol"); err == nil {
		t.Fatal("a scoped key created a wallet outside its scope")
	}
	// Key management and metrics are the admin key's.
	for _, c := range []struct{ method, path string }{{"GET", "/api/v1/keys"}, {"POST", "/api/v1/keys"}, {"DELETE", "/api/v1/keys/" + k.ID}, {"GET", "/metrics"}} {
		r := e.callKey(k.Key, c.method, c.path, `{"wallets":["bob"]}`)
		if r.status != http.StatusForbidden || r.code() != "admin_key_required" {
			t.Errorf("%s %s with a scoped key: %d %q, want 403 admin_key_required", c.method, c.path, r.status, r.code())
		}
	}

	// Wallet A: read, list (only A), unlock, sign.
	scoped := walletd.NewClient(e.url, k.Key)
	list, err := scoped.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "alice" {
		t.Fatalf("scoped list: %+v %v", list, err)
	}
	if _, err := scoped.Unlock(ctx, "alice", "pw", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := scoped.SignMessage(ctx, "alice", "", "AITBC/tenant/v2\x00", []byte("x")); err != nil {
		t.Fatalf("signing with its own wallet: %v", err)
	}
	// The client maps the code back to the sentinel.
	if _, err := scoped.Get(ctx, "bob"); !errors.Is(err, walletd.ErrOutOfScope) {
		t.Fatalf("client error for bob: %v", err)
	}

	// Revoked: the key stops at once; the admin key still opens both.
	if err := e.client.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	e.want(e.callKey(k.Key, "GET", "/api/v1/wallets/alice", ""), http.StatusUnauthorized, "unauthorized")
	if err := e.client.RevokeKey(ctx, k.ID); !errors.Is(err, walletd.ErrKeyNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	e.want(e.call("GET", "/api/v1/wallets/bob", ""), http.StatusOK, "")
}

// Scoped keys survive a daemon restart, are stored hashed in a private
// file, and bad requests create nothing.
func TestScopedKeysPersistHashed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.mustCreate("alice", "pw")
	k, err := e.client.CreateKey(ctx, []string{"alice", "alice", "later-wallet"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Wallets) != 2 {
		t.Fatalf("duplicates kept: %v", k.Wallets)
	}
	for _, bad := range []struct{ body, code string }{
		{`{"wallets":[]}`, "invalid_request"},
		{`{"wallets":["../x"]}`, "invalid_name"},
		{`{"wallets":["a"],"label":"` + strings.Repeat("x", 65) + `"}`, "invalid_request"},
	} {
		e.want(e.call("POST", "/api/v1/keys", bad.body), http.StatusBadRequest, bad.code)
	}
	keys, err := e.client.Keys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys after bad requests: %+v %v", keys, err)
	}
	b, err := os.ReadFile(walletd.KeysPath(e.home))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), k.Key) || strings.Contains(string(b), strings.TrimPrefix(k.Key, "aitbcw_")) {
		t.Fatal("the keys file holds the key itself")
	}
	var recs []map[string]any
	if err := json.Unmarshal(b, &recs); err != nil || len(recs) != 1 {
		t.Fatalf("keys file: %v %s", err, b)
	}
	if fi, _ := os.Stat(walletd.KeysPath(e.home)); fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("keys file mode %v", fi.Mode().Perm())
	}

	srv, err := walletd.NewServer(walletd.Config{Home: e.home, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if w, ok := srv.KeyScope(k.Key); !ok || len(w) != 2 || w[0] != "alice" {
		t.Fatalf("after restart: %v %v", w, ok)
	}
	if _, ok := srv.KeyScope(testKey); ok {
		t.Fatal("the admin key reported as scoped")
	}
}

// Service wallets are kept apart: the admin key may read them but not
// unlock or sign with them; a key scoped to them can; in-process callers
// (the coordinator and miners) are unaffected.
func TestServiceWalletsNeedTheirOwnKey(t *testing.T) {
	e := newEnv(t, func(c *walletd.Config) { c.ServiceWallets = []string{"coord"} })
	ctx := context.Background()
	if _, err := e.svc.Create(ctx, "coord", "pw"); err != nil {
		t.Fatal(err)
	}
	e.want(e.call("GET", "/api/v1/wallets/coord", ""), http.StatusOK, "")
	for _, path := range []string{"unlock", "backup", "sign-message"} {
		r := e.call("POST", "/api/v1/wallets/coord/"+path, `{"password":"pw","domain":"AITBC/tenant/v2","payload":"AA=="}`)
		e.want(r, http.StatusForbidden, "service_wallet")
	}
	if _, err := e.svc.Unlock(ctx, "coord", "pw", 0); err != nil {
		t.Fatalf("in-process unlock: %v", err)
	}
	// Unlocked in the daemon, still not usable with the admin key.
	e.want(e.call("POST", "/api/v1/wallets/coord/sign-message", `{"domain":"AITBC/tenant/v2","payload":"AA=="}`), http.StatusForbidden, "service_wallet")
	k, err := e.srv.CreateKey([]string{"coord"}, "service")
	if err != nil {
		t.Fatal(err)
	}
	e.want(e.callKey(k.Key, "POST", "/api/v1/wallets/coord/sign-message", `{"domain":"AITBC/tenant/v2","payload":"AA=="}`), http.StatusOK, "")
}

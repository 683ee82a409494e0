package walletd_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/walletd"
)

func TestSignMessageOnlyInAllowedDomains(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	info, err := e.client.Create(ctx, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("coordinator+address+timestamp")
	const domain = "AITBC/tenant/v2\x00"
	sig, err := e.client.SignMessage(ctx, "alice", "pw", domain, payload)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := hex.DecodeString(sig.PubKey)
	s, _ := hex.DecodeString(sig.Signature)
	digest := sha256.Sum256(append([]byte(domain), payload...))
	if sig.Address != info.Address || !ed25519.Verify(pub, digest[:], s) {
		t.Fatal("signature does not verify over sha256(domain || payload) with the wallet's key")
	}
	// A transaction digest's domain, the retired tenant/v1 (it did not
	// cover the tenant's name), or any other, is refused.
	for _, d := range []string{"AITBC/tx/v1\x00", "", "AITBC/tenant/v2", "AITBC/tenant/v1\x00", "anything\x00"} {
		if _, err := e.svc.SignMessage(ctx, "alice", "pw", d, payload); !errors.Is(err, walletd.ErrInvalidRequest) {
			t.Errorf("domain %q: %v, want ErrInvalidRequest", d, err)
		}
	}
	if r := e.call("POST", "/api/v1/wallets/alice/sign-message", `{"domain":"AITBC/tx/v1","payload":"AA=="}`); r.status != 400 {
		t.Errorf("HTTP tx-domain request: %d %s", r.status, r.raw)
	}
	if _, err := e.client.SignMessage(ctx, "alice", "wrong", domain, payload); !errors.Is(err, keystore.ErrWrongPassword) {
		t.Error("wrong password accepted")
	}
	if _, err := e.client.SignMessage(ctx, "alice", "", domain, payload); !errors.Is(err, walletd.ErrLocked) {
		t.Errorf("locked wallet signed: %v", err)
	}
}

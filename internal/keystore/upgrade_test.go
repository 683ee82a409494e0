package keystore_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aitbc/aitbc/internal/keystore"
)

func storedKDF(t *testing.T, s *keystore.Store, name string) keystore.KDFParams {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.Path(), name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		KDF keystore.KDFParams `json:"kdf"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return f.KDF
}

// Finding 6: new keystores use scrypt at current guidance (N=2^17, r=8);
// files written with weaker parameters still open, and a successful
// unlock rewrites them with the store's parameters in place (same wallet,
// same password); a wrong password changes nothing.
func TestWeakKeystoreIsUpgradedOnUnlock(t *testing.T) {
	if p := keystore.DefaultKDF(); p.N < 1<<17 || p.R < 8 {
		t.Fatalf("default scrypt N=%d r=%d is below N=2^17, r=8", p.N, p.R)
	}
	dir := t.TempDir()
	weak := keystore.KDFParams{Name: "scrypt", N: 1 << 4, R: 8, P: 1}
	strong := keystore.KDFParams{Name: "scrypt", N: 1 << 6, R: 8, P: 1}
	old, err := keystore.New(dir, keystore.WithKDF(weak))
	if err != nil {
		t.Fatal(err)
	}
	info, err := old.Create("w", "pw")
	if err != nil {
		t.Fatal(err)
	}
	s, err := keystore.New(dir, keystore.WithKDF(strong))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unlock("w", "wrong"); !errors.Is(err, keystore.ErrWrongPassword) {
		t.Fatal(err)
	}
	if got := storedKDF(t, s, "w"); got != weak {
		t.Fatalf("a wrong password rewrote the file: %+v", got)
	}
	k, err := s.Unlock("w", "pw")
	if err != nil {
		t.Fatal(err)
	}
	k.Wipe()
	if got := storedKDF(t, s, "w"); got != strong {
		t.Fatalf("after unlock the file has %+v, want %+v", got, strong)
	}
	k, err = old.Unlock("w", "pw") // any store reads it; a weaker one does not downgrade it
	if err != nil || k.Address() != info.Address {
		t.Fatalf("upgraded wallet: %v", err)
	}
	k.Wipe()
	if got := storedKDF(t, s, "w"); got != strong {
		t.Fatalf("a weaker store downgraded the file to %+v", got)
	}
	fi, _ := os.Stat(filepath.Join(dir, "w.json"))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("upgraded file mode %v", fi.Mode().Perm())
	}
	if m, err := s.Mnemonic("w", "pw"); err != nil || m == "" {
		t.Fatalf("mnemonic after upgrade: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files in the store, want 1 (no temporary file left)", len(entries))
	}
}

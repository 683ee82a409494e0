package keystore_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/keystore"
)

func newStore(t *testing.T) *keystore.Store {
	t.Helper()
	s, err := keystore.ForHome(t.TempDir(), keystore.WithKDF(keystore.InsecureTestKDF()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateUnlockRoundTrip(t *testing.T) {
	s := newStore(t)
	info, err := s.Create("customer-1", "123")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "customer-1" || info.Address.IsZero() || info.Created.IsZero() {
		t.Fatalf("info = %+v", info)
	}
	got, err := s.Get("customer-1")
	if err != nil || got != info {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, info)
	}
	k, err := s.Unlock("customer-1", "123")
	if err != nil {
		t.Fatal(err)
	}
	if k.Address() != info.Address || address.FromPubKey(k.PublicKey()) != info.Address {
		t.Fatalf("key address %s, wallet %s", k.Address(), info.Address)
	}
	// The key signs transactions that verify.
	x := &tx.Tx{ChainID: "test", Nonce: 0, Fee: 1, Msg: bank.NewSendMsg(info.Address, 5)}
	if err := k.SignTx(x); err != nil {
		t.Fatal(err)
	}
	if err := x.Verify(); err != nil || x.Sender() != info.Address {
		t.Fatalf("signed tx: %v, sender %s", err, x.Sender())
	}
	k.Wipe()
	if !k.Wiped() || k.PublicKey() != nil {
		t.Fatal("wiped key still holds a key")
	}
	if err := k.SignTx(x); err == nil {
		t.Fatal("wiped key signed")
	}
	m, err := s.Mnemonic("customer-1", "123")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(m)); n != 24 {
		t.Fatalf("mnemonic has %d words, want 24", n)
	}
	if a, _ := keystore.AddressFromMnemonic(m); a != info.Address {
		t.Fatalf("mnemonic gives %s, wallet is %s", a, info.Address)
	}
}

func TestDefaultKDFWorks(t *testing.T) {
	s, err := keystore.ForHome(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("w", "pw"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(s.Path(), "w.json"))
	var f struct {
		KDF keystore.KDFParams `json:"kdf"`
	}
	_ = json.Unmarshal(data, &f)
	if f.KDF != keystore.DefaultKDF() {
		t.Fatalf("stored kdf %+v, want %+v", f.KDF, keystore.DefaultKDF())
	}
	if _, err := s.Unlock("w", "pw"); err != nil {
		t.Fatal(err)
	}
}

func TestWrongAndEmptyPassword(t *testing.T) {
	s := newStore(t)
	if _, err := s.Create("w", "right"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unlock("w", "wrong"); !errors.Is(err, keystore.ErrWrongPassword) {
		t.Fatalf("Unlock wrong: %v", err)
	}
	if _, err := s.Mnemonic("w", "wrong"); !errors.Is(err, keystore.ErrWrongPassword) {
		t.Fatalf("Mnemonic wrong: %v", err)
	}
	if _, err := s.Unlock("w", ""); !errors.Is(err, keystore.ErrEmptyPassword) {
		t.Fatalf("Unlock empty: %v", err)
	}
	if _, err := s.Create("x", ""); !errors.Is(err, keystore.ErrEmptyPassword) {
		t.Fatalf("Create empty: %v", err)
	}
	if err := fmt.Sprint(keystore.ErrWrongPassword); err != "keystore: wrong password" {
		t.Fatalf("message %q", err)
	}
}

func TestNamesExistsNotFound(t *testing.T) {
	s := newStore(t)
	for _, bad := range []string{"", ".hidden", "a/b", "a b", "ünï", "../x", strings.Repeat("a", 65), "x\x00"} {
		if _, err := s.Create(bad, "p"); !errors.Is(err, keystore.ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", bad, err)
		}
		if _, err := s.Get(bad); !errors.Is(err, keystore.ErrInvalidName) {
			t.Errorf("Get(%q): %v, want ErrInvalidName", bad, err)
		}
	}
	for _, good := range []string{"a", "genesis-ops", "A.b_c-9", strings.Repeat("z", 64)} {
		if _, err := s.Create(good, "p"); err != nil {
			t.Errorf("Create(%q): %v", good, err)
		}
	}
	if _, err := s.Create("a", "p"); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	if _, err := s.Get("nobody"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Get unknown: %v", err)
	}
	if _, err := s.Unlock("nobody", "p"); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("Unlock unknown: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 4 || list[0].Name != "A.b_c-9" || list[1].Name != "a" {
		t.Fatalf("List = %v, %v", list, err)
	}
}

func TestConcurrentCreateOneWins(t *testing.T) {
	s := newStore(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, exists := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Create("same", "p")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, keystore.ErrExists):
				exists++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || exists != 7 {
		t.Fatalf("wins %d, exists %d", wins, exists)
	}
}

func TestRestoreGivesSameAddress(t *testing.T) {
	a, b := newStore(t), newStore(t)
	info, err := a.Create("orig", "one")
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Mnemonic("orig", "one")
	if err != nil {
		t.Fatal(err)
	}
	// Restored elsewhere, under another name and password, with messy spacing.
	messy := "  " + strings.ToUpper(strings.ReplaceAll(m, " ", "\n  ")) + " "
	r, err := b.Restore("copy", messy, "two")
	if err != nil {
		t.Fatal(err)
	}
	if r.Address != info.Address {
		t.Fatalf("restored %s, original %s", r.Address, info.Address)
	}
	k1, _ := a.Unlock("orig", "one")
	k2, _ := b.Unlock("copy", "two")
	if !bytes.Equal(k1.PublicKey(), k2.PublicKey()) {
		t.Fatal("restored key differs")
	}
	if m2, _ := b.Mnemonic("copy", "two"); m2 != m {
		t.Fatal("restored wallet backs up a different phrase")
	}
	// A 12-word phrase restores too.
	const twelve = "legal winner thank year wave sausage worth useful legal winner thank yellow"
	want, _ := keystore.AddressFromMnemonic(twelve)
	if r, err := b.Restore("twelve", twelve, "p"); err != nil || r.Address != want {
		t.Fatalf("12 words: %v, %v", r, err)
	}
	if m, _ := b.Mnemonic("twelve", "p"); m != twelve {
		t.Fatalf("12-word backup %q", m)
	}
	for _, bad := range []string{"", "not a phrase", strings.Replace(m, strings.Fields(m)[0], "zzzz", 1)} {
		if _, err := b.Restore("bad", bad, "p"); !errors.Is(err, keystore.ErrInvalidMnemonic) {
			t.Errorf("Restore(%q): %v", bad, err)
		}
	}
	if _, err := b.Restore("copy", m, "p"); !errors.Is(err, keystore.ErrExists) {
		t.Fatalf("restore over existing: %v", err)
	}
}

func TestEnsureWallet(t *testing.T) {
	s := newStore(t)
	a, err := s.EnsureWallet("genesis-ops", "123")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.EnsureWallet("genesis-ops", "123")
	if err != nil || b != a {
		t.Fatalf("second EnsureWallet = %s, %v; want %s", b, err, a)
	}
	if _, err := s.EnsureWallet("genesis-ops", "other"); !errors.Is(err, keystore.ErrWrongPassword) {
		t.Fatalf("EnsureWallet with another password: %v", err)
	}
}

func TestFilesAtomicAndPrivate(t *testing.T) {
	s := newStore(t)
	for i := range 5 {
		if _, err := s.Create(fmt.Sprintf("w%d", i), "p"); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = s.Create("w0", "p") // a failed create leaves nothing behind either
	entries, err := os.ReadDir(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Fatalf("%d entries in %s, want 5 wallet files", len(entries), s.Path())
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("stray file %s", e.Name())
		}
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	di, _ := os.Stat(s.Path())
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", di.Mode().Perm())
	}
}

func TestFileNeverHoldsSecretsInClear(t *testing.T) {
	s := newStore(t)
	if _, err := s.Create("w", "hunter2-password"); err != nil {
		t.Fatal(err)
	}
	m, _ := s.Mnemonic("w", "hunter2-password")
	k, _ := s.Unlock("w", "hunter2-password")
	data, _ := os.ReadFile(filepath.Join(s.Path(), "w.json"))
	for _, secret := range []string{"hunter2", strings.Fields(m)[0] + " " + strings.Fields(m)[1]} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("file contains %q", secret)
		}
	}
	// Formatting a key never shows it.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, k)
		if strings.Contains(out, hex.EncodeToString(k.PublicKey())) || len(out) > 200 {
			t.Errorf("%s formats as %q", verb, out)
		}
	}
}

// tamper rewrites one JSON field of w's file with f.
func tamper(t *testing.T, s *keystore.Store, name string, f func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(s.Path(), name+".json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, _ := json.Marshal(m)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func flipB64(m map[string]any, field string, i int) {
	b, _ := base64.StdEncoding.DecodeString(m[field].(string))
	b[i%len(b)] ^= 0x01
	m[field] = base64.StdEncoding.EncodeToString(b)
}

func TestTamperedFile(t *testing.T) {
	other := func() string {
		s := newStore(t)
		i, _ := s.Create("x", "p")
		return i.Address.String()
	}()
	for _, tc := range []struct {
		name   string
		edit   func(m map[string]any)
		want   error
		getErr bool // Get (header only) fails too
	}{
		{"ciphertext first byte", func(m map[string]any) { flipB64(m, "ciphertext", 0) }, keystore.ErrCorrupt, false},
		{"ciphertext tag", func(m map[string]any) { flipB64(m, "ciphertext", -1+48) }, keystore.ErrCorrupt, false},
		{"nonce", func(m map[string]any) { flipB64(m, "nonce", 3) }, keystore.ErrCorrupt, false},
		{"address replaced by another valid one", func(m map[string]any) { m["address"] = other }, keystore.ErrCorrupt, false},
		{"address character flipped", func(m map[string]any) {
			a := []byte(m["address"].(string))
			a[10] ^= 0x01
			m["address"] = string(a)
		}, keystore.ErrCorrupt, true},
		{"created", func(m map[string]any) { m["created"] = "2001-01-01T00:00:00Z" }, keystore.ErrCorrupt, false},
		{"version", func(m map[string]any) { m["version"] = 2 }, keystore.ErrCorrupt, true},
		{"name", func(m map[string]any) { m["name"] = "someone-else" }, keystore.ErrCorrupt, true},
		{"unknown field", func(m map[string]any) { m["extra"] = 1 }, keystore.ErrCorrupt, true},
		{"cipher", func(m map[string]any) { m["cipher"] = "aes-256-gcm" }, keystore.ErrCorrupt, true},
		{"salt short", func(m map[string]any) { m["salt"] = "AAAA" }, keystore.ErrCorrupt, true},
		{"huge kdf", func(m map[string]any) { m["kdf"] = map[string]any{"name": "scrypt", "n": 1 << 30, "r": 8, "p": 1} }, keystore.ErrCorrupt, true},
		// A changed salt, KDF cost or check value changes the derived key:
		// indistinguishable from a wrong password, and still refused.
		{"salt", func(m map[string]any) { flipB64(m, "salt", 5) }, keystore.ErrWrongPassword, false},
		{"kdf n", func(m map[string]any) { m["kdf"].(map[string]any)["n"] = 32 }, keystore.ErrWrongPassword, false},
		{"check", func(m map[string]any) { flipB64(m, "check", 0) }, keystore.ErrWrongPassword, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if _, err := s.Create("w", "p"); err != nil {
				t.Fatal(err)
			}
			tamper(t, s, "w", tc.edit)
			if _, err := s.Unlock("w", "p"); !errors.Is(err, tc.want) {
				t.Fatalf("Unlock: %v, want %v", err, tc.want)
			}
			if _, err := s.Mnemonic("w", "p"); !errors.Is(err, tc.want) {
				t.Fatalf("Mnemonic: %v, want %v", err, tc.want)
			}
			if _, err := s.Get("w"); (err != nil) != tc.getErr {
				t.Fatalf("Get: %v (want error: %v)", err, tc.getErr)
			}
			list, err := s.List()
			if tc.getErr && (!errors.Is(err, keystore.ErrCorrupt) || len(list) != 0) {
				t.Fatalf("List = %v, %v", list, err)
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		s := newStore(t)
		_, _ = s.Create("w", "p")
		if err := os.WriteFile(filepath.Join(s.Path(), "w.json"), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unlock("w", "p"); !errors.Is(err, keystore.ErrCorrupt) {
			t.Fatalf("Unlock: %v", err)
		}
	})
}

func TestWrongPasswordIsNotCorrupt(t *testing.T) {
	s := newStore(t)
	_, _ = s.Create("w", "p")
	_, err := s.Unlock("w", "q")
	if errors.Is(err, keystore.ErrCorrupt) {
		t.Fatalf("wrong password reported as corrupt: %v", err)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := newStore(t)
	_, _ = s.Create("w", "p")
	k, _ := s.Unlock("w", "p")
	c, err := k.Clone()
	if err != nil || !bytes.Equal(c.PublicKey(), k.PublicKey()) || c.Address() != k.Address() {
		t.Fatalf("clone: %v", err)
	}
	k.Wipe()
	if c.Wiped() || len(c.Sign([]byte("m"))) != 64 {
		t.Fatal("wiping the original wiped the clone")
	}
	if _, err := k.Clone(); err == nil {
		t.Fatal("cloned a wiped key")
	}
}

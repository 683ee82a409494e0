package address_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
)

func TestRoundTripAndChecksum(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	a := address.FromPubKey(pub)
	s := a.String()
	if !strings.HasPrefix(s, "aitbc1") {
		t.Fatalf("address %q lacks prefix", s)
	}
	got, err := address.Parse(s)
	if err != nil || got != a {
		t.Fatalf("Parse(%q) = %v, %v; want %v", s, got, err, a)
	}
	if got, err := address.Parse(strings.ToUpper(s)); err != nil || got != a {
		t.Fatalf("upper-case form rejected: %v", err)
	}
	// Change one data character: the checksum must catch it.
	b := []byte(s)
	i := len(b) - 10
	if b[i] == 'q' {
		b[i] = 'p'
	} else {
		b[i] = 'q'
	}
	if _, err := address.Parse(string(b)); !errors.Is(err, address.ErrInvalid) {
		t.Fatalf("typo accepted: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	good := address.FromPubKey(pub).String()
	for name, s := range map[string]string{
		"empty":       "",
		"garbage":     "hello",
		"wrong hrp":   "cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnrql8a",
		"truncated":   good[:len(good)-3],
		"mixed case":  "aItbc" + good[5:],
		"hex":         "0x" + strings.Repeat("ab", 20),
		"short data":  "aitbc1qqqqqqqqsyfkzu",
		"with spaces": "aitbc1 " + good[6:],
	} {
		if _, err := address.Parse(s); !errors.Is(err, address.ErrInvalid) {
			t.Errorf("%s: Parse(%q) err = %v, want ErrInvalid", name, s, err)
		}
	}
}

func TestModuleAddressesAreFixedAndDistinct(t *testing.T) {
	a, b := address.Module("jobs.escrow"), address.Module("jobs.deposits")
	if a == b || a.IsZero() {
		t.Fatalf("module addresses collide or are zero: %s %s", a, b)
	}
	if address.Module("jobs.escrow") != a {
		t.Fatal("module address is not deterministic")
	}
	if p, err := address.Parse(a.String()); err != nil || p != a {
		t.Fatalf("module address does not round-trip through bech32: %v", err)
	}
}

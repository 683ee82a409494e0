package keystore

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"testing"
)

// SLIP-0010 test vector 1 for ed25519 (seed 000102...0f).
func TestSLIP10Vectors(t *testing.T) {
	seed, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	for _, tc := range []struct {
		path []uint32
		priv string
	}{
		{nil, "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7"},
		{[]uint32{0}, "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3"},
		{[]uint32{0, 1}, "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2"},
		{[]uint32{0, 1, 2}, "92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9"},
		{[]uint32{0, 1, 2, 2}, "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662"},
		{[]uint32{0, 1, 2, 2, 1000000000}, "8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793"},
	} {
		k := DeriveSLIP10(seed, tc.path)
		if got := hex.EncodeToString(k.Seed()); got != tc.priv {
			t.Errorf("path %v: private key %s, want %s", tc.path, got, tc.priv)
		}
	}
	// The master public key of the same vector (without SLIP-0010's 00 prefix).
	if got := hex.EncodeToString(DeriveSLIP10(seed, nil).Public().(ed25519.PublicKey)); got != "a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed" {
		t.Errorf("master public key %s", got)
	}
}

func TestEntropyFromMnemonic(t *testing.T) {
	for _, tc := range []struct {
		phrase  string
		entropy string
	}{
		{"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "00000000000000000000000000000000"},
		{"legal winner thank year wave sausage worth useful legal winner thank yellow", "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f"},
		{"letter advice cage absurd amount doctor acoustic avoid letter advice cage above", "80808080808080808080808080808080"},
		{"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art", "0000000000000000000000000000000000000000000000000000000000000000"},
		{"zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"},
		{"  Legal winner thank year\nwave sausage worth useful legal winner THANK yellow ", "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f"},
	} {
		ent, err := entropyFromMnemonic(tc.phrase)
		if err != nil {
			t.Fatalf("%q: %v", tc.phrase, err)
		}
		if got := hex.EncodeToString(ent); got != tc.entropy {
			t.Errorf("%q: entropy %s, want %s", tc.phrase, got, tc.entropy)
		}
		back, _ := mnemonicFromEntropy(ent)
		if back != NormalizeMnemonic(tc.phrase) {
			t.Errorf("round trip %q != %q", back, tc.phrase)
		}
	}
	for _, bad := range []string{
		"",
		"abandon abandon abandon",
		"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon", // checksum
		"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon aboutt",  // not a word
		"legal winner thank year wave sausage worth useful legal winner thank yellow yellow",              // 13 words
	} {
		if _, err := entropyFromMnemonic(bad); !errors.Is(err, ErrInvalidMnemonic) {
			t.Errorf("%q: err %v, want ErrInvalidMnemonic", bad, err)
		}
	}
}

func TestKeyFromMnemonicIsDeterministic(t *testing.T) {
	const m = "legal winner thank year wave sausage worth useful legal winner thank yellow"
	a, err := KeyFromMnemonic(m)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := KeyFromMnemonic(NormalizeMnemonic("LEGAL  winner thank year wave sausage worth useful legal winner thank yellow"))
	if !bytes.Equal(a, b) {
		t.Fatal("same phrase gave different keys")
	}
	other, _ := KeyFromMnemonic("letter advice cage absurd amount doctor acoustic avoid letter advice cage above")
	if bytes.Equal(a, other) {
		t.Fatal("different phrases gave the same key")
	}
}

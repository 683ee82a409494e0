package keystore

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cosmos/go-bip39"

	"github.com/aitbc/aitbc/internal/address"
)

// DerivationPath is the SLIP-0010 path of every wallet's key.
const DerivationPath = "m/44'/8006'/0'/0'/0'"

// derivationPath is DerivationPath as child indexes (hardening added later).
var derivationPath = [...]uint32{44, 8006, 0, 0, 0}

const hardened = 1 << 31

// EntropyBits is the size of the entropy of a new wallet: 24 words.
const EntropyBits = 256

// NormalizeMnemonic lower-cases a phrase and collapses its whitespace, so
// that a phrase copied with line breaks or double spaces is accepted.
func NormalizeMnemonic(m string) string {
	return strings.ToLower(strings.Join(strings.Fields(m), " "))
}

// entropyFromMnemonic checks a phrase (word list and checksum) and returns
// its entropy. The phrase must have 12, 15, 18, 21 or 24 words.
func entropyFromMnemonic(m string) ([]byte, error) {
	m = NormalizeMnemonic(m)
	n := len(strings.Fields(m))
	switch n {
	case 12, 15, 18, 21, 24:
	default:
		return nil, fmt.Errorf("%w: %d words, want 12, 15, 18, 21 or 24", ErrInvalidMnemonic, n)
	}
	words := strings.Fields(m)
	entLen := n * 11 * 32 / 33 / 8 // entropy bits are 32/33 of the phrase's bits
	ent := make([]byte, entLen)
	var acc uint32 // bit accumulator
	var nacc, pos int
	for i, w := range words {
		idx, ok := bip39.ReverseWordMap[w]
		if !ok { // do not echo the word: it is part of a secret
			wipe(ent)
			return nil, fmt.Errorf("%w: word %d is not in the BIP-39 English list", ErrInvalidMnemonic, i+1)
		}
		acc = acc<<11 | uint32(idx)
		nacc += 11
		for nacc >= 8 && pos < entLen {
			nacc -= 8
			ent[pos] = byte(acc >> nacc)
			pos++
		}
		acc &= 1<<nacc - 1
	}
	// Re-encode: the entropy must give back exactly this phrase.
	back, err := bip39.NewMnemonic(ent)
	if err != nil || back != m {
		wipe(ent)
		return nil, fmt.Errorf("%w: bad checksum", ErrInvalidMnemonic)
	}
	return ent, nil
}

// mnemonicFromEntropy returns the phrase of stored entropy.
func mnemonicFromEntropy(ent []byte) (string, error) {
	m, err := bip39.NewMnemonic(ent)
	if err != nil {
		return "", fmt.Errorf("%w: stored entropy: %v", ErrCorrupt, err)
	}
	return m, nil
}

// keyFromEntropy derives the wallet key of stored entropy.
func keyFromEntropy(ent []byte) (ed25519.PrivateKey, error) {
	m, err := mnemonicFromEntropy(ent)
	if err != nil {
		return nil, err
	}
	seed := bip39.NewSeed(m, "")
	defer wipe(seed)
	return DeriveSLIP10(seed, derivationPath[:]), nil
}

// KeyFromMnemonic derives a wallet's private key from its recovery phrase,
// as the keystore does. It is meant for tests and tools that need the key
// of a known phrase; the returned key must not be logged.
func KeyFromMnemonic(mnemonic string) (ed25519.PrivateKey, error) {
	ent, err := entropyFromMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	defer wipe(ent)
	return keyFromEntropy(ent)
}

// AddressFromMnemonic returns the address a recovery phrase restores to.
func AddressFromMnemonic(mnemonic string) (address.Address, error) {
	k, err := KeyFromMnemonic(mnemonic)
	if err != nil {
		return address.Address{}, err
	}
	defer wipe(k)
	return address.FromPubKey(k.Public().(ed25519.PublicKey)), nil
}

// DeriveSLIP10 derives the ed25519 private key at path (every index is
// hardened; indexes are given without the hardening bit) from a BIP-39 seed,
// following SLIP-0010.
func DeriveSLIP10(seed []byte, path []uint32) ed25519.PrivateKey {
	key, chain := slip10Master(seed)
	for _, i := range path {
		key, chain = slip10Child(key, chain, i|hardened)
	}
	priv := ed25519.NewKeyFromSeed(key)
	wipe(key)
	wipe(chain)
	return priv
}

func slip10Master(seed []byte) (key, chain []byte) {
	mac := hmac.New(sha512.New, []byte("ed25519 seed"))
	mac.Write(seed)
	sum := mac.Sum(nil)
	return sum[:32], sum[32:]
}

func slip10Child(key, chain []byte, index uint32) ([]byte, []byte) {
	var data [37]byte // 0x00 || key || index
	copy(data[1:33], key)
	binary.BigEndian.PutUint32(data[33:], index)
	mac := hmac.New(sha512.New, chain)
	mac.Write(data[:])
	sum := mac.Sum(nil)
	wipe(data[:])
	wipe(key)
	wipe(chain)
	return sum[:32], sum[32:]
}

// wipe overwrites b with zeros.
func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

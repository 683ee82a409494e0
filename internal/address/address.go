// Package address defines AITBC account addresses: the first 20 bytes of
// the SHA-256 of an ed25519 public key, shown as bech32 with the human
// prefix "aitbc" so that a mistyped address fails its checksum. This is the
// same derivation CometBFT uses for validator addresses, so a validator's
// consensus address is also an account address.
//
// Any package may import it; it depends only on the standard library and
// the bech32 codec.
package address

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cosmos/btcutil/bech32"
)

// HRP is the human-readable prefix of every AITBC address.
const HRP = "aitbc"

// Len is the length of an address in bytes.
const Len = 20

// ErrInvalid is returned for any string that is not a valid AITBC address.
var ErrInvalid = errors.New("invalid address")

// Address identifies an account.
type Address [Len]byte

// FromPubKey derives the address of an ed25519 public key.
func FromPubKey(pub ed25519.PublicKey) Address {
	sum := sha256.Sum256(pub)
	var a Address
	copy(a[:], sum[:Len])
	return a
}

// ModuleDomain prefixes the name hashed into a module account's address.
const ModuleDomain = "aitbc/module/"

// Module derives the address of a module account: money a chain module
// holds (escrow, deposits, stake) sits in an ordinary balance under this
// address. It is the first 20 bytes of SHA-256 of ModuleDomain + name, so
// it is fixed by the name alone and no private key exists for it: only the
// module's own code moves its funds.
func Module(name string) Address {
	sum := sha256.Sum256([]byte(ModuleDomain + name))
	var a Address
	copy(a[:], sum[:Len])
	return a
}

// FromBytes converts a 20-byte slice to an Address.
func FromBytes(b []byte) (Address, error) {
	var a Address
	if len(b) != Len {
		return a, fmt.Errorf("%w: %d bytes, want %d", ErrInvalid, len(b), Len)
	}
	copy(a[:], b)
	return a, nil
}

// Parse decodes a bech32 "aitbc1..." address, checking its checksum and
// prefix. Upper-case input is accepted (bech32 allows it) but not mixed case.
func Parse(s string) (Address, error) {
	var a Address
	s = strings.TrimSpace(s)
	if s == "" {
		return a, fmt.Errorf("%w: empty", ErrInvalid)
	}
	hrp, data, err := bech32.DecodeToBase256(s)
	if err != nil {
		return a, fmt.Errorf("%w %q: %v", ErrInvalid, s, err)
	}
	if hrp != HRP {
		return a, fmt.Errorf("%w %q: prefix %q, want %q", ErrInvalid, s, hrp, HRP)
	}
	if len(data) != Len {
		return a, fmt.Errorf("%w %q: %d bytes, want %d", ErrInvalid, s, len(data), Len)
	}
	copy(a[:], data)
	return a, nil
}

// String returns the bech32 form.
func (a Address) String() string {
	s, err := bech32.EncodeFromBase256(HRP, a[:])
	if err != nil { // only fails on an invalid HRP, which is a constant
		panic(err)
	}
	return s
}

// Hex returns the lower-case hex form of the raw bytes.
func (a Address) Hex() string { return hex.EncodeToString(a[:]) }

// IsZero reports whether a is the zero address.
func (a Address) IsZero() bool { return a == Address{} }

// Compare orders addresses by their bytes.
func (a Address) Compare(b Address) int { return bytes.Compare(a[:], b[:]) }

// MarshalText implements encoding.TextMarshaler (bech32).
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (bech32).
func (a *Address) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

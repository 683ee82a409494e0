package keystore

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/aitbc/aitbc/internal/address"
)

// Version is the keystore file format version written by this package.
const Version = 1

const (
	kdfScrypt    = "scrypt"
	cipherName   = "xchacha20-poly1305"
	secretBIP39  = "bip39-entropy"
	saltLen      = 32
	checkLen     = 32
	maxFileSize  = 64 << 10
	adDomain     = "AITBC/keystore/v1\x00"
	checkLabel   = "AITBC/keystore/password-check"
	minEntropy   = 16
	maxEntropy   = 32
	maxScryptMem = 1 << 30 // 128*N*r bytes: refuse files that would need more
)

// KDFParams are the scrypt parameters of a keystore file. They are stored
// in the file, so a store can be read whatever parameters wrote it.
type KDFParams struct {
	Name string `json:"name"` // "scrypt"
	N    int    `json:"n"`    // CPU/memory cost, a power of two
	R    int    `json:"r"`    // block size
	P    int    `json:"p"`    // parallelism
}

// DefaultKDF is scrypt with N=2^17, r=8, p=1 (128 MiB, about 0.3 s a
// try): the current guidance for interactive logins. Files written with
// weaker parameters (N=2^15 before) still open, and Unlock rewrites them
// with these (see Store.Unlock).
func DefaultKDF() KDFParams { return KDFParams{Name: kdfScrypt, N: 1 << 17, R: 8, P: 1} }

// weakerThan reports whether p costs less memory than q (scrypt's cost is
// 128·N·r bytes), so that a file with p should be upgraded to q.
func (p KDFParams) weakerThan(q KDFParams) bool { return p.N*p.R < q.N*q.R }

// InsecureTestKDF is a very cheap scrypt setting for tests. Never use it for
// wallets that hold value: it makes guessing passwords fast.
func InsecureTestKDF() KDFParams { return KDFParams{Name: kdfScrypt, N: 1 << 4, R: 8, P: 1} }

// Validate checks that p can be used (and is bounded, so that a hostile
// file cannot make the reader allocate without limit).
func (p KDFParams) Validate() error {
	switch {
	case p.Name != kdfScrypt:
		return fmt.Errorf("kdf %q not supported (want %q)", p.Name, kdfScrypt)
	case p.N < 2 || p.N&(p.N-1) != 0:
		return fmt.Errorf("scrypt N=%d must be a power of two ≥ 2", p.N)
	case p.R < 1 || p.R > 64:
		return fmt.Errorf("scrypt r=%d out of range 1..64", p.R)
	case p.P < 1 || p.P > 16:
		return fmt.Errorf("scrypt p=%d out of range 1..16", p.P)
	case p.N > maxScryptMem/128/p.R:
		return fmt.Errorf("scrypt N=%d r=%d needs more than %d MiB", p.N, p.R, maxScryptMem>>20)
	}
	return nil
}

// file is the JSON form of a keystore file, version 1.
type file struct {
	Version    int       `json:"version"`
	Name       string    `json:"name"`
	Address    string    `json:"address"`
	Created    string    `json:"created"`
	Secret     string    `json:"secret"`
	KDF        KDFParams `json:"kdf"`
	Salt       []byte    `json:"salt"`
	Cipher     string    `json:"cipher"`
	Nonce      []byte    `json:"nonce"`
	Check      []byte    `json:"check"`
	Ciphertext []byte    `json:"ciphertext"`
}

// header is what the AEAD's additional data covers.
type header struct {
	Version int       `json:"version"`
	Name    string    `json:"name"`
	Address string    `json:"address"`
	Created string    `json:"created"`
	Secret  string    `json:"secret"`
	KDF     KDFParams `json:"kdf"`
	Salt    []byte    `json:"salt"`
	Cipher  string    `json:"cipher"`
}

func (f *file) additionalData() []byte {
	b, err := json.Marshal(header{f.Version, f.Name, f.Address, f.Created, f.Secret, f.KDF, f.Salt, f.Cipher})
	if err != nil { // plain fields: cannot fail
		panic(err)
	}
	return append([]byte(adDomain), b...)
}

// parsed is a decoded, shape-checked keystore file.
type parsed struct {
	f       file
	addr    address.Address
	created time.Time
}

func (p *parsed) info() Info { return Info{Name: p.f.Name, Address: p.addr, Created: p.created} }

// decodeFile parses a keystore file and checks every field's shape. It
// never decrypts. Any problem is ErrCorrupt.
func decodeFile(data []byte) (*parsed, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: file is %d bytes, limit %d", ErrCorrupt, len(data), maxFileSize)
	}
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrCorrupt)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrCorrupt, f.Version, Version)
	}
	if err := ValidateName(f.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	addr, err := address.Parse(f.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if addr.String() != f.Address { // only the canonical lower-case form
		return nil, fmt.Errorf("%w: address not in canonical form", ErrCorrupt)
	}
	created, err := time.Parse(time.RFC3339Nano, f.Created)
	if err != nil {
		return nil, fmt.Errorf("%w: created: %v", ErrCorrupt, err)
	}
	if err := f.KDF.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	switch {
	case f.Secret != secretBIP39:
		return nil, fmt.Errorf("%w: secret type %q", ErrCorrupt, f.Secret)
	case f.Cipher != cipherName:
		return nil, fmt.Errorf("%w: cipher %q", ErrCorrupt, f.Cipher)
	case len(f.Salt) != saltLen:
		return nil, fmt.Errorf("%w: salt is %d bytes", ErrCorrupt, len(f.Salt))
	case len(f.Nonce) != chacha20poly1305.NonceSizeX:
		return nil, fmt.Errorf("%w: nonce is %d bytes", ErrCorrupt, len(f.Nonce))
	case len(f.Check) != checkLen:
		return nil, fmt.Errorf("%w: check is %d bytes", ErrCorrupt, len(f.Check))
	case len(f.Ciphertext) < minEntropy+chacha20poly1305.Overhead || len(f.Ciphertext) > maxEntropy+chacha20poly1305.Overhead:
		return nil, fmt.Errorf("%w: ciphertext is %d bytes", ErrCorrupt, len(f.Ciphertext))
	}
	return &parsed{f: f, addr: addr, created: created}, nil
}

// deriveKeys runs scrypt and splits its output into the AEAD key and the
// password-check key. The caller wipes both.
func deriveKeys(password string, salt []byte, p KDFParams) (encKey, checkKey []byte, err error) {
	out, err := scrypt.Key([]byte(password), salt, p.N, p.R, p.P, 64)
	if err != nil {
		return nil, nil, err
	}
	return out[:32], out[32:], nil
}

func passwordCheck(checkKey []byte) []byte {
	m := hmac.New(sha256.New, checkKey)
	m.Write([]byte(checkLabel))
	return m.Sum(nil)
}

// seal builds a complete file around the entropy.
func seal(name string, addr address.Address, created time.Time, ent []byte, password string, kdf KDFParams, salt, nonce []byte) (*file, error) {
	f := &file{
		Version: Version, Name: name, Address: addr.String(),
		Created: created.UTC().Format(time.RFC3339Nano), Secret: secretBIP39,
		KDF: kdf, Salt: salt, Cipher: cipherName, Nonce: nonce,
	}
	encKey, checkKey, err := deriveKeys(password, salt, kdf)
	if err != nil {
		return nil, fmt.Errorf("keystore: kdf: %w", err)
	}
	defer wipe(encKey)
	defer wipe(checkKey)
	aead, err := chacha20poly1305.NewX(encKey)
	if err != nil {
		return nil, fmt.Errorf("keystore: cipher: %w", err)
	}
	f.Check = passwordCheck(checkKey)
	f.Ciphertext = aead.Seal(nil, nonce, ent, f.additionalData())
	return f, nil
}

// open decrypts a parsed file's entropy. The caller wipes it.
func (p *parsed) open(password string) ([]byte, error) {
	encKey, checkKey, err := deriveKeys(password, p.f.Salt, p.f.KDF)
	if err != nil {
		return nil, fmt.Errorf("%w: kdf: %v", ErrCorrupt, err)
	}
	defer wipe(encKey)
	defer wipe(checkKey)
	if !hmac.Equal(passwordCheck(checkKey), p.f.Check) {
		return nil, ErrWrongPassword
	}
	aead, err := chacha20poly1305.NewX(encKey)
	if err != nil {
		return nil, fmt.Errorf("keystore: cipher: %w", err)
	}
	ent, err := aead.Open(nil, p.f.Nonce, p.f.Ciphertext, p.f.additionalData())
	if err != nil {
		return nil, fmt.Errorf("%w: wallet %q fails authentication (file altered)", ErrCorrupt, p.f.Name)
	}
	return ent, nil
}

func (f *file) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

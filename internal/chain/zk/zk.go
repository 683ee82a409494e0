// Package zk is the chain's side of private job settlements: the circuit,
// the commitment, and the verifier. It states that a job's hidden usage
// (tokens in, tokens out, price per 1,000 tokens), committed to on chain by
// a MiMC hash with a random blinding, accounts exactly for the money the
// chain moves: paid = ⌊tokens_out × price_per_1000 / 1000⌋ (the public
// receipt's rounding, jobs.PriceFor), paid + fees + refund = escrow, the
// price at most the assigned miner's price and the tokens at most the
// job's maximum.
//
// The proof system is Groth16 over BN254 (gnark v0.14). The chain holds the
// verifying key in its state (the jobs module's genesis entry, key
// "private_vk"), so every validator checks with the same key; whoever
// settles private jobs (the coordinator) holds the proving key
// (internal/zk: setup, keys, prover). Everything here is deterministic: no
// randomness, no disk, no clock, no global state.
package zk

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	nativemimc "github.com/consensys/gnark-crypto/ecc/bn254/fr/mimc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/logger"
	"github.com/consensys/gnark/std/hash/mimc"
)

// Errors.
var (
	ErrProof      = errors.New("zk: proof rejected")
	ErrProofSize  = errors.New("zk: proof too large")
	ErrKey        = errors.New("zk: invalid key")
	ErrCommitment = errors.New("zk: invalid commitment")
	ErrOpening    = errors.New("zk: values do not satisfy the statement")
)

// Limits. A Groth16 proof on BN254 is 128 bytes compressed, 256 raw; the
// bound leaves room for the raw form and nothing more, so a settlement
// cannot carry an arbitrarily large blob into a block.
const (
	MaxProofSize = 512
	// MaxVerifyingKeySize bounds the key read from chain state and
	// genesis (the circuit's key is under 1 KiB).
	MaxVerifyingKeySize = 4096
	// CommitmentSize is a commitment's length: one BN254 scalar, big-endian.
	CommitmentSize = fr.Bytes
)

// Bit widths the circuit enforces, so that no product wraps around the
// field: tokens_out × price < 2^96 and paid × 1000 < 2^74, far below the
// field's 2^253.
const (
	tokenBits = 32
	priceBits = 64
	amtBits   = 64
	remBits   = 10
)

// Opening is what a commitment hides: the job's usage and the blinding
// that makes the commitment reveal nothing about it.
type Opening struct {
	TokensIn     uint64
	TokensOut    uint64
	PricePer1000 uint64   // in coin units, as jobs.Job.PricePer1k
	Blinding     [32]byte // a canonical BN254 scalar, big-endian (internal/zk.NewBlinding)
}

// Statement is what the chain knows and checks a proof against.
type Statement struct {
	Commitment    [CommitmentSize]byte
	Escrow        uint64
	Paid          uint64 // to the miner: ⌊tokens_out × price / 1000⌋
	Fees          uint64 // protocol fee plus the coordinator's commission
	Refund        uint64 // back to the customer
	MaxPricePer1k uint64 // the assigned miner's price
	MaxTokens     uint64 // the job's maximum output
}

func scalar(v uint64) []byte {
	var e fr.Element
	e.SetUint64(v)
	b := e.Bytes()
	return b[:]
}

// Commit returns MiMC(tokens_in, tokens_out, price_per_1000, blinding):
// gnark-crypto's BN254 MiMC (Miyaguchi–Preneel) over four field elements,
// each written as 32 big-endian bytes. The blinding must be canonical.
func Commit(o Opening) ([CommitmentSize]byte, error) {
	var out [CommitmentSize]byte
	if err := new(fr.Element).SetBytesCanonical(o.Blinding[:]); err != nil {
		return out, fmt.Errorf("%w: blinding is not a canonical BN254 scalar", ErrCommitment)
	}
	if o.TokensIn >= 1<<tokenBits || o.TokensOut >= 1<<tokenBits {
		return out, fmt.Errorf("%w: token counts must be below 2^%d", ErrCommitment, tokenBits)
	}
	h := nativemimc.NewMiMC()
	for _, b := range [][]byte{scalar(o.TokensIn), scalar(o.TokensOut), scalar(o.PricePer1000), o.Blinding[:]} {
		if _, err := h.Write(b); err != nil {
			return out, fmt.Errorf("%w: %v", ErrCommitment, err)
		}
	}
	copy(out[:], h.Sum(nil))
	return out, nil
}

// PriceFor is the public receipt's rounding (jobs.PriceFor): tokens out at
// price per 1,000, rounded down, computed without overflow.
func PriceFor(tokensOut, pricePer1000 uint64) uint64 {
	p := new(big.Int).Mul(new(big.Int).SetUint64(tokensOut), new(big.Int).SetUint64(pricePer1000))
	return p.Div(p, big.NewInt(1000)).Uint64()
}

// Circuit is the settlement statement. Public inputs come first in the
// order the chain supplies them.
type Circuit struct {
	Commitment    frontend.Variable `gnark:",public"`
	Escrow        frontend.Variable `gnark:",public"`
	Paid          frontend.Variable `gnark:",public"`
	Fees          frontend.Variable `gnark:",public"`
	Refund        frontend.Variable `gnark:",public"`
	MaxPricePer1k frontend.Variable `gnark:",public"`
	MaxTokens     frontend.Variable `gnark:",public"`

	TokensIn     frontend.Variable
	TokensOut    frontend.Variable
	PricePer1000 frontend.Variable
	Blinding     frontend.Variable
	// Remainder is tokens_out × price mod 1000: what the rounding drops.
	Remainder frontend.Variable
}

// Define implements frontend.Circuit.
func (c *Circuit) Define(api frontend.API) error {
	h, err := mimc.NewMiMC(api)
	if err != nil {
		return err
	}
	h.Write(c.TokensIn, c.TokensOut, c.PricePer1000, c.Blinding)
	api.AssertIsEqual(h.Sum(), c.Commitment)

	// Range checks first: with every value bounded, the equations below
	// hold over the integers, not just modulo the field.
	api.ToBinary(c.TokensIn, tokenBits)
	api.ToBinary(c.TokensOut, tokenBits)
	api.ToBinary(c.PricePer1000, priceBits)
	for _, v := range []frontend.Variable{c.Escrow, c.Paid, c.Fees, c.Refund, c.MaxPricePer1k, c.MaxTokens} {
		api.ToBinary(v, amtBits)
	}
	api.ToBinary(c.Remainder, remBits)
	atMost(api, c.Remainder, 999, remBits)

	// paid = ⌊tokens_out × price / 1000⌋: paid × 1000 + remainder = tokens_out × price, remainder < 1000.
	api.AssertIsEqual(api.Add(api.Mul(c.Paid, 1000), c.Remainder), api.Mul(c.TokensOut, c.PricePer1000))
	// Every unit of the escrow is accounted for.
	api.AssertIsEqual(api.Add(c.Paid, c.Fees, c.Refund), c.Escrow)
	// The miner charged no more than its assigned price, for no more tokens than the job allowed.
	atMost(api, c.PricePer1000, c.MaxPricePer1k, amtBits)
	atMost(api, c.TokensOut, c.MaxTokens, amtBits)
	return nil
}

// atMost asserts a ≤ b for a and b already known to be below 2^bits:
// b − a then fits in bits bits exactly when it is not negative (a
// negative difference wraps to nearly the field's size). A bits-wide
// decomposition costs a fraction of gnark's full-width comparison.
func atMost(api frontend.API, a, b frontend.Variable, bits int) {
	api.ToBinary(api.Sub(b, a), bits)
}

// Assignment fills the circuit's public part from s and, when o is not
// nil, its secret part from o.
func Assignment(s Statement, o *Opening) *Circuit {
	c := &Circuit{
		Commitment: new(big.Int).SetBytes(s.Commitment[:]), Escrow: s.Escrow, Paid: s.Paid, Fees: s.Fees, Refund: s.Refund,
		MaxPricePer1k: s.MaxPricePer1k, MaxTokens: s.MaxTokens,
		TokensIn: 0, TokensOut: 0, PricePer1000: 0, Blinding: 0, Remainder: 0,
	}
	if o != nil {
		rem := new(big.Int).Mul(new(big.Int).SetUint64(o.TokensOut), new(big.Int).SetUint64(o.PricePer1000))
		rem.Mod(rem, big.NewInt(1000))
		c.TokensIn, c.TokensOut, c.PricePer1000 = o.TokensIn, o.TokensOut, o.PricePer1000
		c.Blinding, c.Remainder = new(big.Int).SetBytes(o.Blinding[:]), rem
	}
	return c
}

// Check reports, without proving, whether o satisfies s: what a prover
// checks first so that a bad settlement fails with a reason, not as an
// unsatisfied constraint.
func Check(s Statement, o Opening) error {
	c, err := Commit(o)
	if err != nil {
		return err
	}
	switch {
	case c != s.Commitment:
		return fmt.Errorf("%w: commitment does not open to these values", ErrOpening)
	case PriceFor(o.TokensOut, o.PricePer1000) != s.Paid:
		return fmt.Errorf("%w: paid %d, %d tokens at %d per 1000 is %d", ErrOpening, s.Paid, o.TokensOut, o.PricePer1000, PriceFor(o.TokensOut, o.PricePer1000))
	case o.PricePer1000 > s.MaxPricePer1k:
		return fmt.Errorf("%w: price %d above the miner's %d", ErrOpening, o.PricePer1000, s.MaxPricePer1k)
	case o.TokensOut > s.MaxTokens:
		return fmt.Errorf("%w: %d tokens out, job allows %d", ErrOpening, o.TokensOut, s.MaxTokens)
	case s.Paid+s.Fees+s.Refund != s.Escrow || s.Paid > s.Escrow || s.Fees > s.Escrow || s.Refund > s.Escrow:
		return fmt.Errorf("%w: paid %d + fees %d + refund %d is not the escrow %d", ErrOpening, s.Paid, s.Fees, s.Refund, s.Escrow)
	}
	return nil
}

// curve is the proof system's curve.
const curve = ecc.BN254

// Canonical reports whether b is 32 big-endian bytes of a BN254 scalar
// below the field's modulus: the only encoding of a commitment.
func Canonical(b []byte) bool {
	return len(b) == fr.Bytes && new(fr.Element).SetBytesCanonical(b) == nil
}

var quietOnce sync.Once

// Compile builds the circuit's constraint system; it is deterministic, so
// keys made from one compilation fit every other.
func Compile() (constraint.ConstraintSystem, error) {
	quietOnce.Do(logger.Disable) // gnark logs every compilation to stdout otherwise
	ccs, err := frontend.Compile(curve.ScalarField(), r1cs.NewBuilder, &Circuit{})
	if err != nil {
		return nil, fmt.Errorf("zk: compile circuit: %w", err)
	}
	return ccs, nil
}

// Verifier checks settlement proofs against one verifying key. It is
// safe for concurrent use.
type Verifier struct {
	vk   groth16.VerifyingKey
	hash [32]byte
}

// NewVerifier parses a serialized verifying key.
func NewVerifier(vk []byte) (*Verifier, error) {
	if len(vk) == 0 || len(vk) > MaxVerifyingKeySize {
		return nil, fmt.Errorf("%w: verifying key of %d bytes (1-%d)", ErrKey, len(vk), MaxVerifyingKeySize)
	}
	k := groth16.NewVerifyingKey(curve)
	n, err := k.ReadFrom(bytes.NewReader(vk))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	if int(n) != len(vk) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrKey, len(vk)-int(n))
	}
	if k.NbPublicWitness() != nbPublic {
		return nil, fmt.Errorf("%w: key has %d public inputs, the circuit %d", ErrKey, k.NbPublicWitness(), nbPublic)
	}
	return &Verifier{vk: k, hash: sha256.Sum256(vk)}, nil
}

// nbPublic is the circuit's number of public inputs.
const nbPublic = 7

// KeyHash is the SHA-256 of the serialized key.
func (v *Verifier) KeyHash() [32]byte { return v.hash }

// Verify checks proof (DecodeProof's input) for s.
func (v *Verifier) Verify(s Statement, proof []byte) error {
	p, err := decodeProof(proof)
	if err != nil {
		return err
	}
	w, err := frontend.NewWitness(Assignment(s, nil), curve.ScalarField(), frontend.PublicOnly())
	if err != nil {
		return fmt.Errorf("%w: public inputs: %v", ErrProof, err)
	}
	if err := groth16.Verify(p, v.vk, w); err != nil {
		return fmt.Errorf("%w: %v", ErrProof, err)
	}
	return nil
}

func decodeProof(b []byte) (groth16.Proof, error) {
	if len(b) == 0 || len(b) > MaxProofSize {
		return nil, fmt.Errorf("%w: %d bytes (1-%d)", ErrProofSize, len(b), MaxProofSize)
	}
	p := groth16.NewProof(curve)
	n, err := p.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: malformed: %v", ErrProof, err)
	}
	if int(n) != len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrProof, len(b)-int(n))
	}
	return p, nil
}

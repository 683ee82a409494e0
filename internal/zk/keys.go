// Package zk is the settling side of private jobs: the Groth16 setup, the
// key files, and the prover the coordinator keeps. The circuit, the
// commitment and the verifier are the chain's (internal/chain/zk).
//
// Who may import it: the coordinator (Prover), the CLI and the devnet
// (Setup, key files). It holds no global state.
package zk

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"

	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
)

// The chain's types, named here so a prover's callers need one import.
type (
	Statement = chainzk.Statement
	Opening   = chainzk.Opening
)

// Errors, the chain's.
var (
	ErrKey     = chainzk.ErrKey
	ErrOpening = chainzk.ErrOpening
)

const curve = ecc.BN254

// NewBlinding draws a random blinding: a uniformly random BN254 scalar, so
// that the commitment reveals nothing of the usage it hides.
func NewBlinding() ([32]byte, error) {
	var e fr.Element
	if _, err := e.SetRandom(); err != nil {
		return [32]byte{}, fmt.Errorf("zk: blinding: %w", err)
	}
	return e.Bytes(), nil
}

// Key file names under a home's zk folder.
const (
	ProvingKeyFile   = "private_settle.pk"
	VerifyingKeyFile = "private_settle.vk"
)

// Keys are a setup's output, serialized.
type Keys struct {
	Proving   []byte
	Verifying []byte
}

// Setup runs a single-party Groth16 setup. Whoever runs it knows the
// toxic waste and could forge proofs: use it for devnets and tests; a
// network needs a multi-party ceremony (docs/VERIFICATION.md).
func Setup() (Keys, error) {
	ccs, err := chainzk.Compile()
	if err != nil {
		return Keys{}, err
	}
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		return Keys{}, fmt.Errorf("zk: setup: %w", err)
	}
	var pb, vb bytes.Buffer
	if _, err := pk.WriteTo(&pb); err != nil {
		return Keys{}, fmt.Errorf("zk: write proving key: %w", err)
	}
	if _, err := vk.WriteTo(&vb); err != nil {
		return Keys{}, fmt.Errorf("zk: write verifying key: %w", err)
	}
	return Keys{Proving: pb.Bytes(), Verifying: vb.Bytes()}, nil
}

// WriteFiles writes the keys into dir (created 0700), the proving key
// readable by its owner only.
func (k Keys) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("zk: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ProvingKeyFile), k.Proving, 0o600); err != nil {
		return fmt.Errorf("zk: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, VerifyingKeyFile), k.Verifying, 0o644); err != nil {
		return fmt.Errorf("zk: %w", err)
	}
	return nil
}

// Prover makes settlement proofs with one proving key. Loading the key
// and compiling the circuit is the slow part: make one Prover per process
// and keep it. It is safe for concurrent use.
type Prover struct {
	ccs constraint.ConstraintSystem
	pk  groth16.ProvingKey
}

// NewProver parses a serialized proving key.
func NewProver(pk []byte) (*Prover, error) {
	ccs, err := chainzk.Compile()
	if err != nil {
		return nil, err
	}
	k := groth16.NewProvingKey(curve)
	if _, err := k.ReadFrom(bytes.NewReader(pk)); err != nil {
		return nil, fmt.Errorf("%w: proving key: %v", ErrKey, err)
	}
	return &Prover{ccs: ccs, pk: k}, nil
}

// LoadProver reads the proving key from dir (Keys.WriteFiles' folder).
func LoadProver(dir string) (*Prover, error) {
	b, err := os.ReadFile(filepath.Join(dir, ProvingKeyFile))
	if err != nil {
		return nil, fmt.Errorf("zk: %w", err)
	}
	return NewProver(b)
}

// ReadVerifyingKey reads the verifying key from dir.
func ReadVerifyingKey(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, VerifyingKeyFile))
	if err != nil {
		return nil, fmt.Errorf("zk: %w", err)
	}
	return b, nil
}

// Prove proves that o opens s. It checks the values first, so that a
// settlement that cannot be proven fails with ErrOpening and a reason.
// The proof is the compressed encoding (128 bytes).
func (p *Prover) Prove(s Statement, o Opening) ([]byte, error) {
	if err := chainzk.Check(s, o); err != nil {
		return nil, err
	}
	w, err := frontend.NewWitness(chainzk.Assignment(s, &o), curve.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("zk: witness: %w", err)
	}
	proof, err := groth16.Prove(p.ccs, p.pk, w)
	if err != nil {
		return nil, fmt.Errorf("zk: prove: %w", err)
	}
	var b bytes.Buffer
	if _, err := proof.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("zk: encode proof: %w", err)
	}
	return b.Bytes(), nil
}

package zk

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/logger"
)

// Key file names under a home's zk folder.
const (
	ProvingKeyFile   = "private_settle.pk"
	VerifyingKeyFile = "private_settle.vk"
)

var quietOnce sync.Once

// compile builds the circuit's constraint system; it is deterministic, so
// keys made from one compilation fit every other.
func compile() (constraint.ConstraintSystem, error) {
	quietOnce.Do(logger.Disable) // gnark logs every compilation to stdout otherwise
	ccs, err := frontend.Compile(curve.ScalarField(), r1cs.NewBuilder, &Circuit{})
	if err != nil {
		return nil, fmt.Errorf("zk: compile circuit: %w", err)
	}
	return ccs, nil
}

// Keys are a setup's output, serialized.
type Keys struct {
	Proving   []byte
	Verifying []byte
}

// Setup runs a single-party Groth16 setup. Whoever runs it knows the
// toxic waste and could forge proofs: use it for devnets and tests; a
// network needs a multi-party ceremony (docs/VERIFICATION.md).
func Setup() (Keys, error) {
	ccs, err := compile()
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
	w, err := frontend.NewWitness(assignment(s, nil), curve.ScalarField(), frontend.PublicOnly())
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

// Prover makes settlement proofs with one proving key. Loading the key
// and compiling the circuit is the slow part: make one Prover per process
// and keep it. It is safe for concurrent use.
type Prover struct {
	ccs constraint.ConstraintSystem
	pk  groth16.ProvingKey
}

// NewProver parses a serialized proving key.
func NewProver(pk []byte) (*Prover, error) {
	ccs, err := compile()
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
	if err := Check(s, o); err != nil {
		return nil, err
	}
	w, err := frontend.NewWitness(assignment(s, &o), curve.ScalarField())
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

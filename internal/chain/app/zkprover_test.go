package app_test

import (
	"bytes"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"

	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
)

// The chain's tests prove with gnark directly: the coordinator's prover
// (internal/zk) is a service, which the chain's packages, tests included,
// do not import (TestChainImportsOnlyTheChain). This is the same setup and
// proof as internal/zk's, over the chain's own circuit.

// zkKeyPair is a setup's serialized output.
type zkKeyPair struct{ Proving, Verifying []byte }

// zkTestProver proves settlements with one proving key.
type zkTestProver struct {
	ccs constraint.ConstraintSystem
	pk  groth16.ProvingKey
}

// zkSetup runs a single-party Groth16 setup of the settlement circuit.
func zkSetup() (zkKeyPair, *zkTestProver, error) {
	ccs, err := chainzk.Compile()
	if err != nil {
		return zkKeyPair{}, nil, err
	}
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		return zkKeyPair{}, nil, fmt.Errorf("setup: %w", err)
	}
	var pb, vb bytes.Buffer
	if _, err := pk.WriteTo(&pb); err != nil {
		return zkKeyPair{}, nil, err
	}
	if _, err := vk.WriteTo(&vb); err != nil {
		return zkKeyPair{}, nil, err
	}
	return zkKeyPair{Proving: pb.Bytes(), Verifying: vb.Bytes()}, &zkTestProver{ccs: ccs, pk: pk}, nil
}

// newBlinding draws a uniformly random BN254 scalar.
func newBlinding() ([32]byte, error) {
	var e fr.Element
	if _, err := e.SetRandom(); err != nil {
		return [32]byte{}, err
	}
	return e.Bytes(), nil
}

// Prove proves that o opens s, checking the values first as the
// coordinator's prover does.
func (p *zkTestProver) Prove(s chainzk.Statement, o chainzk.Opening) ([]byte, error) {
	if err := chainzk.Check(s, o); err != nil {
		return nil, err
	}
	w, err := frontend.NewWitness(chainzk.Assignment(s, &o), ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	proof, err := groth16.Prove(p.ccs, p.pk, w)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := proof.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

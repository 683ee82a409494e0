package zk

// A multi-party setup (gnark's mpcsetup for Groth16 on BN254): phase 1
// (powers of τ, α, β, for any circuit of the domain size) and phase 2
// (this circuit's δ), each a chain of contributions in which every
// contributor adds secret randomness and proves it did so against the
// previous file. The keys are safe if any one contributor destroyed its
// randomness. A random beacon, published after the last contribution,
// seals each phase, so that the last contributor cannot bias it.
//
// The transcript is a folder: phase1-000.bin (the empty start),
// phase1-001.bin … (contributions), commons.bin (phase 1 verified and
// sealed), phase2-000.bin, phase2-001.bin …; Seal verifies every
// contribution and returns the keys.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
)

// ErrCeremony is a transcript that does not verify or is out of order.
var ErrCeremony = errors.New("zk: ceremony")

// maxCeremonyFile bounds a transcript file read into memory (this
// circuit's are under 1 MiB).
const maxCeremonyFile = 64 << 20

func ceremonyFile(dir string, phase, i int) string {
	return filepath.Join(dir, fmt.Sprintf("phase%d-%03d.bin", phase, i))
}

func commonsFile(dir string) string { return filepath.Join(dir, "commons.bin") }

func r1cs() (*cs.R1CS, uint64, error) {
	ccs, err := chainzk.Compile()
	if err != nil {
		return nil, 0, err
	}
	r, ok := ccs.(*cs.R1CS)
	if !ok {
		return nil, 0, fmt.Errorf("%w: the circuit is not a BN254 R1CS", ErrCeremony)
	}
	return r, ecc.NextPowerOfTwo(uint64(r.GetNbConstraints())), nil
}

func writeTo(path string, v io.WriterTo) (string, error) {
	var b bytes.Buffer
	if _, err := v.WriteTo(&b); err != nil {
		return "", fmt.Errorf("zk: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("%w: %s exists", ErrCeremony, path)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("zk: %w", err)
	}
	h := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(h[:]), nil
}

func readFrom(path string, v io.ReaderFrom) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("zk: %w", err)
	}
	if len(b) > maxCeremonyFile {
		return fmt.Errorf("%w: %s is %d bytes", ErrCeremony, path, len(b))
	}
	n, err := v.ReadFrom(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCeremony, path, err)
	}
	if int(n) != len(b) {
		return fmt.Errorf("%w: %s: %d trailing bytes", ErrCeremony, path, len(b)-int(n))
	}
	return nil
}

// count returns how many files of phase the folder holds (000 included).
func count(dir string, phase int) int {
	n := 0
	for {
		if _, err := os.Stat(ceremonyFile(dir, phase, n)); err != nil {
			return n
		}
		n++
	}
}

// Step is one transcript file written.
type Step struct {
	File   string `json:"file"`
	Phase  int    `json:"phase"`
	Index  int    `json:"index"`
	SHA256 string `json:"sha256"` // a contributor publishes it, to find its contribution in the transcript
}

// CeremonyInit starts a transcript in dir (created): the empty phase 1.
func CeremonyInit(dir string) (Step, error) {
	_, n, err := r1cs()
	if err != nil {
		return Step{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Step{}, fmt.Errorf("zk: %w", err)
	}
	f := ceremonyFile(dir, 1, 0)
	h, err := writeTo(f, mpcsetup.NewPhase1(n))
	return Step{File: f, Phase: 1, Index: 0, SHA256: h}, err
}

// Contribute adds this machine's randomness to the current phase: it
// reads the latest file, contributes, and writes the next. The randomness
// lives only in this process's memory.
func Contribute(dir string) (Step, error) {
	phase := 1
	if _, err := os.Stat(commonsFile(dir)); err == nil {
		phase = 2
	}
	n := count(dir, phase)
	if n == 0 {
		return Step{}, fmt.Errorf("%w: no phase %d file in %s (init, or phase2, first)", ErrCeremony, phase, dir)
	}
	var v interface {
		io.ReaderFrom
		io.WriterTo
		Contribute()
	}
	if phase == 1 {
		v = new(mpcsetup.Phase1)
	} else {
		v = new(mpcsetup.Phase2)
	}
	if err := readFrom(ceremonyFile(dir, phase, n-1), v); err != nil {
		return Step{}, err
	}
	v.Contribute()
	f := ceremonyFile(dir, phase, n)
	h, err := writeTo(f, v)
	return Step{File: f, Phase: phase, Index: n, SHA256: h}, err
}

// CeremonyPhase2 verifies every phase 1 contribution, seals phase 1 with
// the beacon, and starts phase 2.
func CeremonyPhase2(dir string, beacon []byte) (Step, error) {
	r, n, err := r1cs()
	if err != nil {
		return Step{}, err
	}
	if len(beacon) == 0 {
		return Step{}, fmt.Errorf("%w: a beacon is required", ErrCeremony)
	}
	k := count(dir, 1)
	if k < 2 {
		return Step{}, fmt.Errorf("%w: phase 1 has no contribution", ErrCeremony)
	}
	contribs := make([]*mpcsetup.Phase1, 0, k-1)
	for i := 1; i < k; i++ {
		p := new(mpcsetup.Phase1)
		if err := readFrom(ceremonyFile(dir, 1, i), p); err != nil {
			return Step{}, err
		}
		contribs = append(contribs, p)
	}
	commons, err := mpcsetup.VerifyPhase1(n, beacon, contribs...)
	if err != nil {
		return Step{}, fmt.Errorf("%w: phase 1: %v", ErrCeremony, err)
	}
	if _, err := writeTo(commonsFile(dir), &commons); err != nil {
		return Step{}, err
	}
	var p2 mpcsetup.Phase2
	p2.Initialize(r, &commons)
	f := ceremonyFile(dir, 2, 0)
	h, err := writeTo(f, &p2)
	return Step{File: f, Phase: 2, Index: 0, SHA256: h}, err
}

// CeremonySeal verifies every phase 2 contribution, seals it with the
// beacon and returns the keys.
func CeremonySeal(dir string, beacon []byte) (Keys, error) {
	r, _, err := r1cs()
	if err != nil {
		return Keys{}, err
	}
	if len(beacon) == 0 {
		return Keys{}, fmt.Errorf("%w: a beacon is required", ErrCeremony)
	}
	var commons mpcsetup.SrsCommons
	if err := readFrom(commonsFile(dir), &commons); err != nil {
		return Keys{}, err
	}
	k := count(dir, 2)
	if k < 2 {
		return Keys{}, fmt.Errorf("%w: phase 2 has no contribution", ErrCeremony)
	}
	contribs := make([]*mpcsetup.Phase2, 0, k-1)
	for i := 1; i < k; i++ {
		p := new(mpcsetup.Phase2)
		if err := readFrom(ceremonyFile(dir, 2, i), p); err != nil {
			return Keys{}, err
		}
		contribs = append(contribs, p)
	}
	pk, vk, err := mpcsetup.VerifyPhase2(r, &commons, beacon, contribs...)
	if err != nil {
		return Keys{}, fmt.Errorf("%w: phase 2: %v", ErrCeremony, err)
	}
	var pb, vb bytes.Buffer
	if _, err := pk.WriteTo(&pb); err != nil {
		return Keys{}, fmt.Errorf("zk: %w", err)
	}
	if _, err := vk.WriteTo(&vb); err != nil {
		return Keys{}, fmt.Errorf("zk: %w", err)
	}
	return Keys{Proving: pb.Bytes(), Verifying: vb.Bytes()}, nil
}

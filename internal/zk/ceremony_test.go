package zk_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"

	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
	"github.com/aitbc/aitbc/internal/zk"
)

// TestCeremonyKeysProveAndVerify runs a ceremony with one contributor in
// phase 1 and two in phase 2, and settles with its keys.
func TestCeremonyKeysProveAndVerify(t *testing.T) {
	dir := t.TempDir()
	if _, err := zk.CeremonyInit(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := zk.CeremonyPhase2(dir, []byte("beacon")); !errors.Is(err, zk.ErrCeremony) {
		t.Fatalf("phase 2 without a contribution: %v", err)
	}
	if _, err := zk.Contribute(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := zk.CeremonyPhase2(dir, []byte("drand round 1")); err != nil {
		t.Fatal(err)
	}
	var last zk.Step
	for range 2 {
		s, err := zk.Contribute(dir)
		if err != nil {
			t.Fatal(err)
		}
		last = s
	}
	if last.Phase != 2 || last.Index != 2 || len(last.SHA256) != 64 {
		t.Fatalf("step %+v", last)
	}
	keys, err := zk.CeremonySeal(dir, []byte("drand round 2"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := zk.NewProver(keys.Proving)
	if err != nil {
		t.Fatal(err)
	}
	v, err := chainzk.NewVerifier(keys.Verifying)
	if err != nil {
		t.Fatal(err)
	}
	s, o := job(t)
	proof, err := p.Prove(s, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(s, proof); err != nil {
		t.Fatalf("ceremony keys: %v", err)
	}
	// A different beacon seals different keys: the proof fails under them.
	keys2, err := zk.CeremonySeal(dir, []byte("another beacon"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := chainzk.NewVerifier(keys2.Verifying)
	if err != nil {
		t.Fatal(err)
	}
	if err := v2.Verify(s, proof); !errors.Is(err, chainzk.ErrProof) {
		t.Fatalf("proof under another beacon's keys: %v", err)
	}
}

// TestCeremonyRefusesAContributionThatSkipsItsPredecessor: a contributor
// who builds on an older file (dropping the previous contribution) is
// caught when the phase is verified.
func TestCeremonyRefusesAContributionThatSkipsItsPredecessor(t *testing.T) {
	dir := t.TempDir()
	if _, err := zk.CeremonyInit(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := zk.Contribute(dir); err != nil {
		t.Fatal(err)
	}
	start, err := os.ReadFile(filepath.Join(dir, "phase1-000.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var p mpcsetup.Phase1
	if _, err := p.ReadFrom(bytes.NewReader(start)); err != nil {
		t.Fatal(err)
	}
	p.Contribute()
	var b bytes.Buffer
	if _, err := p.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "phase1-002.bin"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := zk.CeremonyPhase2(dir, []byte("beacon")); !errors.Is(err, zk.ErrCeremony) {
		t.Fatalf("forked transcript: %v", err)
	}
}

package verify_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/aitbc/aitbc/internal/verify"
)

func randomActs(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestChunkCommitmentMatchesItsOwnActivations(t *testing.T) {
	for _, n := range []int{128, 300, 32 * 288, 32 * 4096} {
		acts := randomActs(uint64(n), n)
		c, err := verify.CommitChunk(acts, verify.TopK)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 258 {
			t.Fatalf("%d bytes", len(c))
		}
		r, err := verify.CheckChunk(c, acts)
		if err != nil {
			t.Fatal(err)
		}
		if r.ExpMismatches != 0 || r.Mismatches != 0 || r.MantMean != 0 || r.MantMedian != 0 {
			t.Errorf("n=%d: %+v, want an exact match", n, r)
		}
	}
}

func TestChunkCommitmentRejectsOtherActivations(t *testing.T) {
	acts := randomActs(1, 32*288)
	c, err := verify.CommitChunk(acts, verify.TopK)
	if err != nil {
		t.Fatal(err)
	}
	// Other values at the same places: the top-k set moves.
	r, err := verify.CheckChunk(c, randomActs(2, 32*288))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mismatches <= verify.DefaultTolerance.MaxMismatches {
		t.Errorf("unrelated activations: %+v", r)
	}
	// The same values with 1% noise: the mantissas move.
	noisy := make([]float32, len(acts))
	n := rand.New(rand.NewPCG(3, 3))
	for i, v := range acts {
		noisy[i] = v * float32(1+0.01*n.NormFloat64())
	}
	r, err = verify.CheckChunk(c, noisy)
	if err != nil {
		t.Fatal(err)
	}
	if r.MantMean <= verify.DefaultTolerance.MaxMantMean && r.Mismatches <= verify.DefaultTolerance.MaxMismatches {
		t.Errorf("1%% noise passes: %+v", r)
	}
	// A last-bit difference (another f32 summation order) passes.
	tiny := make([]float32, len(acts))
	for i, v := range acts {
		tiny[i] = math.Nextafter32(v, 0)
	}
	r, err = verify.CheckChunk(c, tiny)
	if err != nil {
		t.Fatal(err)
	}
	if r.Mismatches > verify.DefaultTolerance.MaxMismatches || r.MantMean > verify.DefaultTolerance.MaxMantMean {
		t.Errorf("last-bit differences rejected: %+v", r)
	}
}

func TestMalformedCommitmentsAreRefused(t *testing.T) {
	good, _ := verify.CommitChunk(randomActs(1, 1024), verify.TopK)
	bad := map[string][]byte{
		"empty":            nil,
		"odd length":       good[:101],
		"modulus too low":  append([]byte{0x10, 0x00}, good[2:]...),
		"coefficient >= p": append(append([]byte{}, good[:2]...), append([]byte{0xFF, 0xFF}, good[4:]...)...),
	}
	for name, c := range bad {
		if _, err := verify.CheckChunk(c, randomActs(1, 1024)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeAttestation(f *testing.F) {
	a := &verify.Attestation{Version: verify.Version, ModelSHA256: make([]byte, 32), Quant: "Q8_0", PromptTokens: []uint32{1, 2},
		OutputTokens: []uint32{3}, Stop: "eos", ChunkTokens: verify.ChunkTokens}
	c, _ := verify.CommitChunk(randomActs(1, 256), verify.TopK)
	a.Commits = [][]byte{c}
	b, _ := a.Encode()
	f.Add(b)
	f.Add([]byte{0x80})
	// The second format, with the sampling parameters.
	a.Version = verify.VersionSampling
	a.Sampling = &verify.Sampling{Temperature: 0.8, TopP: 0.9, Seed: 7, MaxTokens: 4, StopStrings: []string{"\n"}}
	b, _ = a.Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := verify.DecodeAttestation(b)
		if err != nil {
			return
		}
		again, err := a.Encode()
		if err != nil || string(again) != string(b) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

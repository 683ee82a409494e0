package zk_test

import (
	"bytes"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/test"

	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
	"github.com/aitbc/aitbc/internal/zk"
)

// job is a settlement of 1,234 tokens out at 2,500,001 units per 1,000
// (a price whose product with the tokens is not a multiple of 1,000, so
// the rounding is exercised): paid 3,085,001 (⌊3,085,001,234 / 1000⌋).
func job(t testing.TB) (zk.Statement, zk.Opening) {
	t.Helper()
	bl, err := zk.NewBlinding()
	if err != nil {
		t.Fatal(err)
	}
	o := zk.Opening{TokensIn: 77, TokensOut: 1234, PricePer1000: 2_500_001, Blinding: bl}
	c, err := chainzk.Commit(o)
	if err != nil {
		t.Fatal(err)
	}
	paid := chainzk.PriceFor(o.TokensOut, o.PricePer1000)
	if paid != 3_085_001 {
		t.Fatalf("paid %d", paid)
	}
	return zk.Statement{Commitment: c, Escrow: 10_000_000, Paid: paid, Fees: 500_000, Refund: 10_000_000 - paid - 500_000,
		MaxPricePer1k: 2_500_001, MaxTokens: 2048}, o
}

func full(s zk.Statement, o zk.Opening, rem uint64) *chainzk.Circuit {
	return &chainzk.Circuit{Commitment: new(big.Int).SetBytes(s.Commitment[:]), Escrow: s.Escrow, Paid: s.Paid, Fees: s.Fees, Refund: s.Refund,
		MaxPricePer1k: s.MaxPricePer1k, MaxTokens: s.MaxTokens,
		TokensIn: o.TokensIn, TokensOut: o.TokensOut, PricePer1000: o.PricePer1000, Blinding: new(big.Int).SetBytes(o.Blinding[:]), Remainder: rem}
}

// TestCircuitAcceptsExactSettlement and the cases after it run the
// circuit's constraints directly (no keys): a settlement is provable
// exactly when its money adds up for the committed usage.
func TestCircuitAcceptsExactSettlement(t *testing.T) {
	s, o := job(t)
	if err := test.IsSolved(&chainzk.Circuit{}, full(s, o, 234), ecc.BN254.ScalarField()); err != nil {
		t.Fatal(err)
	}
}

func TestCircuitRefusesWrongSettlements(t *testing.T) {
	s0, o0 := job(t)
	for _, c := range []struct {
		name string
		mut  func(s *zk.Statement, o *zk.Opening, rem *uint64)
	}{
		{"paid one unit more", func(s *zk.Statement, _ *zk.Opening, _ *uint64) { s.Paid++; s.Refund-- }},
		{"paid rounded up, remainder negative", func(s *zk.Statement, _ *zk.Opening, rem *uint64) {
			s.Paid++
			s.Refund--
			*rem = 0
		}},
		{"remainder 1000", func(s *zk.Statement, _ *zk.Opening, rem *uint64) { s.Paid--; s.Refund++; *rem += 1000 }},
		{"escrow not accounted", func(s *zk.Statement, _ *zk.Opening, _ *uint64) { s.Refund++ }},
		{"other tokens than committed", func(_ *zk.Statement, o *zk.Opening, _ *uint64) { o.TokensIn++ }},
		{"other blinding", func(_ *zk.Statement, o *zk.Opening, _ *uint64) { o.Blinding[31] ^= 1 }},
		{"price above the miner's", func(s *zk.Statement, _ *zk.Opening, _ *uint64) { s.MaxPricePer1k-- }},
		{"more tokens than the job allows", func(s *zk.Statement, _ *zk.Opening, _ *uint64) { s.MaxTokens = 1233 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, o, rem := s0, o0, uint64(234)
			c.mut(&s, &o, &rem)
			if err := test.IsSolved(&chainzk.Circuit{}, full(s, o, rem), ecc.BN254.ScalarField()); err == nil {
				t.Fatal("circuit accepted it")
			}
		})
	}
}

// TestCircuitRefusesFieldWrapAround: paid chosen so that paid × 1000 +
// remainder equals tokens × price only modulo the field is refused by the
// range checks.
func TestCircuitRefusesFieldWrapAround(t *testing.T) {
	s, o := job(t)
	r := ecc.BN254.ScalarField()
	// paid' = paid + r/1000 rounded, so paid' × 1000 ≡ paid × 1000 + k (mod r) — not a uint64.
	inv := new(big.Int).ModInverse(big.NewInt(1000), r)
	paid := new(big.Int).Add(big.NewInt(int64(s.Paid)), inv) // paid' × 1000 = paid × 1000 + 1 (mod r)
	c := full(s, o, 233)
	// The refund is lowered by as much (mod r), so the escrow still adds
	// up in the field: only the range checks stand in the way.
	c.Paid, c.Refund = paid, new(big.Int).Mod(new(big.Int).Sub(big.NewInt(int64(s.Refund)), inv), r)
	if err := test.IsSolved(&chainzk.Circuit{}, c, r); err == nil {
		t.Fatal("circuit accepted a paid amount of more than 64 bits")
	}
}

func TestCommitmentBindsEveryValue(t *testing.T) {
	_, o := job(t)
	c0, _ := chainzk.Commit(o)
	for _, mut := range []func(*zk.Opening){
		func(o *zk.Opening) { o.TokensIn++ }, func(o *zk.Opening) { o.TokensOut++ },
		func(o *zk.Opening) { o.PricePer1000++ }, func(o *zk.Opening) { o.Blinding[30]++ },
	} {
		o2 := o
		mut(&o2)
		if c, _ := chainzk.Commit(o2); c == c0 {
			t.Fatalf("commitment unchanged for %+v", o2)
		}
	}
	o.Blinding = [32]byte{0xff, 0xff} // above the field's modulus
	if _, err := chainzk.Commit(o); !errors.Is(err, chainzk.ErrCommitment) {
		t.Fatalf("non-canonical blinding: %v", err)
	}
}

// TestProveAndVerify runs a real setup, proof and verification, and the
// ways a settlement must be refused.
func TestProveAndVerify(t *testing.T) {
	keys, err := zk.Setup()
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
	if len(proof) > chainzk.MaxProofSize {
		t.Fatalf("proof of %d bytes", len(proof))
	}
	if err := v.Verify(s, proof); err != nil {
		t.Fatalf("valid proof refused: %v", err)
	}

	other := s
	other.Paid, other.Refund = s.Paid+1, s.Refund-1
	if err := v.Verify(other, proof); !errors.Is(err, chainzk.ErrProof) {
		t.Fatalf("proof for other public inputs: %v", err)
	}
	forged := append([]byte(nil), proof...)
	forged[10] ^= 0x01
	if err := v.Verify(s, forged); !errors.Is(err, chainzk.ErrProof) {
		t.Fatalf("forged proof: %v", err)
	}
	if err := v.Verify(s, append(proof, 0)); !errors.Is(err, chainzk.ErrProof) {
		t.Fatalf("trailing byte: %v", err)
	}
	if err := v.Verify(s, make([]byte, chainzk.MaxProofSize+1)); !errors.Is(err, chainzk.ErrProofSize) {
		t.Fatalf("oversized proof: %v", err)
	}
	if _, err := p.Prove(other, o); !errors.Is(err, zk.ErrOpening) {
		t.Fatalf("proving a wrong settlement: %v", err)
	}

	// A proof made with another setup's key fails against this key.
	keys2, err := zk.Setup()
	if err != nil {
		t.Fatal(err)
	}
	p2, err := zk.NewProver(keys2.Proving)
	if err != nil {
		t.Fatal(err)
	}
	proof2, err := p2.Prove(s, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(s, proof2); !errors.Is(err, chainzk.ErrProof) {
		t.Fatalf("proof under another setup: %v", err)
	}
	if _, err := chainzk.NewVerifier(keys.Verifying[:len(keys.Verifying)-1]); !errors.Is(err, zk.ErrKey) {
		t.Fatalf("truncated key: %v", err)
	}
}

// TestCachedSetupReusesItsKeys: a second devnet on the machine gets the
// first one's keys (no new setup), and they prove and verify.
func TestCachedSetupReusesItsKeys(t *testing.T) {
	dir := t.TempDir()
	k1, err := zk.CachedSetup(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := zk.CachedSetup(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.Verifying, k2.Verifying) || !bytes.Equal(k1.Proving, k2.Proving) {
		t.Fatal("the second call ran a new setup instead of reading the cache")
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		t.Fatalf("cache folder holds %v (%v), want one keys folder", entries, err)
	}
	// A damaged cache is set up again rather than used.
	if err := os.WriteFile(filepath.Join(dir, entries[0].Name(), zk.ProvingKeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	k3, err := zk.CachedSetup(dir)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(k3.Verifying, k1.Verifying) {
		t.Fatal("a damaged cache was used")
	}
}

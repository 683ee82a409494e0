package tx

import (
	"crypto/ed25519"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"testing"
)

// Encodings that separate ed25519 verifiers: the eight points of small
// order (with the sign bit set where it makes a second encoding), and
// non-canonical encodings (y >= p).
var edgePoints = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
	"0000000000000000000000000000000000000000000000000000000000000000", // order 4
	"0000000000000000000000000000000000000000000000000000000000000080",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1, non-canonical
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"0100000000000000000000000000000000000000000000000000000000000080", // identity, sign bit set
}

// group order L, and scalars around it.
var orderL, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

func le32(n *big.Int) []byte {
	b := make([]byte, 32)
	be := n.Bytes()
	for i := range be {
		b[i] = be[len(be)-1-i]
	}
	return b
}

func sameVerdict(t *testing.T, pub, msg, sig []byte) {
	t.Helper()
	want := len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
	if got := VerifySignature(pub, msg, sig); got != want {
		t.Fatalf("pub %x msg %x sig %x: VerifySignature %v, crypto/ed25519 %v", pub, msg, sig, got, want)
	}
}

// TestVerifySignatureAgreesWithStdlibOnEdgeCases: accepting a different
// set of signatures than the chain's other nodes would fork it, so every
// combination of edge-case key, R and S must get crypto/ed25519's verdict.
func TestVerifySignatureAgreesWithStdlibOnEdgeCases(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte("AITBC edge cases")
	good := ed25519.Sign(priv, msg)

	keys := [][]byte{pub}
	rs := [][]byte{good[:32]}
	for _, h := range edgePoints {
		p, _ := hex.DecodeString(h)
		keys = append(keys, p)
		rs = append(rs, p)
	}
	var ss [][]byte
	for _, n := range []*big.Int{
		big.NewInt(0), big.NewInt(1),
		new(big.Int).Sub(orderL, big.NewInt(1)), orderL, new(big.Int).Add(orderL, big.NewInt(1)),
		new(big.Int).Lsh(big.NewInt(1), 253),
	} {
		ss = append(ss, le32(n))
	}
	ss = append(ss, good[32:], le32(new(big.Int).Add(new(big.Int).SetBytes(reverse(good[32:])), orderL)))

	accepted := 0
	for _, k := range keys {
		for _, r := range rs {
			for _, s := range ss {
				for _, m := range [][]byte{msg, nil} {
					sig := append(append([]byte(nil), r...), s...)
					sameVerdict(t, k, m, sig)
					if ed25519.Verify(k, m, sig) {
						accepted++
					}
				}
			}
		}
	}
	// The honest signature and the small-order forgeries (A and R of
	// small order, S = 0) are accepted by crypto/ed25519; the rest not.
	if accepted < 2 {
		t.Fatalf("only %d combinations accepted; the edge cases do not exercise acceptance", accepted)
	}
	t.Logf("%d combinations compared, %d accepted by both", len(keys)*len(rs)*len(ss)*2, accepted)
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

func TestVerifySignatureAgreesWithStdlibOnMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		seed := make([]byte, 32)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		msg := seed[:rng.IntN(32)]
		sig := ed25519.Sign(priv, msg)
		if !VerifySignature(pub, msg, sig) {
			t.Fatalf("valid signature refused")
		}
		bad := append([]byte(nil), sig...)
		bad[rng.IntN(64)] ^= byte(1 << rng.IntN(8))
		sameVerdict(t, pub, msg, bad)
		badPub := append([]byte(nil), pub...)
		badPub[rng.IntN(32)] ^= byte(1 << rng.IntN(8))
		sameVerdict(t, badPub, msg, sig)
	}
	sameVerdict(t, nil, nil, nil)
	sameVerdict(t, make([]byte, 31), nil, make([]byte, 64))
}

// FuzzVerifyMatchesStdlib compares the verifier with crypto/ed25519 on
// arbitrary keys, messages and signatures.
func FuzzVerifyMatchesStdlib(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	sig := ed25519.Sign(priv, []byte("m"))
	f.Add([]byte(pub), []byte("m"), sig)
	for _, h := range edgePoints {
		p, _ := hex.DecodeString(h)
		f.Add(p, []byte("m"), append(append([]byte(nil), p...), make([]byte, 32)...))
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			if VerifySignature(pub, msg, sig) {
				t.Fatal("accepted a key or signature of the wrong size")
			}
			return
		}
		sameVerdict(t, pub, msg, sig)
	})
}

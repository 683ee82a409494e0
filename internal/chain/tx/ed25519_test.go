package tx

import (
	"compress/gzip"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
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

// keyCache is small so that the tests also run through its eviction.
var keyCache = NewVerifier(8)

// honest is a valid signature to put beside the case under test in a
// batch: a batch must give each item its own verdict.
var honest = func() Signed {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte("honest")
	return Signed{PubKey: pub, Msg: msg, Sig: ed25519.Sign(priv, msg)}
}()

// verdict checks that every way this node verifies gives one answer for
// (pub, msg, sig): VerifySignature, the key-caching Verifier twice (the
// second call uses the key the first kept), and batches with the case
// first, last and alone. It also checks that a signature crypto/ed25519
// accepts is accepted. It returns the verdict.
func verdict(t *testing.T, pub, msg, sig []byte) bool {
	t.Helper()
	want := VerifySignature(pub, msg, sig)
	for i := range 2 {
		if got := keyCache.Verify(pub, msg, sig); got != want {
			t.Fatalf("pub %x msg %x sig %x: Verifier (call %d) %v, VerifySignature %v", pub, msg, sig, i+1, got, want)
		}
	}
	c := Signed{PubKey: pub, Msg: msg, Sig: sig}
	// true: the case under test; false: the honest signature.
	for _, layout := range [][]bool{{true, false}, {false, false, true}, {true}, {true, true}} {
		batch := make([]Signed, len(layout))
		for i, isCase := range layout {
			batch[i] = honest
			if isCase {
				batch[i] = c
			}
		}
		ok := keyCache.VerifyBatch(batch)
		for i, isCase := range layout {
			w := true
			if isCase {
				w = want
			}
			if ok[i] != w {
				t.Fatalf("pub %x msg %x sig %x: batch of %d, item %d: %v, want %v", pub, msg, sig, len(batch), i, ok[i], w)
			}
		}
	}
	if len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig) && !want {
		t.Fatalf("pub %x msg %x sig %x: crypto/ed25519 accepts, this node refuses", pub, msg, sig)
	}
	return want
}

// TestVerifyAgreesOnEdgeCases: a node whose verdicts differ between its
// single and batched checks, or from another node's, forks the chain. So
// every combination of edge-case key, R and S gets one verdict from every
// path, and ZIP-215's rules decide it.
func TestVerifyAgreesOnEdgeCases(t *testing.T) {
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

	accepted, stdlib := 0, 0
	for _, k := range keys {
		for _, r := range rs {
			for _, s := range ss {
				for _, m := range [][]byte{msg, nil} {
					sig := append(append([]byte(nil), r...), s...)
					if verdict(t, k, m, sig) {
						accepted++
					}
					if ed25519.Verify(k, m, sig) {
						stdlib++
					}
				}
			}
		}
	}
	// The honest signature and the small-order forgeries (A and R of
	// small order, S = 0) are accepted; a non-canonical S never is.
	if accepted <= stdlib || stdlib < 2 {
		t.Fatalf("accepted %d, crypto/ed25519 %d: the edge cases do not exercise the cofactored rule", accepted, stdlib)
	}
	t.Logf("%d combinations; accepted %d (crypto/ed25519 would accept %d of them)", len(keys)*len(rs)*len(ss)*2, accepted, stdlib)
}

// TestVerifyAcceptsZIP215Vectors: the 196 cases of the ZIP-215
// specification (small-order and non-canonical A and R, message "Zcash"),
// which a ZIP-215 verifier must accept, single and batched. The file is
// curve25519-voi's copy (primitives/ed25519/testdata/zip215.json.gz).
func TestVerifyAcceptsZIP215Vectors(t *testing.T) {
	f, err := os.Open("testdata/zip215.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var cases [][2]string
	if err := json.NewDecoder(zr).Decode(&cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) != 196 {
		t.Fatalf("%d vectors, want 196", len(cases))
	}
	var batch []Signed
	for _, c := range cases {
		pub, _ := hex.DecodeString(c[0])
		sig, _ := hex.DecodeString(c[1])
		if !verdict(t, pub, []byte("Zcash"), sig) {
			t.Fatalf("vector %s %s refused", c[0], c[1])
		}
		batch = append(batch, Signed{PubKey: pub, Msg: []byte("Zcash"), Sig: sig})
	}
	for i, ok := range NewVerifier(1000).VerifyBatch(batch) {
		if !ok {
			t.Fatalf("vector %d refused in a batch of all of them", i)
		}
	}
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

func TestVerifyAgreesOnMutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1000; i++ {
		seed := make([]byte, 32)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		msg := seed[:rng.IntN(32)]
		sig := ed25519.Sign(priv, msg)
		if !verdict(t, pub, msg, sig) {
			t.Fatalf("valid signature refused")
		}
		bad := append([]byte(nil), sig...)
		bad[rng.IntN(64)] ^= byte(1 << rng.IntN(8))
		verdict(t, pub, msg, bad)
		badPub := append([]byte(nil), pub...)
		badPub[rng.IntN(32)] ^= byte(1 << rng.IntN(8))
		verdict(t, badPub, msg, sig)
	}
	verdict(t, nil, nil, nil)
	verdict(t, make([]byte, 31), nil, make([]byte, 64))
}

// TestVerifyBatchFindsTheBadOnes: a batch of valid signatures with a few
// broken ones must refuse exactly those.
func TestVerifyBatchFindsTheBadOnes(t *testing.T) {
	v := NewVerifier(100)
	var batch []Signed
	bad := map[int]bool{3: true, 17: true, 40: true}
	for i := range 48 {
		pub, priv, _ := ed25519.GenerateKey(nil)
		msg := []byte{byte(i)}
		sig := ed25519.Sign(priv, msg)
		if bad[i] {
			sig[i%64] ^= 1
		}
		batch = append(batch, Signed{PubKey: pub, Msg: msg, Sig: sig})
	}
	for i, ok := range v.VerifyBatch(batch) {
		if ok == bad[i] {
			t.Fatalf("item %d: verdict %v, broken %v", i, ok, bad[i])
		}
	}
	for i, ok := range v.VerifyBatch(batch[:3]) { // all valid
		if !ok {
			t.Fatalf("item %d of an all-valid batch refused", i)
		}
	}
	if got := v.VerifyBatch(nil); len(got) != 0 {
		t.Fatalf("empty batch: %v", got)
	}
}

// FuzzVerifyAgrees feeds arbitrary keys, messages and signatures to every
// verification path (see verdict).
func FuzzVerifyAgrees(f *testing.F) {
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
		}
		verdict(t, pub, msg, sig)
	})
}

func TestVerifierKeepsAtMostMaxKeys(t *testing.T) {
	v := NewVerifier(4)
	for i := range 50 {
		pub, priv, _ := ed25519.GenerateKey(nil)
		msg := []byte{byte(i)}
		if !v.Verify(pub, msg, ed25519.Sign(priv, msg)) {
			t.Fatal("valid signature refused")
		}
		if n := len(v.keys); n > 4 {
			t.Fatalf("after %d keys the verifier holds %d, max 4", i+1, n)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 32)
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			ed25519.Verify(pub, msg, sig)
		}
	})
	b.Run("VerifySignature", func(b *testing.B) {
		for b.Loop() {
			VerifySignature(pub, msg, sig)
		}
	})
	b.Run("Verifier-cached-key", func(b *testing.B) {
		v := NewVerifier(16)
		for b.Loop() {
			v.Verify(pub, msg, sig)
		}
	})
	for _, n := range []int{8, 32} {
		b.Run(fmt.Sprintf("VerifyBatch-%d-cached-keys", n), func(b *testing.B) {
			v := NewVerifier(2 * n)
			batch := make([]Signed, n)
			for i := range batch {
				pub, priv, _ := ed25519.GenerateKey(nil)
				batch[i] = Signed{PubKey: pub, Msg: msg, Sig: ed25519.Sign(priv, msg)}
			}
			for b.Loop() {
				v.VerifyBatch(batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1000, "µs/signature")
		})
	}
}

// FuzzBatchVerdictsMatchSingle: a batch of up to 100 signatures (more than
// one sub-batch of 64), some of them damaged where the fuzzer says (a
// flipped bit in the signature, the message or the key), or swapped for an
// edge-case point, gets from VerifyBatch exactly the verdicts Verify gives
// each one: a bad signature never refuses a good one beside it and is
// never accepted with them.
func FuzzBatchVerdictsMatchSingle(f *testing.F) {
	f.Add(uint8(10), []byte{3, 0, 17})
	f.Add(uint8(70), []byte{1, 2, 64, 130, 200, 255})
	f.Add(uint8(2), []byte{})
	f.Fuzz(func(t *testing.T, n uint8, damage []byte) {
		count := 2 + int(n)%99
		v := NewVerifier(200)
		items := make([]Signed, count)
		for i := range items {
			seed := make([]byte, ed25519.SeedSize)
			seed[0], seed[1] = byte(i), byte(i>>8)
			priv := ed25519.NewKeyFromSeed(seed)
			msg := []byte(fmt.Sprintf("message %d", i))
			items[i] = Signed{PubKey: priv.Public().(ed25519.PublicKey), Msg: msg, Sig: ed25519.Sign(priv, msg)}
		}
		for k := 0; k+1 < len(damage); k += 2 {
			it := &items[int(damage[k])%count]
			b := damage[k+1]
			switch b % 4 {
			case 0:
				it.Sig = append([]byte(nil), it.Sig...)
				it.Sig[int(b)%len(it.Sig)] ^= 1 << (b % 8)
			case 1:
				it.Msg = append(append([]byte(nil), it.Msg...), b)
			case 2:
				p, _ := hex.DecodeString(edgePoints[int(b)%len(edgePoints)])
				it.PubKey = p
			case 3:
				it.PubKey = append([]byte(nil), it.PubKey...)
				it.PubKey[int(b)%len(it.PubKey)] ^= 1 << (b % 8)
			}
		}
		got := v.VerifyBatch(items)
		for i, it := range items {
			if want := v.Verify(it.PubKey, it.Msg, it.Sig); got[i] != want {
				t.Fatalf("item %d of %d: batch says %v, alone %v", i, count, got[i], want)
			}
		}
	})
}

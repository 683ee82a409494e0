package tx

import (
	"crypto/ed25519"
	"crypto/sha3"
	"encoding/binary"
	"io"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// rules are ZIP-215's (https://zips.z.cash/zip-0215): the cofactored
// verification equation, any encoding of A and R that decodes to a curve
// point, S canonical. Which signatures a node accepts is consensus, and
// ZIP-215 is the rule under which verifying one signature at a time and
// verifying a batch always agree, so a node may batch (as CometBFT does
// for its own ed25519 votes, under the same rule). Every signature that
// crypto/ed25519 accepts is accepted here too; the two differ only on
// crafted signatures with small-order components and on non-canonical
// point encodings, which no honest signer produces.
var rules = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// VerifySignature reports whether sig is pub's ed25519 signature of msg,
// under ZIP-215's rules. Signature checks are the largest share of a
// node's CPU under load; curve25519-voi's verifier is about twice as fast
// as the standard library's here.
func VerifySignature(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, rules)
}

// Verifier verifies signatures like VerifySignature, one at a time or in
// batches, keeping the expanded form of recently seen public keys:
// decompressing a key and building its lookup table is a fifth of a
// verification, and a sender usually signs many transactions. Safe for
// concurrent use; make it with NewVerifier.
type Verifier struct {
	mu   sync.Mutex
	max  int
	keys map[[ed25519.PublicKeySize]byte]*voi.ExpandedPublicKey
}

// NewVerifier returns a verifier that keeps at most max expanded keys
// (about 1.5 KiB each).
func NewVerifier(max int) *Verifier {
	return &Verifier{max: max, keys: make(map[[ed25519.PublicKeySize]byte]*voi.ExpandedPublicKey)}
}

// Verify reports whether sig is pub's signature of msg, with exactly
// VerifySignature's verdict.
func (v *Verifier) Verify(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	ex := v.expanded(pub)
	if ex == nil {
		return false // not the encoding of a curve point
	}
	return voi.VerifyExpandedWithOptions(ex, msg, sig, rules)
}

// Signed is one signature to check.
type Signed struct {
	PubKey, Msg, Sig []byte
}

// VerifyBatch checks every item and reports each one's verdict, the same
// as Verify's. All valid (the common case) costs one multi-scalar
// multiplication for the whole batch, about half of verifying each; when
// one is not, every item is checked on its own.
//
// The batch equation weighs each signature with a 128-bit coefficient that
// a forger must not be able to predict. They are drawn from SHAKE256 of
// the whole batch (every key, signature and message), not from the
// system's randomness: the state machine stays free of randomness, and
// changing any input changes every coefficient, so making a bad signature
// pass means finding a 2^-128 event by grinding the hash.
func (v *Verifier) VerifyBatch(items []Signed) []bool {
	ok := make([]bool, 0, len(items))
	for len(items) > 0 {
		n := min(len(items), maxBatch)
		ok = append(ok, v.verifyBatch(items[:n])...)
		items = items[n:]
	}
	return ok
}

// maxBatch keeps batches where curve25519-voi uses the expanded keys
// (fewer than 95 entries; larger ones switch to Pippenger's method without
// them, which measured slower per signature here).
const maxBatch = 64

func (v *Verifier) verifyBatch(items []Signed) []bool {
	ok := make([]bool, len(items))
	if len(items) == 1 {
		ok[0] = v.Verify(items[0].PubKey, items[0].Msg, items[0].Sig)
		return ok
	}
	bv := voi.NewBatchVerifier()
	var idx []int // positions of the items in bv
	seed := sha3.NewSHAKE256()
	for i, it := range items {
		if len(it.PubKey) != ed25519.PublicKeySize || len(it.Sig) != ed25519.SignatureSize {
			continue
		}
		ex := v.expanded(it.PubKey)
		if ex == nil {
			continue
		}
		bv.AddExpandedWithOptions(ex, it.Msg, it.Sig, rules)
		idx = append(idx, i)
		for _, b := range [][]byte{it.PubKey, it.Sig, it.Msg} {
			seed.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
			seed.Write(b)
		}
	}
	if len(idx) == 0 {
		return ok
	}
	_, valid := bv.Verify(io.Reader(seed))
	for k, i := range idx {
		ok[i] = valid[k]
	}
	return ok
}

// expanded returns pub's expanded form, from the cache when it is there,
// or nil when pub does not decode to a curve point.
func (v *Verifier) expanded(pub []byte) *voi.ExpandedPublicKey {
	k := [ed25519.PublicKeySize]byte(pub)
	v.mu.Lock()
	ex := v.keys[k]
	v.mu.Unlock()
	if ex != nil {
		return ex
	}
	ex, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.keys) >= v.max {
		// Forget an arbitrary half: cheaper than tracking recency, and
		// keys in use come straight back.
		n := 0
		for key := range v.keys {
			if n >= v.max/2 {
				break
			}
			delete(v.keys, key)
			n++
		}
	}
	v.keys[k] = ex
	return ex
}

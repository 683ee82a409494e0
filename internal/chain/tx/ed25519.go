package tx

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// stdlibRules makes curve25519-voi accept exactly the signatures that
// crypto/ed25519 accepts (cofactorless equation, small-order and
// non-canonical A allowed, canonical S and R required). Which signatures a
// node accepts is consensus: every node must agree on every edge case, and
// this chain started with crypto/ed25519's rules. FuzzVerifyMatchesStdlib
// checks the two against each other.
var stdlibRules = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// VerifySignature reports whether sig is pub's ed25519 signature of msg,
// under crypto/ed25519's rules. It is curve25519-voi's verifier, about
// twice as fast as the standard library's on this project's machines;
// signature checks are the largest share of a node's CPU under load.
func VerifySignature(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, stdlibRules)
}

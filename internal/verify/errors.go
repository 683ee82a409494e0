package verify

import "errors"

// Errors. Each crosses the CLI as its message; ErrMismatch is the verdict
// "the miner did not run what it says", the others are unusable input.
var (
	// ErrCommitment is a malformed commitment or attestation.
	ErrCommitment = errors.New("verify: malformed commitment")
	// ErrModelMismatch: the model at hand is not the one attested (file
	// hash or quantisation), so recomputing with it proves nothing.
	ErrModelMismatch = errors.New("verify: model differs from the attested one")
	// ErrTokens: the attested tokens do not encode the prompt or decode to
	// the result the receipt signs.
	ErrTokens = errors.New("verify: tokens do not match prompt or result")
	// ErrMismatch: the recomputation does not reproduce the commitments.
	ErrMismatch = errors.New("verify: recomputation does not match the commitments")
)

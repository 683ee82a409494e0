package verify

import (
	"errors"
	"fmt"
)

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
	// ErrReplay: the recomputation is exact, but an output token or the
	// stop is not what the engine's sampler draws from the attested
	// parameters (a truncated or altered output). It wraps ErrMismatch:
	// the same verdict, with a specific reason.
	ErrReplay = fmt.Errorf("%w: the sampler's replay draws another token", ErrMismatch)
	// ErrParams: the attestation claims other sampling parameters (or
	// token limit) than the job asked for. It wraps ErrMismatch.
	ErrParams = fmt.Errorf("%w: sampling parameters differ from the job's", ErrMismatch)
	// ErrStopString is what a generation callback wraps to say the text
	// reached a stop string (GenerateStops): not a failure.
	ErrStopString = errors.New("verify: the text reached a stop string")
)

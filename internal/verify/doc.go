// Package verify makes inference verifiable: a miner running the built-in
// engine commits, every ChunkTokens generated tokens, to the top-k values
// of the last hidden state (TOPLOC's polynomial encoding, poly.go), and
// signs those commitments, with hashes of its model file, its quantisation
// and the engine version, into the job's receipt (an Attestation, whose
// hash the receipt carries). A verifier re-runs the prompt and the output
// through the same model in one batched prefill (Recompute) and compares.
//
// The miner's backend, the CLI (`aitbc receipt verify --recompute`) and the
// measurement harness import it; it imports the engine and the chain's
// canonical CBOR codec, nothing that does I/O on its own.
// docs/VERIFICATION.md documents the encoding, the tolerances and the
// measured error rates.
package verify

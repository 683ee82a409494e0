// Package engine is AITBC's built-in LLM inference engine: a LLaMA-architecture
// transformer forward pass in pure Go, a sampler, model loaders and a small
// on-disk model registry.
//
// A Model holds read-only weights, a tokenizer and a Config. It is loaded from
// a llama2.c checkpoint (legacy version 0, or version 1 "ak42") with its
// tokenizer.bin, from a GGUF file of the "llama" or "qwen2" architecture
// with F32, F16, BF16, Q4_0-Q8_0 or Q2_K-Q6_K tensors (a Q4_K_M mix too) and
// a SentencePiece or byte-level BPE tokenizer, or from the tolstoy-1m model
// embedded in the binary
// (LoadDefault). Every header field and size is validated before use; bad
// input yields one of the sentinel errors below, testable with errors.Is.
//
// Model.Generate runs a whole request: tokenize, process the prompt, sample
// token after token, stream each one to a callback, stop on BOS/EOS, the
// token limit or a cancelled context. A Model is safe for concurrent
// Generate calls; each call has its own Session (KV cache and scratch).
//
// Session exposes the forward pass in pieces for callers that split a model
// across machines: Embed (token -> hidden state), Layers (run layers a..b on
// a hidden state at a position, keeping their KV cache), Head (final norm
// and classifier -> logits). Running layers 0..k in one session and k..n in
// another gives bit-for-bit the logits of the unsplit pass.
//
// With temperature 0 the engine reproduces llama2.c's run.c exactly: the
// float32 arithmetic is done in the same order (each dot product summed
// sequentially; rows may be computed in parallel or interleaved, which does
// not change any sum). Sampling uses run.c's xorshift generator, so a seed
// defines the output on every machine.
//
// Imported by the CLI (aitbc model ...) and by the miner. It depends only on
// the standard library, its subpackages gguf and tokenizer, and the embedded
// models package.
package engine

// Package models holds the model files that ship inside the aitbc binary:
// tolstoy-1m, the engine's default model and correctness fixture (see
// tolstoy-1m/README.md). Package engine loads them through LoadDefault;
// other packages should not need to import this one.
package models

import _ "embed" // for go:embed

// DefaultName is the name of the embedded default model.
const DefaultName = "tolstoy-1m"

// TolstoyModel is tolstoy-1m/model.bin, a llama2.c version 0 checkpoint.
//
//go:embed tolstoy-1m/model.bin
var TolstoyModel []byte

// TolstoyTokenizer is tolstoy-1m/tokenizer.bin, a llama2.c tokenizer.
//
//go:embed tolstoy-1m/tokenizer.bin
var TolstoyTokenizer []byte

// TolstoyREADME is tolstoy-1m/README.md: provenance, architecture and the
// exact reference outputs the engine is tested against.
//
//go:embed tolstoy-1m/README.md
var TolstoyREADME string

// Package fault holds the chain's fault tests: four validators, each an
// `aitbc node start` process on loopback, under a load of signed
// transfers, while the tests kill nodes with SIGKILL, halt the chain,
// partition the network through TCP proxies and add a node that catches
// up from genesis. After each fault they check CometBFT's e2e invariants
// black-box, through the REST API: every node serves the same block hash
// and app hash at every height, and every transfer the load generator saw
// committed is committed on every node at the same height.
//
// The short set runs in `go test ./...`; `AITBC_FAULT_LONG=1` runs the
// long set (docs/TESTING.md). There is no importable code here.
package fault

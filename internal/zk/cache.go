package zk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
)

// CachedSetup returns the keys of a single-party setup kept under
// cacheDir, running Setup only when no keys for this exact circuit are
// there yet. It is for devnets: every devnet on a machine then shares one
// set of keys, and a new devnet costs no setup (2 s of CPU, more under
// load). That weakens nothing a devnet has: the setup's toxic waste is
// never written anywhere, so sharing the keys gives no one a way to forge
// proofs that a fresh setup would not (and a devnet's operator could run
// its own setup anyway). The folder is named by the SHA-256 of the
// compiled constraint system, so a changed circuit never loads stale keys;
// keys are written to a temporary folder and renamed into place, so
// concurrent devnets never read half-written files.
func CachedSetup(cacheDir string) (Keys, error) {
	ccs, err := chainzk.Compile()
	if err != nil {
		return Keys{}, err
	}
	h := sha256.New()
	if _, err := ccs.WriteTo(h); err != nil {
		return Keys{}, fmt.Errorf("zk: hash circuit: %w", err)
	}
	dir := filepath.Join(cacheDir, hex.EncodeToString(h.Sum(nil))[:16])
	if k, err := readKeys(dir); err == nil {
		return k, nil
	} else if !os.IsNotExist(err) {
		os.RemoveAll(dir) // damaged: replaced below
	}
	keys, err := Setup()
	if err != nil {
		return Keys{}, err
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return keys, nil // no cache: the keys are still good
	}
	tmp, err := os.MkdirTemp(cacheDir, ".setup-*")
	if err != nil {
		return keys, nil
	}
	if err := keys.WriteFiles(tmp); err != nil || os.Rename(tmp, dir) != nil {
		os.RemoveAll(tmp) // another devnet won the race, or the disk is full
	}
	return keys, nil
}

// readKeys reads a cached pair, checking that the proving key parses.
func readKeys(dir string) (Keys, error) {
	pk, err := os.ReadFile(filepath.Join(dir, ProvingKeyFile))
	if err != nil {
		return Keys{}, err
	}
	vk, err := ReadVerifyingKey(dir)
	if err != nil {
		return Keys{}, err
	}
	if _, err := NewProver(pk); err != nil {
		return Keys{}, err
	}
	if _, err := chainzk.NewVerifier(vk); err != nil {
		return Keys{}, err
	}
	return Keys{Proving: pk, Verifying: vk}, nil
}

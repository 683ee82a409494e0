package walletd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvAPIKey is the environment variable that overrides the API key file
// for the daemon and its clients (read by the CLI, not by this package).
const EnvAPIKey = "AITBC_WALLET_API_KEY"

// APIKeyPath is where the daemon of an AITBC home keeps its API key, so
// that the CLI on the same home finds it.
func APIKeyPath(home string) string { return filepath.Join(home, "wallet", "api-key") }

// ReadAPIKey reads the API key file of home.
func ReadAPIKey(home string) (string, error) {
	b, err := os.ReadFile(APIKeyPath(home))
	if err != nil {
		return "", fmt.Errorf("walletd: api key: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("walletd: api key file %s is empty", APIKeyPath(home))
	}
	return k, nil
}

// LoadOrCreateAPIKey returns the API key of home, generating a random one
// (32 bytes, hex) into APIKeyPath(home) with mode 0600 when there is none.
func LoadOrCreateAPIKey(home string) (string, error) {
	if k, err := ReadAPIKey(home); err == nil {
		return k, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("walletd: api key: %w", err)
	}
	key := hex.EncodeToString(buf)
	path := APIKeyPath(home)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("walletd: api key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".api-key.tmp-*")
	if err != nil {
		return "", fmt.Errorf("walletd: api key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(key + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", fmt.Errorf("walletd: api key: %w", werr)
	}
	// Link never replaces: when two daemons start at once, both use the
	// key that won.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadAPIKey(home)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return "", fmt.Errorf("walletd: api key: %w", err)
		}
	}
	return key, nil
}

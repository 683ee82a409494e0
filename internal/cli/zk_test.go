package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	chainzk "github.com/aitbc/aitbc/internal/chain/zk"
	"github.com/aitbc/aitbc/internal/zk"
)

// TestZKSetupWritesKeysThatFitTheGenesis: `aitbc zk setup` writes both
// key files, and the verifying key it prints for the genesis is the file's
// and parses as the chain will parse it.
func TestZKSetupWritesKeysThatFitTheGenesis(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "zk")
	out, errOut, err := runCLI(t, "zk", "setup", "--out", dir, "--output", "json")
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	var v struct {
		ProvingKey string `json:"proving_key"`
		VK         string `json:"private_vk"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	vk, _ := base64.StdEncoding.DecodeString(v.VK)
	file, err := zk.ReadVerifyingKey(dir)
	if err != nil || string(file) != string(vk) {
		t.Fatalf("printed key is not the file's: %v", err)
	}
	if _, err := chainzk.NewVerifier(vk); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(v.ProvingKey); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("proving key %v %v", st, err)
	}
	if _, _, err := runCLI(t, "zk", "ceremony", "phase2", "--dir", dir); err == nil {
		t.Fatal("phase2 without --beacon accepted")
	}
}

package cli_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/walletd"
)

// `aitbc wallet daemon key create --wallets a` makes a key that opens a
// and not b; list shows it without the key; revoke ends it.
func TestWalletDaemonKeyCommands(t *testing.T) {
	e := newWalletEnv(t, true)
	e.ok("create", "--name", "alice", "--password", "pw")
	e.ok("create", "--name", "bob", "--password", "pw")
	e.fails("--wallets is required", "wallet", "daemon", "key", "create")

	var k walletd.NewKey
	if err := json.Unmarshal([]byte(e.ok("wallet", "daemon", "key", "create", "--wallets", "alice", "--label", "shop", "--output", "json")), &k); err != nil {
		t.Fatal(err)
	}
	if k.Key == "" || len(k.ID) != 16 || strings.Join(k.Wallets, ",") != "alice" || k.Label != "shop" {
		t.Fatalf("created %+v", k)
	}
	list := e.ok("wallet", "daemon", "key", "list")
	if !strings.Contains(list, k.ID) || !strings.Contains(list, "alice") || strings.Contains(list, k.Key) {
		t.Fatalf("key list:\n%s", list)
	}

	// The CLI with the scoped key: alice yes, bob no.
	t.Setenv(walletd.EnvAPIKey, k.Key)
	if out := e.ok("list"); !strings.Contains(out, "alice:") || strings.Contains(out, "bob:") {
		t.Fatalf("list with alice's key:\n%s", out)
	}
	e.fails("scoped to other wallets", "wallet", "unlock", "--name", "bob", "--password", "pw")
	e.fails("needs the admin API key", "wallet", "daemon", "key", "list")
	os.Unsetenv(walletd.EnvAPIKey)

	e.ok("wallet", "daemon", "key", "revoke", k.ID)
	if out := e.ok("wallet", "daemon", "key", "list", "--output", "json"); !strings.Contains(out, `"keys": []`) && !strings.Contains(out, `"keys":[]`) {
		t.Fatalf("after revoke: %s", out)
	}
	e.fails("no such API key", "wallet", "daemon", "key", "revoke", k.ID)
}

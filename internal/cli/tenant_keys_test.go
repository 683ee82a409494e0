package cli_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Run(m) }

// coordinator tenant keys lists a tenant's keys by id; tenant revoke
// deletes one, and revoking it again fails: on an SQLite file and on a
// PostgreSQL database (--store postgres://...).
func TestTenantKeysAndRevoke(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testTenantKeysAndRevoke(t, filepath.Join(t.TempDir(), "c.db")) })
	t.Run("postgres", func(t *testing.T) { testTenantKeysAndRevoke(t, pgtest.DSN(t)) })
}

func testTenantKeysAndRevoke(t *testing.T, db string) {
	home := t.TempDir()
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		root := cli.NewRoot("aitbc", strings.NewReader(""), &out, &errb)
		root.SetArgs(append([]string{"--home", home, "--output", "json"}, args...))
		err := root.Execute()
		return out.String(), err
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	addr := address.FromPubKey(pub).String()
	var added struct {
		TenantID string `json:"tenant_id"`
	}
	out, err := run("coordinator", "tenant", "add", "--address", addr, "--store", db)
	if err != nil {
		t.Fatalf("tenant add: %v %s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := run("coordinator", "tenant", "add", "--address", addr, "--store", db); err != nil {
		t.Fatal(err)
	}
	out, err = run("coordinator", "tenant", "keys", "--tenant", added.TenantID, "--store", db)
	if err != nil {
		t.Fatal(err)
	}
	var keys []struct {
		ID string `json:"key_id"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("keys %s %v", out, err)
	}
	if _, err := run("coordinator", "tenant", "revoke", "--tenant", added.TenantID, "--key-id", keys[0].ID, "--store", db); err != nil {
		t.Fatal(err)
	}
	if _, err := run("coordinator", "tenant", "revoke", "--tenant", added.TenantID, "--key-id", keys[0].ID, "--store", db); err == nil {
		t.Fatal("revoking a revoked key succeeded")
	}
	out, _ = run("coordinator", "tenant", "keys", "--tenant", added.TenantID, "--store", db)
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 {
		t.Fatalf("after revoke: %s %v", out, err)
	}
}

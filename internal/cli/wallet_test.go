package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/walletd"
	"github.com/aitbc/aitbc/internal/walletd/fakenode"
)

// walletEnv is a fake node, optionally a wallet daemon on the same home,
// and the CLI pointed at both.
type walletEnv struct {
	t         *testing.T
	home      string
	node      *fakenode.Node
	nodeURL   string
	walletURL string
	daemon    *walletd.Server
}

// clearEnv keeps the developer's AITBC_* variables out of the tests.
func clearEnv(t *testing.T) {
	for _, k := range []string{"AITBC_HOME", "AITBC_NODE", "AITBC_WALLET_URL", "AITBC_OUTPUT", "AITBC_PASSWORD",
		"AITBC_MNEMONIC", "AITBC_WALLET_API_KEY", "AITBC_API_KEY", "AITBC_NAME", "AITBC_FROM", "AITBC_TO", "AITBC_AMOUNT",
		"AITBC_ADDRESS", "AITBC_FEE", "AITBC_WAIT", "AITBC_TIMEOUT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func newWalletEnv(t *testing.T, withDaemon bool) *walletEnv {
	t.Helper()
	clearEnv(t)
	e := &walletEnv{t: t, home: t.TempDir(), node: fakenode.New("aitbc-test", coin.Unit/1000)}
	ns := e.node.Start()
	t.Cleanup(ns.Close)
	e.nodeURL = ns.URL
	if withDaemon {
		// No API key given: the daemon makes <home>/wallet/api-key, where
		// the CLI on the same home finds it.
		srv, err := walletd.NewServer(walletd.Config{
			Home: e.home, Node: rpc.NewClient(ns.URL),
			Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		t.Cleanup(srv.Service().LockAll)
		e.daemon, e.walletURL = srv, hs.URL
	} else {
		e.walletURL = "http://" + deadAddr(t)
	}
	return e
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// run executes one aitbc command line in-process.
func (e *walletEnv) run(args ...string) (stdout, stderr string, err error) {
	e.t.Helper()
	var out, errb bytes.Buffer
	root := cli.NewRoot("aitbc", strings.NewReader(""), &out, &errb)
	root.SetArgs(append([]string{"--home", e.home, "--node", e.nodeURL, "--wallet-url", e.walletURL}, args...))
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func (e *walletEnv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.run(args...)
	if err != nil {
		e.t.Fatalf("aitbc %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// fails runs a command that must fail with a message containing want.
func (e *walletEnv) fails(want string, args ...string) {
	e.t.Helper()
	out, _, err := e.run(args...)
	if err == nil {
		e.t.Fatalf("aitbc %s succeeded (%q); want an error with %q", strings.Join(args, " "), out, want)
	}
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		e.t.Fatalf("aitbc %s: error %q; want one line containing %q", strings.Join(args, " "), err, want)
	}
}

// addrOf does what the seed does: list | grep "name:" | cut -d" " -f2.
func (e *walletEnv) addrOf(name string) string {
	e.t.Helper()
	for _, line := range strings.Split(e.ok("list"), "\n") {
		if strings.HasPrefix(line, name+":") {
			return strings.Split(line, " ")[1]
		}
	}
	e.t.Fatalf("%s not listed", name)
	return ""
}

func (e *walletEnv) fund(name string, amount coin.Amount) {
	e.t.Helper()
	a, err := address.Parse(e.addrOf(name))
	if err != nil {
		e.t.Fatal(err)
	}
	e.node.Fund(a, amount)
}

func TestSeedWalletFlowThroughTheDaemon(t *testing.T) {
	e := newWalletEnv(t, true)
	e.ok("create", "--name", "genesis-ops", "--password", "123")
	e.fund("genesis-ops", 1_000_000*coin.Unit)

	out := e.ok("create", "--name", "customer-1", "--password", "123")
	if !strings.HasPrefix(out, "customer-1: aitbc1") || strings.Count(out, "\n") != 1 {
		t.Fatalf("create printed %q", out)
	}
	list := e.ok("list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "customer-1: aitbc1") || !strings.HasPrefix(lines[1], "genesis-ops: aitbc1") {
		t.Fatalf("list printed %q", list)
	}
	to := e.addrOf("customer-1")
	hash := strings.TrimSpace(e.ok("send", "--from", "genesis-ops", "--to", to, "--amount", "1000", "--password", "123"))
	if len(hash) != 66 || !strings.HasPrefix(hash, "0x") {
		t.Fatalf("send printed %q, want a tx hash", hash)
	}
	if got := e.ok("balance", "--name", "customer-1"); got != "customer-1: 1000 AITBC\n" {
		t.Fatalf("balance printed %q", got)
	}
	if got := e.ok("balance", "--address", to); got != to+": 1000 AITBC\n" {
		t.Fatalf("balance by address printed %q", got)
	}
	// --wait waits for the commit; the hash is still what stdout gets.
	out, errOut, err := e.run("send", "--from", "genesis-ops", "--to", to, "--amount", "0.5", "--password", "123", "--wait")
	if err != nil || len(strings.TrimSpace(out)) != 66 || !strings.Contains(errOut, "committed in block") {
		t.Fatalf("send --wait: %q %q %v", out, errOut, err)
	}
	if got := e.ok("wallet", "balance", "--name", "customer-1"); got != "customer-1: 1000.5 AITBC\n" {
		t.Fatalf("wallet balance printed %q", got)
	}

	// --output json on the same commands.
	var b walletd.Balance
	if err := json.Unmarshal([]byte(e.ok("--output", "json", "balance", "--name", "customer-1")), &b); err != nil || b.Balance != 1000.5 || b.Currency != "AITBC" {
		t.Fatalf("json balance %+v, %v", b, err)
	}
	var ws []walletd.WalletInfo
	if err := json.Unmarshal([]byte(e.ok("-o", "json", "wallet", "list")), &ws); err != nil || len(ws) != 2 {
		t.Fatalf("json list %+v, %v", ws, err)
	}
	var sent map[string]any
	if err := json.Unmarshal([]byte(e.ok("-o", "json", "send", "--from", "genesis-ops", "--to", to, "--amount", "1", "--password", "123", "--wait")), &sent); err != nil ||
		sent["nonce"] != 2.0 || sent["committed"].(map[string]any)["status"] != "committed" {
		t.Fatalf("json send %v, %v", sent, err)
	}

	// AITBC_PASSWORD stands in for --password.
	t.Setenv("AITBC_PASSWORD", "123")
	e.ok("send", "--from", "genesis-ops", "--to", to, "--amount", "1")
	os.Unsetenv("AITBC_PASSWORD")
}

func TestUnlockLockBackupRestoreThroughTheDaemon(t *testing.T) {
	e := newWalletEnv(t, true)
	e.ok("create", "--name", "genesis-ops", "--password", "123")
	e.ok("wallet", "create", "--name", "customer-1", "--password", "123")
	e.fund("genesis-ops", 100*coin.Unit)
	to := e.addrOf("customer-1")

	e.fails(`wallet "genesis-ops" is locked`, "send", "--from", "genesis-ops", "--to", to, "--amount", "1")
	out := e.ok("wallet", "unlock", "--name", "genesis-ops", "--password", "123", "--timeout", "10m")
	if !strings.HasPrefix(out, "genesis-ops unlocked until ") {
		t.Fatalf("unlock printed %q", out)
	}
	if out := e.ok("wallet", "show", "--name", "genesis-ops"); !strings.Contains(out, "unlocked  until") {
		t.Fatalf("show printed %q", out)
	}
	e.ok("send", "--from", "genesis-ops", "--to", to, "--amount", "1")
	e.ok("wallet", "send", "--from", "genesis-ops", "--to", to, "--amount", "1")
	if got := e.ok("balance", "--name", "customer-1"); got != "customer-1: 2 AITBC\n" {
		t.Fatalf("balance %q", got)
	}
	if out := e.ok("wallet", "lock", "--name", "genesis-ops"); out != "genesis-ops locked\n" {
		t.Fatalf("lock printed %q", out)
	}
	e.fails(`wallet "genesis-ops" is locked`, "send", "--from", "genesis-ops", "--to", to, "--amount", "1")
	e.fails("keystore: wrong password", "wallet", "unlock", "--name", "genesis-ops", "--password", "nope")
	e.fails("--timeout must be", "wallet", "unlock", "--name", "genesis-ops", "--password", "123", "--timeout", "0s")

	out, errOut, err := e.run("wallet", "backup", "--name", "customer-1", "--password", "123")
	if err != nil || len(strings.Fields(out)) != 24 || !strings.Contains(errOut, "Anyone with these words") {
		t.Fatalf("backup: %q %q %v", out, errOut, err)
	}
	m := strings.TrimSpace(out)
	e.fails("keystore: wrong password", "wallet", "backup", "--name", "customer-1", "--password", "1234")
	restored := e.ok("wallet", "restore", "--name", "customer-copy", "--mnemonic", m, "--password", "456")
	if restored != "customer-copy: "+to+"\n" {
		t.Fatalf("restore printed %q, want the address %s", restored, to)
	}
	e.fails("keystore: invalid recovery phrase", "wallet", "restore", "--name", "x", "--mnemonic", "one two three", "--password", "4")
	e.fails("keystore: wallet already exists", "wallet", "restore", "--name", "customer-copy", "--mnemonic", m, "--password", "4")
	// The restored copy signs for the same account.
	e.ok("send", "--from", "customer-copy", "--to", e.addrOf("genesis-ops"), "--amount", "1", "--password", "456")
	if got := e.ok("balance", "--name", "customer-1"); got != "customer-1: 0.999 AITBC\n" {
		t.Fatalf("after the copy spent: %q", got)
	}
}

func TestLocalKeystoreWhenNoDaemonRuns(t *testing.T) {
	e := newWalletEnv(t, false)
	// Wallets made with a cheap KDF (the file records its parameters).
	ks, err := keystore.ForHome(e.home, keystore.WithKDF(keystore.InsecureTestKDF()))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := ks.Create("genesis-ops", "123")
	c, _ := ks.Create("customer-1", "123")
	e.node.Fund(g.Address, 50*coin.Unit)

	if got := e.ok("list"); got != "customer-1: "+c.Address.String()+"\ngenesis-ops: "+g.Address.String()+"\n" {
		t.Fatalf("list printed %q", got)
	}
	e.ok("send", "--from", "genesis-ops", "--to", c.Address.String(), "--amount", "7", "--password", "123")
	e.ok("send", "--from", "genesis-ops", "--to", c.Address.String(), "--amount", "3", "--password", "123")
	if got := e.ok("balance", "--name", "customer-1"); got != "customer-1: 10 AITBC\n" {
		t.Fatalf("balance printed %q", got)
	}
	e.fails("needs the wallet daemon", "wallet", "unlock", "--name", "genesis-ops", "--password", "123")
	e.fails("needs the wallet daemon", "wallet", "lock", "--name", "genesis-ops")
	e.fails(`wallet "genesis-ops" needs its password`, "send", "--from", "genesis-ops", "--to", c.Address.String(), "--amount", "1")
	if out := e.ok("wallet", "backup", "--name", "customer-1", "--password", "123"); len(strings.Fields(out)) != 24 {
		t.Fatalf("backup printed %q", out)
	}
	// One create with the real (default) KDF parameters.
	out := e.ok("create", "--name", "new-one", "--password", "pw")
	if !strings.HasPrefix(out, "new-one: aitbc1") {
		t.Fatalf("create printed %q", out)
	}
	// --wallet-url off forces the keystore even where a daemon might run.
	e.walletURL = "off"
	e.ok("balance", "--name", "new-one")

	// No node either: a clear message.
	e.nodeURL = "http://" + deadAddr(t)
	e.fails("walletd: chain node unavailable", "balance", "--name", "customer-1")
}

func TestWalletCommandsRefuseBadInput(t *testing.T) {
	e := newWalletEnv(t, true)
	e.ok("create", "--name", "genesis-ops", "--password", "123")
	e.fund("genesis-ops", 10*coin.Unit)
	to := e.addrOf("genesis-ops")
	badSum := []byte(to)
	badSum[len(badSum)-1] ^= 1
	send := func(extra ...string) []string {
		return append([]string{"send", "--from", "genesis-ops", "--password", "123"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong password", []string{"send", "--from", "genesis-ops", "--to", to, "--amount", "1", "--password", "nope"}, "keystore: wrong password"},
		{"unknown wallet", []string{"send", "--from", "nobody", "--to", to, "--amount", "1", "--password", "123"}, `keystore: wallet not found: "nobody"`},
		{"unknown wallet balance", []string{"balance", "--name", "nobody"}, `keystore: wallet not found: "nobody"`},
		{"bad checksum", send("--to", string(badSum), "--amount", "1"), "--to: invalid address"},
		{"other prefix", send("--to", "cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "--amount", "1"), "--to: invalid address"},
		{"bad amount", send("--to", to, "--amount", "abc"), "--amount: invalid amount"},
		{"negative amount", send("--to", to, "--amount", "-5"), "--amount: invalid amount"},
		{"zero amount", send("--to", to, "--amount", "0"), "--amount: invalid amount"},
		{"too many decimals", send("--to", to, "--amount", "1.0000001"), "--amount: invalid amount"},
		{"bad fee", send("--to", to, "--amount", "1", "--fee", "x"), "--fee: invalid amount"},
		{"too much", send("--to", to, "--amount", "11"), "insufficient funds"},
		{"fee too low", send("--to", to, "--amount", "1", "--fee", "0.000001"), "fee below minimum"},
		{"missing --to", []string{"send", "--from", "genesis-ops", "--amount", "1"}, "--to is required"},
		{"missing --from", []string{"send", "--to", to, "--amount", "1"}, "--from is required"},
		{"missing --amount", []string{"send", "--from", "genesis-ops", "--to", to}, "--amount is required"},
		{"balance without target", []string{"balance"}, "--wallet or --address is required"},
		{"balance with both", []string{"balance", "--name", "a", "--address", to}, "not both"},
		{"balance bad address", []string{"balance", "--address", string(badSum)}, "--address: invalid address"},
		{"create without name", []string{"create", "--password", "1"}, "--wallet is required"},
		{"create without password", []string{"create", "--name", "x"}, "--password is required (or set AITBC_PASSWORD"},
		{"create invalid name", []string{"create", "--name", "../x", "--password", "1"}, "keystore: invalid wallet name"},
		{"create existing", []string{"create", "--name", "genesis-ops", "--password", "1"}, "keystore: wallet already exists"},
		{"backup without password", []string{"wallet", "backup", "--name", "genesis-ops"}, "--password is required"},
		{"restore without phrase", []string{"wallet", "restore", "--name", "r", "--password", "1"}, "--mnemonic is required (or set AITBC_MNEMONIC"},
		{"unknown wallet unlock", []string{"wallet", "unlock", "--name", "nobody", "--password", "1"}, `keystore: wallet not found: "nobody"`},
		{"bad output", []string{"--output", "yaml", "list"}, "--output must be text or json"},
	} {
		t.Run(tc.name, func(t *testing.T) { e.fails(tc.want, tc.args...) })
	}
	if n := len(e.node.Submitted()); n != 0 {
		t.Fatalf("%d transactions reached the node", n)
	}
}

func TestWrongAPIKeyIsNotSilentlyBypassed(t *testing.T) {
	e := newWalletEnv(t, true)
	t.Setenv("AITBC_WALLET_API_KEY", "not-the-key")
	e.fails("refused the API key", "list")
}

// TestExitStatus runs the real entry point (os streams) for the exit codes.
func TestExitStatus(t *testing.T) {
	e := newWalletEnv(t, true)
	e.ok("create", "--name", "w", "--password", "123")
	base := []string{"--home", e.home, "--node", e.nodeURL, "--wallet-url", e.walletURL}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"list"}, 0, ""},
		{[]string{"wallet", "backup", "--name", "w", "--password", "bad"}, 1, "aitbc: keystore: wrong password\n"},
		{[]string{"balance", "--name", "nobody"}, 1, "aitbc: keystore: wallet not found: \"nobody\"\n"},
		{[]string{"send", "--from", "w", "--to", "aitbc1xyz", "--amount", "1", "--password", "123"}, 1, "aitbc: --to: invalid address"},
		{[]string{"send", "--from", "w"}, 2, "aitbc: --to is required\n"},
	} {
		code, stderr := execute(t, append(base, tc.args...))
		if code != tc.code || !strings.HasPrefix(stderr, tc.want) || strings.Count(stderr, "\n") > 1 {
			t.Errorf("aitbc %s: exit %d, stderr %q; want %d, %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
}

// TestChainAuditExitsNonZeroOnABrokenInvariant: the audit prints every
// invariant with its figures and fails when one does not hold.
func TestChainAuditExitsNonZeroOnABrokenInvariant(t *testing.T) {
	clearEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/audit" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(module.Audit{Height: 42, OK: false, Invariants: []module.AuditInvariant{
			{Name: "bank/supply", OK: true, Detail: "supply 10 AITBC, 2 balances sum to 10"},
			{Name: "jobs/escrow", OK: false, Detail: "account aitbc1x holds 5 AITBC, the escrows of 1 open or assigned jobs sum to 4"},
		}})
	}))
	defer srv.Close()
	code, stderr := execute(t, []string{"--home", t.TempDir(), "--node", srv.URL, "chain", "audit"})
	if code != 1 || !strings.Contains(stderr, "jobs/escrow") || !strings.Contains(stderr, "height 42") || strings.Contains(stderr, "bank/supply") {
		t.Fatalf("exit %d, stderr %q; want 1 naming jobs/escrow at height 42 only", code, stderr)
	}
}

// execute calls cli.Execute with stdout and stderr captured.
func execute(t *testing.T, args []string) (int, string) {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outW, errW
	code := cli.Execute(context.Background(), "aitbc", args)
	os.Stdout, os.Stderr = oldOut, oldErr
	outW.Close()
	errW.Close()
	_, _ = io.ReadAll(outR)
	stderr, _ := io.ReadAll(errR)
	return code, string(stderr)
}

// A local keystore (no daemon) takes a short password, as the seeds' devnet
// flows use, but says that it guards the key file poorly; a daemon refuses
// it outside a devnet (walletd's own tests).
func TestLocalWalletWarnsOfAShortPassword(t *testing.T) {
	e := newWalletEnv(t, false)
	_, errOut, err := e.run("wallet", "create", "--wallet", "short", "--password", "123")
	if err != nil || !strings.Contains(errOut, "warning: a password of 3 characters") {
		t.Fatalf("short password: %v, stderr %q", err, errOut)
	}
	_, errOut, err = e.run("wallet", "create", "--wallet", "long", "--password", "a long enough password")
	if err != nil || strings.Contains(errOut, "warning") {
		t.Fatalf("long password: %v, stderr %q", err, errOut)
	}
}

package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/audit"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// startAuditsDevnet is startJobsDevnet with every attested job drawn for
// a spot check and no verifier of the devnet's own (Config.Audits, not
// SpotCheckBps): the verifier under test is the only one, so every check
// awaits it.
func startAuditsDevnet(ctx context.Context, t *testing.T) (*devnet.Devnet, *walletEnv, audits.Params) {
	t.Helper()
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	p := audits.DefaultParams()
	p.SpotCheckBps = 10_000
	home := t.TempDir()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: 1, CheckInvariants: true, Audits: &p,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if !d.VerifierAddress().IsZero() {
		t.Fatal("the devnet runs a verifier of its own: the checks would not all await the one under test")
	}
	return d, &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}, p
}

// TestVerifierStartChecksAJobOnADevnetAndStopsOnCancel runs `aitbc
// verifier start` as an operator would: bad flags and a wallet that is
// missing or not registered are refused with a clear one-line error;
// registered, the running verifier is handed the spot check of a job a
// customer paid for, re-runs it, prints its pass (one JSON object a line
// with --output json), and the chain records the pass by this verifier;
// canceled, the command returns without an error.
func TestVerifierStartChecksAJobOnADevnetAndStopsOnCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, e, p := startAuditsDevnet(ctx, t)
	coord := []string{"--coordinator", d.CoordinatorURL()}
	for _, w := range []struct{ name, amount string }{{"customer-1", "500"}, {"verifier-1", "300"}} {
		e.ok("create", "--name", w.name, "--password", "123")
		e.ok("send", "--from", "genesis-ops", "--to", e.addrOf(w.name), "--amount", w.amount, "--password", "123")
	}
	e.waitBalance("customer-1", 500*coin.Unit)
	e.waitBalance("verifier-1", 300*coin.Unit)
	vaddr := e.addrOf("verifier-1")

	start := append(coord, "verifier", "start", "--password", "123")
	e.fails("--wallet is required", start...)
	e.fails("--poll must be a positive duration", append(start, "--wallet", "verifier-1", "--poll", "0s")...)
	e.fails("--threads must be 0 (all cores) or more", append(start, "--wallet", "verifier-1", "--threads", "-1")...)
	e.fails("invalid argument", append(start, "--wallet", "verifier-1", "--poll", "soon")...)
	e.fails("aitbc create --wallet nobody", append(start, "--wallet", "nobody")...)
	e.fails("register first: aitbc verifier register", append(start, "--wallet", "verifier-1")...)

	out := e.ok("verifier", "register", "--bond", p.MinBond.String(), "--wallet", "verifier-1", "--password", "123", "--output", "json")
	var reg struct {
		TxHash string      `json:"tx_hash"`
		Bond   coin.Amount `json:"bond"`
	}
	if err := json.Unmarshal([]byte(out), &reg); err != nil || reg.TxHash == "" || reg.Bond != p.MinBond {
		t.Fatalf("register printed %q: %v", out, err)
	}
	status := func() audits.VerifierView {
		t.Helper()
		var v audits.VerifierView
		out := e.ok("verifier", "status", "--wallet", "verifier-1", "--output", "json")
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("status printed %q: %v", out, err)
		}
		return v
	}
	// Registered once the transaction commits: until then status says it
	// is not.
	for {
		out, _, err := e.run("verifier", "status", "--wallet", "verifier-1", "--output", "json")
		var v audits.VerifierView
		if err == nil && json.Unmarshal([]byte(out), &v) == nil && v.Bond == p.MinBond {
			break
		}
		if ctx.Err() != nil || (err != nil && !strings.Contains(err.Error(), "not a registered verifier")) {
			t.Fatalf("verifier never bonded: %q %v", out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The verifier runs until its context ends, printing what it reports.
	vctx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr syncBuffer
	root := cli.NewRoot("aitbc", strings.NewReader(""), &stdout, &stderr)
	root.SetArgs(append([]string{"--home", e.home, "--node", e.nodeURL, "--wallet-url", e.walletURL, "--output", "json"},
		append(start, "--wallet", "verifier-1", "--poll", "200ms", "--threads", "1")...))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(vctx) }()

	out = e.ok(append(coord, "ai-submit", "--wallet", "customer-1", "--prompt", "It was", "--payment", "30",
		"--max-tokens", "24", "--password", "123", "--output", "json")...)
	var sub coordinator.JobView
	if err := json.Unmarshal([]byte(out), &sub); err != nil || sub.JobID == "" {
		t.Fatalf("ai-submit printed %q: %v", out, err)
	}

	// Its pass is printed as a JSON line naming the job ...
	var got audit.Outcome
	for found := false; !found; {
		select {
		case err := <-done:
			t.Fatalf("verifier start returned early: %v\nstderr: %s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no check of job %s reported; stdout %q\nstderr: %s", sub.JobID, stdout.String(), stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var o audit.Outcome
			if line != "" && json.Unmarshal([]byte(line), &o) == nil && o.JobID == sub.JobID {
				got, found = o, true
			} else if line != "" && json.Unmarshal([]byte(line), &o) != nil {
				t.Fatalf("verifier printed a line that is not JSON: %q", line)
			}
		}
	}
	if !got.Verdict.Pass || got.TxHash == "" || got.Coordinator != d.CoordinatorURL() {
		t.Fatalf("reported %+v, want a pass with its report tx, from %s", got, d.CoordinatorURL())
	}
	// ... and the chain records it: the check passed by this verifier,
	// whose record counts one upheld report and nothing awaiting.
	var c audits.CheckView
	for c.Status != "passed" {
		if ctx.Err() != nil {
			t.Fatalf("check of %s: %+v", sub.JobID, c)
		}
		time.Sleep(100 * time.Millisecond)
		_ = json.Unmarshal([]byte(e.ok("audits", "show", sub.JobID, "--output", "json")), &c)
	}
	if c.Verifier != vaddr {
		t.Fatalf("check passed by %s, want %s", c.Verifier, vaddr)
	}
	if v := status(); v.Reports != 1 || v.Upheld != 1 || len(v.Assigned) != 0 || v.Earned == 0 {
		t.Fatalf("verifier record after the check: %+v", v)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("verifier start after cancel: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("verifier start did not return after its context was canceled")
	}
	if !strings.Contains(stderr.String(), "verifier "+vaddr) {
		t.Errorf("stderr does not name the verifier: %s", stderr.String())
	}
}

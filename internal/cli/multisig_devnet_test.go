package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/multisig"
	"github.com/aitbc/aitbc/internal/cli"
)

// TestMultisigProposesAnyMessageOnADevnet: a 2-of-2 account stakes to the
// devnet's validator (--type staking/stake --body JSON) and lists a
// service (--msg FILE), each executing at the second signature; a body
// with a typo is refused before anything is sent.
func TestMultisigProposesAnyMessageOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := startDevnet(t, ctx, home)
	defer d.Close()
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
	pw := []string{"--password", "123"}
	e.ok("create", "--name", "m1", "--password", "123")
	e.ok(append([]string{"send", "--from", "genesis-ops", "--to", e.addrOf("m1"), "--amount", "1", "--wait"}, pw...)...)
	e.ok(append([]string{"multisig", "create", "--name", "ops", "--threshold", "2", "--signers", "genesis-ops,m1", "--wallet", "genesis-ops"}, pw...)...)
	e.ok(append([]string{"send", "--from", "genesis-ops", "--to", multisig.Address("ops").String(), "--amount", "100", "--wait"}, pw...)...)
	var si cli.StakingInfo
	if err := json.Unmarshal([]byte(e.ok("staking", "info", "-o", "json")), &si); err != nil {
		t.Fatal(err)
	}
	var validator string
	for _, o := range si.Operators.Operators {
		if o.Kind == "validator" {
			validator = o.Address.String()
		}
	}

	e.fails("unknown field", append([]string{"multisig", "propose", "--name", "ops", "--type", "staking/stake",
		"--body", `{"operater":"` + validator + `","amount":"5"}`, "--wallet", "genesis-ops"}, pw...)...)
	e.fails("not both", append([]string{"multisig", "propose", "--name", "ops", "--type", "staking/stake", "--to", "m1",
		"--body", `{}`, "--wallet", "genesis-ops"}, pw...)...)
	e.ok(append([]string{"multisig", "propose", "--name", "ops", "--type", "staking/stake",
		"--body", `{"operator":"` + validator + `","amount":"5"}`, "--wallet", "genesis-ops"}, pw...)...)
	file := filepath.Join(t.TempDir(), "listing.json")
	if err := os.WriteFile(file, []byte(`{"type":"market/create","body":{"service_id":"svc-ops","name":"Ops inference","type":"ai-inference","price":"2"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	show := func() multisig.View {
		var v multisig.View
		if err := json.Unmarshal([]byte(e.ok("multisig", "show", "--name", "ops", "-o", "json")), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitFor := func(what string, ok func(v multisig.View) bool) multisig.View {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			v := show()
			if ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, v)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("proposal 0", func(v multisig.View) bool { return len(v.Proposals) == 1 })
	e.ok(append([]string{"multisig", "propose", "--name", "ops", "--msg", file, "--wallet", "genesis-ops"}, pw...)...)
	waitFor("proposal 1", func(v multisig.View) bool { return len(v.Proposals) == 2 })
	e.ok(append([]string{"multisig", "sign", "--name", "ops", "--proposal", "0", "--wallet", "m1"}, pw...)...)
	e.ok(append([]string{"multisig", "sign", "--name", "ops", "--proposal", "1", "--wallet", "m1"}, pw...)...)
	v := waitFor("both executed", func(v multisig.View) bool {
		return v.Proposals[0].Status == "executed" && v.Proposals[1].Status == "executed"
	})
	if v.Proposals[0].Type != "staking/stake" || v.Proposals[1].Type != "market/create" {
		t.Errorf("proposals: %+v", v.Proposals)
	}
	if err := json.Unmarshal([]byte(e.ok("staking", "info", "-o", "json")), &si); err != nil {
		t.Fatal(err)
	}
	for _, o := range si.Operators.Operators {
		if o.Address.String() == validator && o.Bonded != 5*coin.Unit {
			t.Errorf("the validator's bonded stake: %s, want the multisig's 5", o.Bonded)
		}
	}
	if out := e.ok("marketplace", "--action", "list"); !strings.Contains(out, "svc-ops") {
		t.Errorf("the multisig's listing is not in the marketplace:\n%s", out)
	}

	// The devnet's genesis names no treasury admin: the treasury shows its
	// balance and refuses to spend, directly or through a multisig.
	if out := e.ok("treasury", "show"); !strings.Contains(out, "admin    none") || !strings.Contains(out, "spent    0 AITBC in 0 spend(s)") {
		t.Errorf("treasury show:\n%s", out)
	}
	e.fails("cannot spend", append([]string{"treasury", "spend", "--to", "m1", "--amount", "1", "--wallet", "genesis-ops"}, pw...)...)
	e.fails("--amount", append([]string{"treasury", "spend", "--to", "m1", "--amount", "0", "--wallet", "genesis-ops"}, pw...)...)
	// Through the multisig: the proposal is taken, and the signature that
	// would execute it is refused with the chain's reason.
	out := e.ok(append([]string{"treasury", "spend", "--multisig", "ops", "--to", "m1", "--amount", "1", "--memo", "test", "--wallet", "genesis-ops"}, pw...)...)
	if !strings.Contains(out, "proposed through ops as proposal 2") {
		t.Errorf("treasury spend --multisig printed %q", out)
	}
	waitFor("proposal 2", func(v multisig.View) bool { return len(v.Proposals) == 3 && v.Proposals[2].Type == "treasury/spend" })
	e.fails("cannot spend", append([]string{"multisig", "sign", "--name", "ops", "--proposal", "2", "--wallet", "m1"}, pw...)...)
}

package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
)

// TestStakingOnADevnet: genesis-ops stakes to the devnet's validator,
// sees its stake in `staking info`, unstakes part and sees it unbonding;
// bad input is refused with the chain's message. Then a 2-of-3 multisig
// pays out at its second signature, and `economics simulate` prints its
// table.
func TestStakingOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}

	info := func(args ...string) cli.StakingInfo {
		var s cli.StakingInfo
		if err := json.Unmarshal([]byte(e.ok(append([]string{"staking", "info", "-o", "json"}, args...)...)), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	var validator string
	for _, o := range info().Operators.Operators {
		if o.Kind == "validator" {
			validator = o.Address.String()
		}
	}
	if validator == "" {
		t.Fatal("staking info lists no validator")
	}
	e.ok("stake", "--wallet", "genesis-ops", "--amount", "100", "--to", validator, "--password", "123")
	nobody := address.Module("nobody").String()
	e.fails("neither a registered miner nor a validator", "stake", "--wallet", "genesis-ops", "--amount", "1", "--to", nobody, "--password", "123")
	e.fails("unstake exceeds what is staked", "unstake", "--wallet", "genesis-ops", "--amount", "101", "--from", validator, "--password", "123")
	out := e.ok("unstake", "--wallet", "genesis-ops", "--amount", "40", "--from", validator, "--password", "123")
	if !strings.Contains(out, "40 AITBC unbonding") {
		t.Errorf("unstake printed %q", out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := info("--wallet", "genesis-ops")
		if dl := s.Delegator; dl != nil && dl.Staked == 60_000_000 && dl.Unbonding == 40_000_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stake not committed: %+v", s.Delegator)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The books: the supply and where it sits, audited.
	info2 := e.ok("chain", "info")
	for _, want := range []string{"module account  treasury", "module account  staking.bonded", "module account  rewards.pending", "in accounts", "genesis supply"} {
		if !strings.Contains(info2, want) {
			t.Errorf("chain info does not show %q:\n%s", want, info2)
		}
	}
	audit := e.ok("chain", "audit")
	for _, want := range []string{"ok   bank/conservation", "ok   bank/fees", "ok   staking/bonded", "ok   rewards/pending", "ok   rewards/treasury"} {
		if !strings.Contains(audit, want) {
			t.Errorf("chain audit does not report %q:\n%s", want, audit)
		}
	}
	text := e.ok("staking", "info", "--wallet", "genesis-ops")
	for _, want := range []string{"block reward", "staked     60 AITBC to " + validator, "unbonding  40 AITBC from " + validator} {
		if !strings.Contains(text, want) {
			t.Errorf("staking info does not say %q:\n%s", want, text)
		}
	}

	// Multisig: genesis-ops, m1 and m2, two signatures.
	for _, w := range []string{"m1", "m2"} {
		e.ok("create", "--name", w, "--password", "123")
	}
	e.ok("send", "--from", "genesis-ops", "--to", e.addrOf("m1"), "--amount", "1", "--password", "123")
	var created struct {
		Address string `json:"address"`
	}
	out = e.ok("multisig", "create", "--name", "ops", "--threshold", "2", "--signers", "genesis-ops,m1,m2", "--wallet", "genesis-ops", "--password", "123", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Address == "" {
		t.Fatalf("multisig create printed %q", out)
	}
	e.fails("threshold", "multisig", "create", "--name", "bad", "--threshold", "4", "--signers", "genesis-ops,m1,m2", "--wallet", "genesis-ops", "--password", "123")
	e.ok("send", "--from", "genesis-ops", "--to", created.Address, "--amount", "100", "--password", "123", "--wait")
	e.ok("multisig", "propose", "--name", "ops", "--to", "m2", "--amount", "10", "--wallet", "genesis-ops", "--password", "123")
	e.ok("multisig", "sign", "--name", "ops", "--proposal", "0", "--wallet", "m1", "--password", "123")
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(e.ok("balance", "--name", "m2"), "m2: 10 AITBC") {
		if time.Now().After(deadline) {
			t.Fatalf("the multisig did not pay: %s", e.ok("multisig", "show", "--name", "ops"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.fails("already executed", "multisig", "sign", "--name", "ops", "--proposal", "0", "--wallet", "genesis-ops", "--password", "123")
	show := e.ok("multisig", "show", "--name", "ops")
	for _, want := range []string{"threshold  2 of 3", "balance    90 AITBC", "proposal 0  executed"} {
		if !strings.Contains(show, want) {
			t.Errorf("multisig show does not say %q:\n%s", want, show)
		}
	}

	// Faucet: a new wallet with nothing signs its own request (the faucet
	// pays the fee); a second one within 24 h is refused with the time left.
	e.ok("create", "--name", "tester", "--password", "123")
	e.ok("faucet", "--address", "tester", "--wallet", "tester", "--password", "123")
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(e.ok("balance", "--name", "tester"), "tester: 1000 AITBC") {
		if time.Now().After(deadline) {
			t.Fatal("the faucet did not pay")
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.fails("left until", "faucet", "--address", "tester", "--amount", "1", "--wallet", "tester", "--password", "123")

	// The projection runs from the same formulas (2 years keep it short).
	table := e.ok("economics", "simulate", "--years", "2")
	if !strings.Contains(table, "| 1 | 1,046,389,310 | 47,304,000 |") {
		t.Errorf("economics simulate printed:\n%s", table)
	}
}

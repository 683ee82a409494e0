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
// bad input is refused with the chain's code.
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
}

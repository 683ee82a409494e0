package bridge_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/testnet"
)

// TestEveryOperatorsDaemonReportsMetricsOnAMultiOperatorDevnet: `aitbc
// devnet --btc --bridge-operators 3 --bridge-threshold 2` runs three
// bridge daemons in one process; the devnet's /metrics (the node REST
// API's, where an operator scrapes it) carries every daemon's metrics,
// told apart by operator="1".."3", not operator 1's alone.
func TestEveryOperatorsDaemonReportsMetricsOnAMultiOperatorDevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and btcd")
	}
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: t.TempDir(), BlockTime: 150 * time.Millisecond, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off", CometRPCListen: "off",
		P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", p), Miners: -1,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		BTC:      true, BTCOperators: 3, BTCThreshold: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(d.BTC.Daemons) != 3 {
		t.Fatalf("%d bridge daemons running, want 3", len(d.BTC.Daemons))
	}

	resp, err := http.Get(d.RPCURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// operators[name] is the operator label of each of name's series, in
	// the exposition's order (sorted by label value).
	operators := map[string][]string{}
	halted := map[string]string{}
	series := regexp.MustCompile(`^(aitbc_bridge_[a-z_]+?)(?:_bucket|_sum|_count)?\{(?:.*,)?operator="([^"]*)"(?:,.*)?\} (\S+)$`)
	for _, line := range strings.Split(string(body), "\n") {
		m := series.FindStringSubmatch(line)
		if m == nil || strings.Contains(line, "_bucket{") || strings.Contains(line, "_sum{") {
			continue
		}
		operators[m[1]] = append(operators[m[1]], m[2])
		if m[1] == "aitbc_bridge_halted" {
			halted[m[2]] = m[3]
		}
	}
	for _, name := range []string{"aitbc_bridge_halted", "aitbc_bridge_deposits_minted_total", "aitbc_bridge_withdrawals_paid_total",
		"aitbc_bridge_mint_latency_seconds", "aitbc_bridge_reserve_sat"} {
		if got := strings.Join(operators[name], ","); got != "1,2,3" {
			t.Errorf("%s: series for operators %q, want 1,2,3", name, got)
		}
	}
	for op, v := range halted {
		if v != "0" {
			t.Errorf("aitbc_bridge_halted{operator=%q} = %s on a fresh devnet", op, v)
		}
	}
}

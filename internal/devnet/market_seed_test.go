package devnet_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/devnet"
)

// automatedMarketplaceTest is seed 001's automated_marketplace_test.sh,
// verbatim.
const automatedMarketplaceTest = `#!/bin/bash
# automated_marketplace_test.sh

echo "Starting automated marketplace testing..."

# Create test wallets
./aitbc-cli create --name test-customer --password 123
./aitbc-cli create --name test-provider --password 123

# Fund test wallets
CUSTOMER_ADDR=$(./aitbc-cli list | grep "test-customer:" | cut -d" " -f2)
PROVIDER_ADDR=$(./aitbc-cli list | grep "test-provider:" | cut -d" " -f2)

./aitbc-cli send --from genesis-ops --to $CUSTOMER_ADDR --amount 1000 --password 123
./aitbc-cli send --from genesis-ops --to $PROVIDER_ADDR --amount 1000 --password 123

# Create test service
./aitbc-cli marketplace --action create \
    --name "Test AI Service" \
    --type ai-inference \
    --price 50 \
    --wallet test-provider \
    --description "Automated test service"

# Test complete workflow
SERVICE_ID=$(./aitbc-cli marketplace --action list | grep "Test AI Service" | grep "service_id" | cut -d" " -f2)

./aitbc-cli marketplace --action bid --service-id $SERVICE_ID --amount 60 --wallet test-customer
./aitbc-cli marketplace --action accept-bid --service-id $SERVICE_ID --bid-id "test_bid" --wallet test-provider

./aitbc-cli ai-submit --wallet test-customer --type inference --prompt "test image" --payment 60

# Verify results
echo "Test completed successfully!"
`

// marketplacePerformanceMonitor is seed 001's
// marketplace_performance_monitor.sh, verbatim.
const marketplacePerformanceMonitor = `#!/bin/bash
# marketplace_performance_monitor.sh

while true; do
    TIMESTAMP=$(date +%Y-%m-%d_%H:%M:%S)
    
    # Collect metrics
    ACTIVE_SERVICES=$(./aitbc-cli marketplace --action list | grep -c "service_id")
    PENDING_BIDS=$(./aitbc-cli marketplace --action pending-bids | grep -c "bid_id")
    TOTAL_VOLUME=$(./aitbc-cli marketplace --action volume --period "1h")
    
    # Log metrics
    echo "$TIMESTAMP,services:$ACTIVE_SERVICES,bids:$PENDING_BIDS,volume:$TOTAL_VOLUME" >> /var/log/aitbc/marketplace_performance.log
    
    sleep 60
done
`

// TestSeedMarketplaceScripts runs seed 001's two scripts against a devnet
// with ./aitbc-cli being this build: the automated test under bash -e (any
// failing command fails it), then one pass of the monitor — its loop ended
// by a sleep that exits, its log under the test's directory instead of
// /var/log/aitbc.
func TestSeedMarketplaceScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and builds the CLI")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "aitbc-cli"), "github.com/aitbc/aitbc/cmd/aitbc")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e := start(t, devnet.Config{Miners: 1})
	env := append(os.Environ(), "AITBC_HOME="+e.home, "AITBC_NODE="+e.d.RPCURL(), "AITBC_WALLET_URL="+e.d.WalletURL(),
		"AITBC_COORDINATOR="+e.d.CoordinatorURL(), "AITBC_OUTPUT=text", "AITBC_PASSWORD=")
	run := func(name, script string, args ...string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bash, append(args, path)...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	out := run("automated_marketplace_test.sh", automatedMarketplaceTest, "-e")
	for _, want := range []string{"service_id svc-", "bid_id bid-", "agreement_id bid-", "Job ID: ", "Test completed successfully!"} {
		if !strings.Contains(out, want) {
			t.Errorf("the automated test printed no %q:\n%s", want, out)
		}
	}

	logDir := filepath.Join(dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	monitor := "sleep() { exit 0; }\n" + strings.ReplaceAll(marketplacePerformanceMonitor, "/var/log/aitbc", logDir)
	run("marketplace_performance_monitor.sh", monitor)
	b, err := os.ReadFile(filepath.Join(logDir, "marketplace_performance.log"))
	if err != nil {
		t.Fatal(err)
	}
	// One service; its one bid was accepted (none pending); 60 AITBC locked.
	if line := strings.TrimSpace(string(b)); !strings.HasSuffix(line, ",services:1,bids:0,volume:60 AITBC") {
		t.Fatalf("monitor logged %q", line)
	}
}

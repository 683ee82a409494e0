package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/walletd"
)

// TestOperatorCommandsOnADevnet drives the seeds' operator spellings after
// one paid job: admin-jobs lists it (and refuses a wrong operator key),
// admin-miners shows the miner online with what it earned, admin-stats the
// supply and volume, browser the newest blocks, transactions and the
// job's receipt, ai-metrics the miner's job and tokens; and the seed's
// balance call on the wallet daemon answers in the seed's shape.
func TestOperatorCommandsOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	t.Setenv("AITBC_OPERATOR_KEY", "")
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
		Home: home, BlockTime: 150 * time.Millisecond, Miners: 1, CheckInvariants: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	e := &walletEnv{t: t, home: home, nodeURL: d.RPCURL(), walletURL: d.WalletURL()}
	coord := []string{"--coordinator", d.CoordinatorURL()}
	jsonOf := func(v any, args ...string) {
		t.Helper()
		out := e.ok(append(append(coord, "-o", "json"), args...)...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	var job coordinator.JobView
	jsonOf(&job, "submit", "inference", "--prompt", "Natasha", "--model", "tolstoy-1m", "--max-tokens", "12", "--temperature", "0")
	if job.Status != "settled" || job.Settlement == nil || job.Settlement.Paid == 0 {
		t.Fatalf("job: %+v", job)
	}
	miner := job.Miner

	var aj coordinator.AdminJobs
	jsonOf(&aj, "admin-jobs", "--limit", "5")
	if len(aj.Recent) != 1 || aj.Recent[0].JobID != job.JobID || aj.Recent[0].TenantID == "" || aj.Recent[0].Result != nil {
		t.Fatalf("admin-jobs: %+v", aj)
	}
	e.fails("operator key missing or wrong", append(coord, "admin-jobs", "--operator-key", "not-the-key")...)

	var am cli.AdminMiners
	jsonOf(&am, "admin-miners")
	if len(am.Miners) != 1 || am.Miners[0].Address != miner || am.Miners[0].Status != "online" ||
		am.Miners[0].Earned == nil || *am.Miners[0].Earned != job.Settlement.Paid || am.Miners[0].JobsSettled != 1 {
		t.Fatalf("admin-miners: %+v", am)
	}

	var st cli.AdminStats
	jsonOf(&st, "admin-stats")
	if st.Supply.Circulating == 0 || st.Miners.Registered != 1 || st.Miners.Online != 1 || st.Jobs.SettledOnChain != 1 ||
		st.Volume == nil || *st.Volume != job.Settlement.Paid || st.Jobs.ByStatus["settled"] != 1 {
		t.Fatalf("admin-stats: %+v", st)
	}

	var b cli.Browse
	jsonOf(&b, "browser", "--block-limit", "3", "--tx-limit", "2", "--receipt-limit", "1")
	if len(b.Blocks) != 3 || b.Blocks[0].Height != b.Height || b.Blocks[2].Height != b.Height-2 ||
		len(b.Transactions) != 2 || len(b.Receipts) != 1 || b.Receipts[0].JobID != job.JobID {
		t.Fatalf("browser: height %d, %d blocks, %d txs, receipts %+v", b.Height, len(b.Blocks), len(b.Transactions), b.Receipts)
	}
	// The newest transaction is the job's settlement (nothing else happens on a quiet devnet).
	if b.Transactions[0].Hash != job.Settlement.SettleTx {
		t.Errorf("newest transaction %s (%s), want the settlement %s", b.Transactions[0].Hash, b.Transactions[0].Type, job.Settlement.SettleTx)
	}
	e.fails("--tx-limit must be 0-100", append(coord, "browser", "--tx-limit", "101")...)

	var m cli.AIMetrics
	jsonOf(&m, "ai-metrics", "--agent-id", miner, "--period", "1h")
	if m.Jobs != 1 || m.Status["settled"] != 1 || m.TokensOut != job.TokensOut || m.LatencyAvgMs <= 0 || !m.Online || m.Utilisation <= 0 {
		t.Fatalf("ai-metrics: %+v", m)
	}
	e.fails("has no allocation", append(coord, "ai-metrics", "--agent-id", "gpu-worker-1")...)

	// Seed 000's "provider checks its balance": the wallet daemon answers
	// for its default wallet (a devnet's is genesis-ops) in the seed's shape.
	key, err := os.ReadFile(walletd.APIKeyPath(home))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", d.WalletURL()+"/api/v1/wallet/balance", nil)
	req.Header.Set("X-API-Key", strings.TrimSpace(string(key)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var bal struct {
		Balance  *float64 `json:"balance"`
		Currency string   `json:"currency"`
		Name     string   `json:"name"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&bal); err != nil || resp.StatusCode != 200 || bal.Balance == nil || *bal.Balance <= 0 || bal.Currency != "AITBC" || bal.Name != devnet.GenesisWallet {
		t.Fatalf("seed balance call: %d %+v %v", resp.StatusCode, bal, err)
	}
}

package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/rpc"
)

// grepCut does what the seed's pipelines do: grep for a word, then
// cut -d" " -f2 of the first matching line.
func grepCut(out, word string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, word) {
			if f := strings.Split(line, " "); len(f) > 1 {
				return f[1]
			}
		}
	}
	return ""
}

// TestSeedMarketplaceOnADevnet runs seed 001's marketplace commands as
// written (wallets given their password once, to create and send, then
// signing in the daemon's password grace) against a real chain: the four
// services, list/search/my-listings, scenario 1 verbatim (bid, accept-bid
// with the seed's made-up bid id, ai-submit --service-id: the job runs on
// the miner the devnet hosts for marketplace-provider, which runs none,
// and is paid once, by the agreement), scenarios 2 and 3, and the money
// verbs — checking the balances to the unit and that the books reconcile.
func TestSeedMarketplaceOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, e := startJobsDevnet(ctx, t)
	waitBalance := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := e.ok("balance", "--name", name)
			if got == name+": "+want+" AITBC\n" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("balance of %s: %q, want %s", name, got, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Marketplace setup, as the seed writes it.
	funds := []struct{ name, amount string }{{"marketplace-provider", "10000"}, {"ai-service-provider", "5000"}, {"gpu-provider", "5000"}}
	for _, f := range funds {
		e.ok("create", "--name", f.name, "--password", "123")
		e.ok("send", "--from", "genesis-ops", "--to", e.addrOf(f.name), "--amount", f.amount, "--password", "123")
	}
	for _, f := range funds {
		waitBalance(f.name, f.amount)
	}
	e.ok("marketplace", "--action", "create", "--name", "AI Image Generation Service", "--type", "ai-inference", "--price", "100",
		"--wallet", "marketplace-provider", "--description", "High-quality image generation using advanced AI models",
		"--parameters", "resolution:512x512,style:photorealistic,quality:high")
	e.ok("marketplace", "--action", "create", "--name", "Custom Model Training Service", "--type", "ai-training", "--price", "500",
		"--wallet", "ai-service-provider", "--description", "Custom AI model training on your datasets", "--parameters", "model_type:custom,epochs:100,batch_size:32")
	e.ok("marketplace", "--action", "create", "--name", "GPU Cloud Computing", "--type", "gpu-rental", "--price", "50",
		"--wallet", "gpu-provider", "--description", "High-performance GPU rental for AI workloads", "--parameters", "gpu_type:rtx4090,memory:24gb,bandwidth:high")
	out := e.ok("marketplace", "--action", "create", "--name", "Data Analysis Pipeline", "--type", "data-processing", "--price", "25",
		"--wallet", "marketplace-provider", "--description", "Automated data analysis and processing", "--parameters", "data_format:csv,json,xml,output_format:reports")
	if !strings.HasPrefix(out, "service_id svc-") || !strings.Contains(out, "Data Analysis Pipeline") {
		t.Fatalf("create printed %q", out)
	}

	list := e.ok("marketplace", "--action", "list")
	if n := strings.Count(list, "service_id "); n != 4 {
		t.Fatalf("list shows %d services:\n%s", n, list)
	}
	if got := e.ok("marketplace", "--action", "my-listings", "--wallet", "marketplace-provider"); strings.Count(got, "service_id ") != 2 {
		t.Fatalf("my-listings:\n%s", got)
	}
	if got := grepCut(e.ok("marketplace", "--action", "search", "--query", "GPU"), "service_id"); got == "" || strings.Contains(e.ok("marketplace", "--action", "search", "--query", "AI Image"), got+" ") {
		t.Fatalf("search GPU gave %q", got)
	}

	// Scenario 1, as the seed writes it: the customer bids, the provider
	// accepts (the seed's made-up bid id), the customer submits the job
	// under the agreement. marketplace-provider runs no miner: the devnet
	// hosts one for it (both consents signed by the devnet), and the job
	// runs there; the agreement pays the provider, and the customer's
	// escrow comes back less the coordinator's commission — paid once.
	coord := []string{"--coordinator", d.CoordinatorURL()}
	e.ok("create", "--name", "customer-1", "--password", "123")
	e.ok("send", "--from", "genesis-ops", "--to", e.addrOf("customer-1"), "--amount", "1000", "--password", "123")
	waitBalance("customer-1", "1000")
	if got := e.ok("marketplace", "--action", "search", "--query", "image generation"); !strings.Contains(got, "AI Image Generation Service") {
		t.Fatalf("search image generation:\n%s", got)
	}
	serviceID := grepCut(e.ok("marketplace", "--action", "search", "--query", "AI Image Generation"), "service_id")
	if !strings.HasPrefix(serviceID, "svc-") {
		t.Fatalf("search | grep service_id | cut gave %q", serviceID)
	}
	out = e.ok("marketplace", "--action", "bid", "--service-id", serviceID, "--amount", "120", "--wallet", "customer-1")
	bidID := grepCut(out, "bid_id")
	if !strings.HasPrefix(bidID, "bid-") {
		t.Fatalf("bid printed %q", out)
	}
	waitBalance("customer-1", "998.999") // 1 AITBC deposit held, 0.001 fee
	if got := e.ok("marketplace", "--action", "pending-bids"); strings.Count(got, "bid_id") != 1 {
		t.Fatalf("pending-bids:\n%s", got)
	}
	_, errOut, err := e.run("marketplace", "--action", "accept-bid", "--service-id", serviceID, "--bid-id", "bid_123", "--wallet", "marketplace-provider")
	if err != nil || !strings.Contains(errOut, "accepting the only open bid") {
		t.Fatalf("accept-bid bid_123: %v %q", err, errOut)
	}
	waitBalance("customer-1", "879.999") // the rest of the 120 locked (the deposit counts)
	e.fails("bid is not open", "marketplace", "--action", "accept-bid", "--service-id", serviceID, "--bid-id", bidID, "--wallet", "marketplace-provider")
	e.fails("exceeds what the agreement holds", "marketplace", "--action", "settle-payment", "--service-id", serviceID, "--bid-id", bidID, "--amount", "121", "--wallet", "customer-1")
	// The devnet hosts the provider within a few blocks of its listing
	// (funding and consents, registration, the miner's consent); at the
	// devnet's 2 s blocks the seed's commands in between take longer than
	// that, here at 150 ms they may not: wait for it as a user would see it.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(e.ok("market", "miners", "--wallet", "marketplace-provider"), "1 serving its jobs") {
		if time.Now().After(deadline) {
			t.Fatalf("the devnet did not host marketplace-provider:\n%s", e.ok("market", "miners", "--wallet", "marketplace-provider"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	out = e.ok(append(coord, "ai-submit", "--wallet", "customer-1", "--type", "inference",
		"--prompt", "Generate a futuristic cityscape with flying cars", "--payment", "120", "--service-id", serviceID)...)
	_, jobID, ok := strings.Cut(out, "Job ID: ")
	if !ok {
		t.Fatalf("ai-submit printed %q", out)
	}
	jobID = strings.Fields(jobID)[0]
	deadline = time.Now().Add(90 * time.Second)
	for {
		var agr []market.AgreementView
		if err := json.Unmarshal([]byte(e.ok("--output", "json", "market", "agreements", "--service-id", serviceID)), &agr); err != nil || len(agr) != 1 || agr[0].Jobs != 1 {
			t.Fatalf("the job is not bound to the agreement: %+v %v", agr, err)
		}
		if agr[0].Delivered == 1 {
			if agr[0].Drawn != 120*coin.Unit || agr[0].Status != "completed" {
				t.Fatalf("after the delivery: %+v", agr[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job was not delivered: %+v", agr[0])
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The seed monitors and fetches the job (by its real id: the seed's
	// "ai_job_123" names a job it cannot know).
	if got := e.ok(append(coord, "ai-status", "--job-id", jobID)...); !strings.Contains(got, jobID) {
		t.Fatalf("ai-status:\n%s", got)
	}
	e.ok(append(coord, "ai-results", "--job-id", jobID)...)
	// It ran on the miner the devnet hosts for the provider, named both
	// ways, and its escrow paid that miner nothing.
	node := rpc.NewClient(d.RPCURL())
	provAddr, err := address.Parse(e.addrOf("marketplace-provider"))
	if err != nil {
		t.Fatal(err)
	}
	hosted, err := address.Parse(e.addrOf(devnet.HostedMinerWallet(provAddr)))
	if err != nil {
		t.Fatal(err)
	}
	jv, err := jobs.QueryJob(ctx, node, jobID)
	if err != nil || jv.Status != "settled" || jv.Miner == nil || *jv.Miner != hosted || jv.Paid != 0 || jv.Commission != jobs.DefaultParams().Commission(0) {
		t.Fatalf("the job on chain: %+v %v (hosted miner %s)", jv, err, hosted)
	}
	if got := e.ok("marketplace", "--action", "verify-provider", "--wallet", "marketplace-provider"); !strings.Contains(got, "names miner "+hosted.String()+": named back, active") {
		t.Fatalf("verify-provider does not show the hosted miner:\n%s", got)
	}
	// Verify transaction completed, to the unit: the customer paid the
	// agreement's 120 (locked at acceptance), the job's create and bind
	// fees and the coordinator's commission (0.003); the provider paid
	// its two listings, the acceptance and the devnet's add-miner, and
	// its payout of 120 (less the 10% protocol fee at release) is held for
	// the dispute window; the hosted miner has its funding less its stake
	// and the fees of what it sent, nothing from the job.
	waitBalance("customer-1", "879.994")
	waitBalance("marketplace-provider", "9999.996")
	if got := e.ok("balance", "--name", "customer-1"); got != "customer-1: 879.994 AITBC\n" {
		t.Fatalf("balance --name customer-1: %q", got)
	}
	acct, err := node.Account(ctx, hosted)
	if err != nil || acct.Balance != devnet.HostedMinerFunds-100*coin.Unit-coin.Amount(acct.Nonce)*coin.Unit/1000 {
		t.Fatalf("hosted miner's account: %+v %v", acct, err)
	}
	pl, err := market.QueryPayouts(ctx, node, market.Filter{Service: serviceID})
	if err != nil || len(pl.Payouts) != 1 || pl.Payouts[0].Amount != 120*coin.Unit || pl.Payouts[0].Status != "held" || pl.Payouts[0].Kind != market.KindDelivery {
		t.Fatalf("payouts: %+v %v", pl.Payouts, err)
	}

	// Scenario 2: a researcher rents the GPU by the hour (bid 60 on a
	// listing of 50 per hour; the seed's bid id "bid_456" is made up).
	// Scenario 3: an enterprise bids 30 on the data pipeline, which is
	// accepted ("bid_789") and paid with settle-payment.
	for _, w := range []struct{ name, amount string }{{"researcher-1", "2000"}, {"enterprise-1", "5000"}} {
		e.ok("create", "--name", w.name, "--password", "123")
		e.ok("send", "--from", "genesis-ops", "--to", e.addrOf(w.name), "--amount", w.amount, "--password", "123")
	}
	waitBalance("researcher-1", "2000")
	waitBalance("enterprise-1", "5000")
	gpuService := grepCut(e.ok("marketplace", "--action", "search", "--query", "GPU"), "service_id")
	e.ok("marketplace", "--action", "bid", "--service-id", gpuService, "--amount", "60", "--wallet", "researcher-1")
	if got := e.ok("marketplace", "--action", "accept-bid", "--service-id", gpuService, "--bid-id", "bid_456", "--wallet", "gpu-provider"); !strings.Contains(got, "AITBC per hour x 1 | locked 60,") {
		t.Fatalf("GPU lease:\n%s", got)
	}
	dataService := grepCut(e.ok("marketplace", "--action", "search", "--query", "data processing"), "service_id")
	e.ok("marketplace", "--action", "bid", "--service-id", dataService, "--amount", "30", "--wallet", "enterprise-1")
	e.ok("marketplace", "--action", "accept-bid", "--service-id", dataService, "--bid-id", "bid_789", "--wallet", "marketplace-provider")
	if got := e.ok("marketplace", "--action", "settle-payment", "--service-id", dataService, "--amount", "30", "--wallet", "enterprise-1"); !strings.Contains(got, "completed") {
		t.Fatalf("scenario 3 settlement:\n%s", got)
	}
	waitBalance("enterprise-1", "4969.998") // 30 paid, two fees

	// The money verbs: the books reconcile to the unit, in text and JSON.
	for _, args := range [][]string{
		{"reconcile", "--period", "24h"}, {"verify-settlement", "--service-id", serviceID}, {"payment-verify", "--period", "1h"},
		{"financial-audit", "--period", "24h"}, {"integrity-check"},
	} {
		got := e.ok(append([]string{"marketplace", "--action"}, args...)...)
		if !strings.Contains(got, "ok: the books reconcile to the unit") {
			t.Fatalf("%v:\n%s", args, got)
		}
	}
	var rec struct {
		OK     bool        `json:"ok"`
		Locked coin.Amount `json:"locked"`
		Held   coin.Amount `json:"held_in_payouts"`
	}
	if err := json.Unmarshal([]byte(e.ok("--output", "json", "market", "reconcile")), &rec); err != nil || !rec.OK || rec.Locked != 210*coin.Unit || rec.Held != 150*coin.Unit {
		t.Fatalf("reconcile --output json: %+v %v", rec, err)
	}
	if got := e.ok("marketplace", "--action", "volume", "--period", "1h"); got != "210 AITBC\n" {
		t.Fatalf("volume printed %q", got)
	}
	if got := e.ok("marketplace", "--action", "transactions", "--service-id", serviceID); strings.Count(got, serviceID) != 3 {
		t.Fatalf("transactions (bid, agreement, payout):\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "revenue", "--wallet", "marketplace-provider", "--period", "24h"); !strings.Contains(got, "150 AITBC held") {
		t.Fatalf("revenue:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "quality-metrics", "--service-id", serviceID); !strings.Contains(got, "1 agreements") {
		t.Fatalf("quality-metrics:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "verify-provider", "--wallet", "marketplace-provider"); !strings.Contains(got, "2 active listings") {
		t.Fatalf("verify-provider:\n%s", got)
	}
	e.ok("marketplace", "--action", "satisfaction", "--wallet", "customer-1", "--period", "7d")
	e.ok("marketplace", "--action", "capacity-metrics", "--period", "24h")
	if got, _, _ := e.run("marketplace", "--action", "health-check"); !strings.Contains(got, "ok   node") {
		t.Fatalf("health-check:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "compliance-check", "--period", "24h"); !strings.Contains(got, "0 violations") || strings.Contains(got, "runs no staked miner") {
		t.Fatalf("compliance-check:\n%s", got)
	}
	csvOut := e.ok("--output", "csv", "marketplace", "--action", "regulatory-audit", "--period", "30d")
	if !strings.HasPrefix(csvOut, "kind,key,agreements,locked,paid_out,refunded\n") || !strings.Contains(csvOut, "type,ai-inference,1,120,120,0") {
		t.Fatalf("regulatory-audit csv:\n%s", csvOut)
	}
	if got := e.ok("marketplace", "--action", "optimize", "--wallet", "marketplace-provider", "--metric", "utilization"); strings.Count(got, "service_id ") != 2 {
		t.Fatalf("optimize:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "cross-node-stats", "--period", "24h"); !strings.Contains(got, "ok: the same marketplace on 1 nodes") {
		t.Fatalf("cross-node-stats:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "stress-test", "--transactions", "60", "--concurrent", "4"); !strings.Contains(got, "market      60 committed") {
		t.Fatalf("stress-test:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "latency-metrics", "--period", "1h"); !strings.Contains(got, "block interval") {
		t.Fatalf("latency-metrics:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "performance-metrics", "--period", "5m"); !strings.Contains(got, "3 bids, 3 agreements, 2 payouts") {
		t.Fatalf("performance-metrics:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "throughput-test", "--duration", "2", "--transactions-per-second", "20"); !strings.Contains(got, "40 of 40 bids committed") {
		t.Fatalf("throughput-test:\n%s", got)
	}
	// Bad input: a specific error, nothing changes.
	e.fails("service not found", "marketplace", "--action", "bid", "--service-id", "svc-999", "--amount", "10", "--wallet", "customer-1")
	e.fails("unknown marketplace action", "marketplace", "--action", "teleport")
	waitBalance("customer-1", "879.994") // the refusals cost nothing
	// An unknown service, or one the customer has no agreement with, is
	// refused before anything is locked.
	gpuID := grepCut(e.ok("marketplace", "--action", "search", "--query", "GPU"), "service_id")
	e.fails("service not found", append(coord, "ai-submit", "--wallet", "customer-1", "--type", "inference", "--prompt", "x", "--payment", "120", "--service-id", "svc-999")...)
	e.fails("has no agreement with it", append(coord, "ai-submit", "--wallet", "customer-1", "--type", "inference", "--prompt", "x", "--payment", "120", "--service-id", gpuID)...)
	// Quality: the delivery, and the speed the coordinator measured of the
	// provider's (hosted) miner: time to first token, tokens/s.
	var q cli.Quality
	if err := json.Unmarshal([]byte(e.ok(append(coord, "--output", "json", "marketplace", "--action", "quality-metrics", "--service-id", serviceID)...)), &q); err != nil ||
		q.Delivered != 1 || q.SuccessRate != 1 || q.FirstTokenMs == nil || *q.FirstTokenMs <= 0 || q.TokensPerSec == nil || *q.TokensPerSec <= 0 {
		t.Fatalf("quality-metrics: %+v %v", q, err)
	}
	if got := e.ok(append(coord, "marketplace", "--action", "quality-metrics", "--service-id", serviceID)...); !strings.Contains(got, " ms, tokens/s ") {
		t.Fatalf("quality-metrics:\n%s", got)
	}
	if got := e.ok(append(coord, "marketplace", "--action", "ai-throughput-test", "--duration", "6", "--jobs-per-minute", "20")...); !strings.Contains(got, "2 of 2 jobs settled") {
		t.Fatalf("ai-throughput-test:\n%s", got)
	}
	if got := e.ok("marketplace", "--action", "privacy-audit", "--service-id", serviceID); !strings.Contains(got, "ok: hashes only") || !strings.Contains(got, "prompt_hash") {
		t.Fatalf("privacy-audit:\n%s", got)
	}
}

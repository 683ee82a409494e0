package cli_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/jobkind"
)

// TestSeedJobsBeyondChatOnADevnet runs seed 001 scenario 3's inference on
// an input file, a data-processing job on it, and scenario 2's training
// job end to end on a devnet: the files go up by hash, the miner fetches
// them, the report and the model come back as files whose hashes are the
// receipts', and every balance moves by exactly what the settlements say.
func TestSeedJobsBeyondChatOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, e := startJobsDevnet(ctx, t)
	coord := []string{"--coordinator", d.CoordinatorURL()}
	balance := e.balance
	waitBalance := e.waitBalance
	for _, w := range []struct{ name, amount string }{{"enterprise-1", "5000"}, {"researcher-1", "2000"}} {
		e.ok("create", "--name", w.name, "--password", "123")
		e.ok("send", "--from", "genesis-ops", "--to", e.addrOf(w.name), "--amount", w.amount, "--password", "123")
	}
	waitBalance("enterprise-1", 5000*coin.Unit)
	waitBalance("researcher-1", 2000*coin.Unit)
	dir := t.TempDir()
	var sb strings.Builder
	sb.WriteString("region,units,price\n")
	for i := range 300 {
		fmt.Fprintf(&sb, "%s,%d,%d.5\n", []string{"north", "south", "east"}[i%3], i%17, i%5)
	}
	processed := filepath.Join(dir, "processed_data.csv")
	os.WriteFile(processed, []byte(sb.String()), 0o600)
	sb.Reset()
	sb.WriteString("width,height,species\n")
	for i := range 200 {
		w, h := i%17, (i*5)%19
		s := "small"
		if w+h > 17 {
			s = "large"
		}
		fmt.Fprintf(&sb, "%d,%d,%s\n", w, h, s)
	}
	trainingData := filepath.Join(dir, "training_data.csv")
	os.WriteFile(trainingData, []byte(sb.String()), 0o600)
	minerWallet := devnet.MinerWallet(0)

	// Bad input is refused before any money is locked: balances unchanged.
	e.fails("needs --dataset", append(coord, "ai-submit", "--wallet", "researcher-1", "--type", "training", "--model", "custom-classifier", "--payment", "500", "--password", "123")...)
	e.fails("label column not found", append(coord, "ai-submit", "--wallet", "researcher-1", "--type", "training", "--dataset", trainingData, "--label", "colour", "--payment", "500", "--password", "123")...)
	e.fails("unknown column", append(coord, "ai-submit", "--wallet", "enterprise-1", "--type", "data-processing", "--input-data", processed, "--group-by", "zone", "--payment", "30", "--password", "123")...)
	e.fails("unknown --type", append(coord, "ai-submit", "--wallet", "enterprise-1", "--type", "rendering", "--prompt", "x", "--payment", "30", "--password", "123")...)
	// The devnet's miner registered its CPU: a GPU requirement fits nobody,
	// and the refusal names it.
	e.fails("hardware the job needs: a GPU (they have: cpu", append(coord, "ai-submit", "--wallet", "researcher-1", "--type", "training", "--dataset", trainingData, "--label", "species",
		"--payment", "500", "--gpu-allocated", "1", "--memory", "8192", "--password", "123")...)
	e.fails("is too low", append(coord, "ai-submit", "--wallet", "researcher-1", "--type", "training", "--dataset", trainingData, "--label", "species", "--payment", "0.001", "--password", "123")...)
	// So does an inference job's (seed 001's scenario 3 with the seed's
	// hardware flags); a bad value is refused before any miner is asked.
	e.fails("no miner serving tolstoy-1m has the hardware the job needs: a GPU (they have: cpu", append(coord, "ai-submit", "--wallet", "enterprise-1", "--type", "inference",
		"--prompt", "Analyze processed data for trends", "--payment", "200", "--gpu-allocated", "1", "--memory", "8192", "--gpu-model", "rtx4090", "--password", "123")...)
	e.fails("ask for at least one GPU", append(coord, "ai-submit", "--wallet", "enterprise-1", "--type", "inference",
		"--prompt", "Analyze processed data for trends", "--payment", "200", "--memory", "8192", "--password", "123")...)
	if got := balance("enterprise-1"); got != 5000*coin.Unit {
		t.Fatalf("refused jobs moved money: enterprise-1 has %s", got)
	}
	// Seed 001's image job: no image model ships with AITBC, so the devnet's
	// miner generates none, and says so before any money is locked.
	e.fails("no miner connected to the coordinator generates images", append(coord, "ai-submit", "--wallet", "researcher-1", "--type", "inference",
		"--prompt", "Generate high-resolution image", "--payment", "100", "--gpu-allocated", "1", "--resolution", "1024x1024", "--password", "123")...)
	e.fails("--resolution: jobkind: image size must be WIDTHxHEIGHT", append(coord, "ai-submit", "--wallet", "researcher-1", "--type", "image", "--model", "sd-turbo",
		"--prompt", "a cat", "--payment", "100", "--resolution", "huge", "--password", "123")...)

	// settled follows a job to settlement and checks that the payer paid
	// exactly the escrow's transaction fee and what the escrow did not
	// refund (the miner's price, the burned fee, the coordinator's
	// commission), and the miner got its price.
	settled := func(payer, jobID string, payerBefore, minerBefore coin.Amount) coordinator.JobView {
		t.Helper()
		var v coordinator.JobView
		deadline := time.Now().Add(90 * time.Second)
		for {
			if err := json.Unmarshal([]byte(e.ok(append(coord, "ai-results", "--job-id", jobID, "--output", "json")...)), &v); err != nil {
				t.Fatal(err)
			}
			if v.Status == "settled" {
				break
			}
			if v.Status == "failed" || v.Status == "expired" || time.Now().After(deadline) {
				t.Fatalf("job %s: %+v", jobID, v)
			}
			time.Sleep(200 * time.Millisecond)
		}
		s := v.Settlement
		const txFee = coin.Unit / 1000
		waitBalance(payer, payerBefore-txFee-(v.MaxPrice-s.Refund))
		waitBalance(minerWallet, minerBefore+s.Paid)
		if s.Paid == 0 || s.Fee != s.Paid/10 || s.Refund >= v.MaxPrice-s.Paid-s.Fee+1 {
			t.Fatalf("settlement %+v of escrow %s", s, v.MaxPrice)
		}
		return v
	}
	submit := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := e.run(append(append(coord, "ai-submit", "--password", "123"), args...)...)
		if err != nil {
			t.Fatalf("ai-submit: %v\n%s", err, errOut)
		}
		id := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "AI job submitted. Job ID: ") {
				id = strings.TrimPrefix(l, "AI job submitted. Job ID: ")
			}
		}
		if id == "" {
			t.Fatalf("ai-submit printed %q", out)
		}
		return id, errOut
	}

	// Scenario 3: inference on the processed data — the file goes in the
	// prompt, cut to tolstoy-1m's 256-token context, saying so.
	eb, mb := balance("enterprise-1"), balance(minerWallet)
	id, errOut := submit("--wallet", "enterprise-1", "--type", "inference", "--prompt", "Analyze processed data for trends and patterns", "--payment", "200", "--input-data", processed)
	if !strings.Contains(errOut, "input truncated") || !strings.Contains(errOut, "context of 256 tokens") {
		t.Fatalf("no truncation note: %q", errOut)
	}
	settled("enterprise-1", id, eb, mb)

	// The data pipeline as a job: the report comes back as a file whose
	// hash is the receipt's.
	eb, mb = balance("enterprise-1"), balance(minerWallet)
	id, _ = submit("--wallet", "enterprise-1", "--type", "data-processing", "--input-data", processed, "--group-by", "region", "--agg", "sum:units", "--report", "csv", "--payment", "30")
	v := settled("enterprise-1", id, eb, mb)
	if v.TokensOut != 1 || v.Model != "data-processing" { // 900 cells: one work unit
		t.Fatalf("data job %+v", v)
	}
	out := e.ok(append(coord, "ai-results", "--job-id", id, "--output-dir", dir)...)
	report, err := os.ReadFile(filepath.Join(dir, id+".report.csv"))
	if err != nil || !strings.Contains(out, "as in the signed receipt") {
		t.Fatalf("ai-results --output-dir: %q %v", out, err)
	}
	if !strings.Contains(string(report), "region,count,sum(units)\neast,100,") {
		t.Fatalf("report:\n%s", report)
	}
	if rt, err := os.ReadFile(filepath.Join(dir, id+".result.json")); err != nil || !strings.Contains(out, "file sha256 ") {
		t.Fatalf("the report was not a stored file: %q %v", rt, err)
	} else if fr, ok := jobkind.ParseFileResult(string(rt)); !ok || fr.CheckFile(report) != nil {
		t.Fatalf("result %q does not name the report", rt)
	}

	// Scenario 2's training job: the model file comes back, its hash is
	// the receipt's, and it predicts.
	rb, mb := balance("researcher-1"), balance(minerWallet)
	id, _ = submit("--wallet", "researcher-1", "--type", "training", "--model", "custom-classifier", "--dataset", trainingData,
		"--label", "species", "--classifier", "logistic", "--epochs", "30", "--learning-rate", "0.5", "--payment", "500")
	v = settled("researcher-1", id, rb, mb)
	if v.TokensOut != 48 { // 160 training rows × 30 epochs / 100
		t.Fatalf("training job %+v", v)
	}
	e.ok(append(coord, "ai-results", "--job-id", id, "--output-dir", dir)...)
	modelFile := filepath.Join(dir, id+".model.json")
	b, err := os.ReadFile(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	// The miner stored the model file with the coordinator: the signed
	// result (saved beside it) names the file's hash, the receipt the
	// result's.
	rt, err := os.ReadFile(filepath.Join(dir, id+".result.json"))
	if err != nil {
		t.Fatal(err)
	}
	fr, ok := jobkind.ParseFileResult(string(rt))
	if sum := sha256.Sum256(rt); !ok || hex.EncodeToString(sum[:]) != v.Receipt.ResultHash || fr.CheckFile(b) != nil {
		t.Fatalf("model file is not what the receipt signs: result %q", rt)
	}
	rows := filepath.Join(dir, "new.csv")
	os.WriteFile(rows, []byte("width,height\n16,18\n0,1\n"), 0o600)
	if got := e.ok("model", "predict", "--model-file", modelFile, "--input", rows); !strings.Contains(got, "1\tlarge") || !strings.Contains(got, "2\tsmall") {
		t.Fatalf("predict:\n%s", got)
	}
	// Re-running the job here gives the same model: the receipt can be checked.
	local := filepath.Join(dir, "local.json")
	e.ok("model", "train", "--dataset", trainingData, "--label", "species", "--kind", "logistic", "--epochs", "30", "--learning-rate", "0.5", "--model-file", local)
	if lb, _ := os.ReadFile(local); string(lb) != string(b) {
		t.Fatal("a local re-run trained another model")
	}
	if got := e.ok("chain", "audit"); strings.Contains(got, "FAIL") {
		t.Fatalf("audit:\n%s", got)
	}
}

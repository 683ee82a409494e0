package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
)

// TestFinetuneJobOnADevnet: `ai-submit --type training --model tolstoy-1m
// --dataset book.txt` fine-tunes the devnet miner's tolstoy-1m on the
// book and settles (the customer pays exactly the fee and what the
// escrow did not refund); `ai-results --output-dir` fetches the GGUF from
// the coordinator, checked against the signed result; it imports and
// runs; and a local `model finetune` with the same parameters writes the
// same file, byte for byte, so anyone can check the receipt. A chat with an
// image is refused, naming the requirement: the devnet's built-in engine
// has no vision.
func TestFinetuneJobAndImageChatOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, e := startJobsDevnet(ctx, t)
	coord := []string{"--coordinator", d.CoordinatorURL()}
	minerWallet := devnet.MinerWallet(0)
	balance := e.balance
	waitBalance := e.waitBalance
	e.ok("create", "--name", "researcher-1", "--password", "123")
	e.ok("send", "--from", "genesis-ops", "--to", e.addrOf("researcher-1"), "--amount", "2000", "--password", "123")
	waitBalance("researcher-1", 2000*coin.Unit)

	dir := t.TempDir()
	book := filepath.Join("..", "train", "lm", "testdata", "book.txt")
	notText := filepath.Join(dir, "book.bin")
	os.WriteFile(notText, []byte("\x00\x01\x02\x03 not a book"), 0o600)
	sub := append(coord, "ai-submit", "--wallet", "researcher-1", "--type", "training", "--model", "tolstoy-1m", "--password", "123", "--payment", "50")
	e.fails("NUL bytes", append(sub, "--dataset", notText)...)
	e.fails("over the work limit", append(sub, "--dataset", book, "--steps", "1000000")...)
	e.fails("--label, --hidden and --classifier are for --model custom-classifier", append(sub, "--dataset", book, "--label", "x")...)
	if got := balance("researcher-1"); got != 2000*coin.Unit {
		t.Fatalf("refused jobs moved money: %s", got)
	}

	rb, mb := balance("researcher-1"), balance(minerWallet)
	out, errOut, err := e.run(append(sub, "--dataset", book, "--steps", "3", "--seq-len", "32")...)
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
	var v coordinator.JobView
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := json.Unmarshal([]byte(e.ok(append(coord, "ai-results", "--job-id", id, "--output", "json")...)), &v); err != nil {
			t.Fatal(err)
		}
		if v.Status == "settled" {
			break
		}
		if v.Status == "failed" || v.Status == "expired" || time.Now().After(deadline) {
			t.Fatalf("job %s: %+v", id, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s := v.Settlement
	const txFee = coin.Unit / 1000
	waitBalance("researcher-1", rb-txFee-(v.MaxPrice-s.Refund))
	waitBalance(minerWallet, mb+s.Paid)
	if v.Model != "finetune:tolstoy-1m" || v.TokensOut != 6 || s.Paid == 0 { // 3 steps × 4 × 32 tokens: six units of 64
		t.Fatalf("job %+v", v)
	}

	var saved struct {
		File              string `json:"file"`
		ModelSHA256       string `json:"model_sha256"`
		ReceiptResultHash string `json:"receipt_result_hash"`
	}
	raw := e.ok(append(coord, "ai-results", "--job-id", id, "--output-dir", dir, "--output", "json")...)
	if err := json.Unmarshal([]byte(raw), &saved); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	gguf, err := os.ReadFile(filepath.Join(dir, id+".gguf"))
	if err != nil {
		t.Fatalf("%v (ai-results printed %s)", err, raw)
	}
	sum := sha256.Sum256(gguf)
	if hex.EncodeToString(sum[:]) != saved.ModelSHA256 || saved.ReceiptResultHash != v.Receipt.ResultHash {
		t.Fatalf("saved %+v, GGUF sha256 %x, receipt %s", saved, sum, v.Receipt.ResultHash)
	}
	e.ok("model", "import", filepath.Join(dir, id+".gguf"), "--name", "austen-1m")
	if got := e.ok("model", "run", "--model", "austen-1m", "--prompt", "Mr. Bennet", "--max-tokens", "8"); !strings.HasPrefix(got, "Mr. Bennet") {
		t.Fatalf("model run: %q", got)
	}
	local := filepath.Join(dir, "tolstoy-1m-finetuned.gguf")
	e.ok("model", "finetune", "--dataset", book, "--steps", "3", "--seq-len", "32", "--out", local)
	if lb, _ := os.ReadFile(local); string(lb) != string(gguf) {
		t.Fatal("a local re-run wrote another model file")
	}
	// Images in: the devnet's only miner runs the built-in engine, which
	// declares no vision, so a chat with an image part is refused up front.
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	chat := `{"model":"tolstoy-1m","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},` +
		`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + base64.StdEncoding.EncodeToString(pngBuf.Bytes()) + `"}}]}]}`
	req, _ := http.NewRequest("POST", d.CoordinatorURL()+"/v1/chat/completions", strings.NewReader(chat))
	req.Header.Set("Authorization", "Bearer "+d.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 409 || !strings.Contains(string(body), "vision_not_served") || !strings.Contains(string(body), "the built-in engine has none") {
		t.Fatalf("chat with an image on a devnet: %d %s", resp.StatusCode, body)
	}
	if got := e.ok("chain", "audit"); strings.Contains(got, "FAIL") {
		t.Fatalf("audit:\n%s", got)
	}
}

package devnet_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// TestForgedReceiptIsRejectedAndNotPaid registers a dishonest miner that
// returns a receipt whose result hash is not the hash of the text it sends.
// The coordinator must refuse it, run the job on the honest miner, and the
// dishonest miner must not be paid.
func TestForgedReceiptIsRejectedAndNotPaid(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1, MinerSlots: 1, MinerPrice: 2 * coin.Unit})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := e.d.Wallets.Service()
	info, err := svc.Create(ctx, "evil", "pw")
	if err != nil {
		t.Fatal(err)
	}
	sent, err := svc.Send(ctx, devnet.GenesisWallet, "123", info.Address, 500*coin.Unit, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.WaitTx(ctx, sent.TxHash, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// Cheaper than the honest miner, so the scheduler prefers it.
	reg, _ := miners.NewRegisterMsg(miners.Capabilities{Models: []string{"tolstoy-1m"}, GPU: "cpu", PricePer1k: coin.Unit / 2}, 100*coin.Unit)
	rsub, err := svc.SignAndSubmit(ctx, "evil", "pw", reg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.WaitTx(ctx, rsub.TxHash, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ks, _ := keystore.ForHome(e.home, keystore.WithKDF(keystore.InsecureTestKDF()))
	key, err := ks.Unlock("evil", "pw")
	if err != nil {
		t.Fatal(err)
	}
	evilBefore := e.balance(info.Address)

	// The dishonest miner's session, over the real protocol.
	u := strings.Replace(e.d.CoordinatorURL(), "http", "ws", 1) + "/v1/miners/connect"
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var ch minerproto.Envelope
	if err := wsjson.Read(ctx, c, &ch); err != nil {
		t.Fatal(err)
	}
	nonce, _ := hex.DecodeString(ch.Nonce)
	coord, _ := address.Parse(ch.Coordinator)
	hello := &minerproto.Hello{Models: []string{"tolstoy-1m"}, Slots: 1, Backend: "forger"}
	minerproto.SignHello(hello, key, nonce, coord)
	if err := wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeHello, Hello: hello}); err != nil {
		t.Fatal(err)
	}
	var welcome minerproto.Envelope
	if err := wsjson.Read(ctx, c, &welcome); err != nil || welcome.Type != minerproto.TypeWelcome {
		t.Fatalf("not admitted: %+v %v", welcome, err)
	}
	forged := make(chan string, 4)
	go func() {
		for {
			var m minerproto.Envelope
			if err := wsjson.Read(ctx, c, &m); err != nil {
				return
			}
			if m.Type != minerproto.TypeJob {
				continue
			}
			j := m.Job
			_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeAck, JobID: j.ID, Attempt: j.Attempt})
			id, _ := hex.DecodeString(j.ID)
			cust, _ := address.Parse(j.Customer)
			ph, _ := hex.DecodeString(j.PromptHash)
			other := sha256.Sum256([]byte("a much longer and more valuable answer"))
			r := jobs.Receipt{JobID: id, ChainID: j.ChainID, Customer: cust[:], Model: j.Model, PromptHash: ph, ResultHash: other[:],
				TokensIn: 3, TokensOut: 5, StartMs: 1, EndMs: 2, Price: jobs.PriceFor(5, coin.Unit/2)}
			r.SignWith(key.PublicKey(), key.Sign)
			b, _ := r.Encode()
			_ = wsjson.Write(ctx, c, minerproto.Envelope{Type: minerproto.TypeResult, JobID: j.ID, Attempt: j.Attempt,
				Text: "short", TokensIn: 3, TokensOut: 5, FinishReason: "stop", Receipt: b})
			forged <- j.ID
		}
	}()

	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "It was", "max_tokens": 20})
	select {
	case id := <-forged:
		if id != job.JobID {
			t.Fatalf("forger got job %s", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job never reached the dishonest miner")
	}
	v := e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled")
	honest := e.d.Miners[0].Address()
	if v.Miner != honest.String() || v.Attempt < 2 {
		t.Fatalf("job settled by %s after %d attempts, want the honest miner after a retry", v.Miner, v.Attempt)
	}
	cj, _ := jobs.QueryJob(ctx, e.node, job.JobID)
	if cj.Miner == nil || *cj.Miner != honest {
		t.Fatalf("on chain the job is assigned to %v", cj.Miner)
	}
	if got := e.balance(info.Address); got != evilBefore {
		t.Fatalf("the forging miner's balance moved from %s to %s", evilBefore, got)
	}
}

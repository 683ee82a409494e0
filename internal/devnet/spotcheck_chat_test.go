package devnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/devnet"
)

// TestSpotCheckedChatJobPassesOnADevnet: a chat job (messages, not a
// prompt) is checked like a completion. The devnet's verifier rebuilds
// the prompt the miner's engine ran from the messages the receipt's
// prompt hash binds (tolstoy-1m has no chat template: the flattened
// conversation) and reports a pass; the miner's pay, held meanwhile, is
// released and nothing stays held.
func TestSpotCheckedChatJobPassesOnADevnet(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1, SpotCheckBps: 10_000})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	va := e.d.VerifierAddress()
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "max_tokens": 40, "temperature": 0.8, "seed": 5,
		"messages": []map[string]string{{"role": "system", "content": "Be Tolstoy."}, {"role": "user", "content": "Who is Natasha?"}}})
	s := e.waitStatus(e.d.APIKey, job.JobID, 2*time.Minute, "settled")
	price := jobs.PriceFor(uint64(s.TokensOut), coin.Unit)

	var c audits.CheckView
	var err error
	for ctx.Err() == nil {
		if c, err = audits.QueryCheck(ctx, e.node, job.JobID); err == nil && c.Status != "assigned" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.Status != "passed" || c.Verifier != va.String() || c.Held != price || c.Reason != "" {
		t.Fatalf("chat job's check %+v %v, want passed by %s holding %s", c, err, va, price)
	}
	if held := e.balance(address.Module(audits.HeldAccount)); held != 0 {
		t.Errorf("audits.held holds %s after the pass", held)
	}
}

package devnet_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// The two ways a customer got a job's output for free before the release
// delay (docs/ECONOMICS.md, "Pay before you get"), each run against a real
// devnet as the customer would: both now end with the miner paid.

// TestCancelInTheSameBlockDoesNotGetWorkFree: the customer escrows a job
// from its wallet, hands it to the coordinator, and at once sends
// jobs/cancel for it, to land beside the coordinator's assignment. The
// cancellation is only scheduled, the assignment voids it, and the job is
// settled from the escrow: the miner is paid for the tokens delivered.
func TestCancelInTheSameBlockDoesNotGetWorkFree(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1, BlockTime: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := e.d.Wallets.Service()
	id := make([]byte, jobs.IDLen)
	_, _ = rand.Read(id)
	prompt := "It was"
	ph := minerproto.PromptHash(prompt, nil)
	create := jobs.NewCreateMsg(jobs.Spec{ID: id, Model: "tolstoy-1m", PromptHash: ph[:], MaxTokens: 40, MaxPrice: 5 * coin.Unit, TTLSeconds: 600}, e.d.Coordinator.Address())
	sub, err := svc.SignAndSubmit(ctx, devnet.GenesisWallet, "123", create, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := e.node.WaitTx(ctx, sub.TxHash, 50*time.Millisecond); err != nil || r.Status != "committed" {
		t.Fatalf("escrow: %+v %v", r, err)
	}
	minerBefore := e.balance(e.d.Miners[0].Address())

	// Hand the job over and cancel it at once: both reach the chain in the
	// next block or two, the cancellation first if anything.
	cancelSub, err := svc.SignAndSubmit(ctx, devnet.GenesisWallet, "123", jobs.NewCancelMsg(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	job := e.submit(e.d.APIKey, map[string]any{"job_id": hex.EncodeToString(id), "model": "tolstoy-1m", "prompt": prompt, "max_tokens": 40})
	if r, err := e.node.WaitTx(ctx, cancelSub.TxHash, 50*time.Millisecond); err != nil || r.Status != "committed" {
		t.Fatalf("the cancellation was refused, so the attack was not tried: %+v %v", r, err)
	}

	v := e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled", "failed", "expired")
	if v.Status != "settled" || v.TokensOut == 0 {
		t.Fatalf("job ended %s (%s %s): the customer's cancellation beat the miner's payment", v.Status, v.ErrorCode, v.Error)
	}
	cj, err := jobs.QueryJob(ctx, e.node, job.JobID)
	if err != nil || cj.Status != "settled" || cj.Paid == 0 || cj.CancelAt != nil || cj.Paid+cj.Fee+cj.Commission+cj.Refund != cj.Escrow {
		t.Fatalf("on-chain job %+v %v", cj, err)
	}
	if got := e.balance(e.d.Miners[0].Address()) - minerBefore; got < cj.Paid {
		t.Fatalf("miner received %s, the settlement paid %s", got, cj.Paid)
	}
}

// TestWithdrawingTheDepositDoesNotGetWorkFree: the customer announces the
// withdrawal of its whole deposit and, before that is committed, submits a
// job paid from the deposit. The job runs at once and is paid from the
// deposit (the money stays for the release delay); once the announcement
// is committed, the next job is refused insufficient_deposit.
func TestWithdrawingTheDepositDoesNotGetWorkFree(t *testing.T) {
	e := start(t, devnet.Config{Miners: 1, BlockTime: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := e.d.Wallets.Service()
	dep, err := jobs.QueryDeposit(ctx, e.node, e.d.Genesis, e.d.Coordinator.Address())
	if err != nil || dep.Amount == 0 {
		t.Fatalf("devnet deposit %+v %v", dep, err)
	}
	withdraw, err := svc.SignAndSubmit(ctx, devnet.GenesisWallet, "123", jobs.NewWithdrawMsg(e.d.Coordinator.Address(), dep.Amount), 0)
	if err != nil {
		t.Fatal(err)
	}
	job := e.submit(e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "Prince Andrew", "max_tokens": 40})
	if r, err := e.node.WaitTx(ctx, withdraw.TxHash, 50*time.Millisecond); err != nil || r.Status != "committed" {
		t.Fatalf("withdrawal: %+v %v", r, err)
	}
	v := e.waitStatus(e.d.APIKey, job.JobID, time.Minute, "settled", "failed", "expired")
	if v.Status != "settled" || v.TokensOut == 0 || v.Result == nil && v.Settlement == nil {
		t.Fatalf("job ended %s (%s %s)", v.Status, v.ErrorCode, v.Error)
	}
	cj, err := jobs.QueryJob(ctx, e.node, job.JobID)
	if err != nil || cj.Status != "settled" || !cj.FromDeposit || cj.Paid == 0 {
		t.Fatalf("on-chain job %+v %v", cj, err)
	}
	after, err := jobs.QueryDeposit(ctx, e.node, e.d.Genesis, e.d.Coordinator.Address())
	if err != nil {
		t.Fatal(err)
	}
	// The job's price, fee and commission came out of the deposit; the rest of the
	// escrow went back into it; the withdrawal, announced for the whole
	// original amount, is paid after the release delay from what is left.
	if after.Amount != dep.Amount-cj.Paid-cj.Fee-cj.Commission || after.Withdrawing != dep.Amount || after.WithdrawAt == nil || after.Spendable != 0 {
		t.Fatalf("deposit after the job: %+v (was %s, job cost %s)", after, dep.Amount, cj.Paid+cj.Fee+cj.Commission)
	}
	var refused coordinatorJob
	err = e.call("POST", "/v1/jobs", e.d.APIKey, map[string]any{"model": "tolstoy-1m", "prompt": "Natasha", "max_tokens": 8}, &refused)
	if !httpx.IsCode(err, jobs.ErrDepositLow.Name) {
		t.Fatalf("a job on a deposit announced for withdrawal: %v, want %s", err, jobs.ErrDepositLow.Name)
	}
}

type coordinatorJob struct {
	JobID string `json:"job_id"`
}

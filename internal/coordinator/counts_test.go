package coordinator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/verify"
)

// TestReceiptCountingMoreTokensThanItsAttestationIsRejected: the customer
// pays tokens out × price and the counts are the miner's own report; a
// receipt whose counts exceed the tokens its engine attestation lists is
// refused before anything is paid, and the job goes to another miner. The
// same result with the true counts completes.
func TestReceiptCountingMoreTokensThanItsAttestationIsRejected(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res, a, err := verify.Generate(context.Background(), m, engine.GenerateRequest{Prompt: "It was", MaxTokens: 8, Temperature: 0.8, Seed: 2, Threads: 1}, make([]byte, 32), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	att, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	in, out := len(res.PromptTokens), len(res.Tokens)

	finish := func(fm *fakeMiner, mj *minerproto.Job, in, out int) {
		id, _ := hex.DecodeString(mj.ID)
		ph, _ := hex.DecodeString(mj.PromptHash)
		cust, _ := address.Parse(mj.Customer)
		rh, ah := sha256.Sum256([]byte(res.Text)), sha256.Sum256(att)
		r := jobs.Receipt{JobID: id, ChainID: mj.ChainID, Miner: fm.addr[:], Customer: cust[:], Model: mj.Model, PromptHash: ph, ResultHash: rh[:],
			TokensIn: uint64(in), TokensOut: uint64(out), StartMs: 1, EndMs: 2, Price: jobs.PriceFor(uint64(out), fm.price), AttestHash: ah[:]}
		r.Sign(fm.key)
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		fm.send(minerproto.Envelope{Type: minerproto.TypeResult, JobID: mj.ID, Attempt: mj.Attempt, Text: res.Text, TokensIn: in, TokensOut: out,
			FinishReason: "stop", Receipt: b, Attestation: att})
	}

	h := newHarness(t, releaseDelay)
	h.fund(100 * coin.Unit)
	cheat := h.addMiner(coin.Unit)
	j := h.submit(JobRequest{Model: testModel, Prompt: "It was", MaxTokens: 64}) // room above the 8 generated
	finish(cheat, cheat.nextJob(), in, out+3)
	waitFor(t, "the over-counted result refused and the job requeued", func() bool {
		got := h.job(j.ID)
		return got.Status == "queued" && len(got.Excluded) == 1 && got.Excluded[0] == cheat.addr.String()
	})
	if got := h.job(j.ID); got.Result != "" || got.TokensOut != 0 {
		t.Fatalf("a refused result was kept: %q, %d tokens", got.Result, got.TokensOut)
	}

	honest := h.addMiner(coin.Unit)
	finish(honest, honest.nextJob(), in, out)
	waitFor(t, "the result with its true counts accepted", func() bool {
		got := h.job(j.ID)
		return got.Result == res.Text && got.TokensOut == out
	})
}

// TestLogprobAttestationBoundsTheOutputCount: a remote backend's
// attestation reports a log-probability per generated token; its receipt
// may count one token more (the stop token a server counts without
// reporting it), not more than that.
func TestLogprobAttestationBoundsTheOutputCount(t *testing.T) {
	a := verify.LogprobAttestation{Version: verify.LogprobVersion, Backend: verify.BackendOpenAI, Model: "m"}
	for _, w := range []string{" It", " was", " late"} {
		a.Positions = append(a.Positions, verify.PositionLogprobs{Token: []byte(w), Logprob: -1000})
	}
	b, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for out, want := range map[uint64]bool{2: true, 3: true, 4: true, 5: false, 64: false} {
		if got := attestedCounts(b, 7, out); got != want {
			t.Errorf("%d tokens out for 3 reported: accepted %v, want %v", out, got, want)
		}
	}
}

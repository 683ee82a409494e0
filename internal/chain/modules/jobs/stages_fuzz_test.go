package jobs_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// FuzzSettleStagesDecode: any bytes either fail to decode or decode to a
// settlement that re-encodes to the same bytes; checking it and splitting
// a price over it never panic, and a settlement that checks pays out
// exactly the price.
func FuzzSettleStagesDecode(f *testing.F) {
	id := bytes.Repeat([]byte{1}, jobs.IDLen)
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	st := jobs.StageReceipt{JobID: id, ChainID: "c", Session: "s", Model: "m", First: 0, Last: 3, Tokens: 4, InHash: make([]byte, 32), OutHash: make([]byte, 32)}
	st.SignWith(priv.Public().(ed25519.PublicKey), func(b []byte) []byte { return ed25519.Sign(priv, b) })
	good, _ := tx.Marshal(jobs.MsgSettleStages{JobID: id, ResultHash: make([]byte, 32), TokensIn: 2, TokensOut: 2, Layers: 4, PricePer1k: coin.Unit, Route: 1, Stages: []jobs.StageReceipt{st}})
	f.Add(good)
	f.Add([]byte{0x88})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m jobs.MsgSettleStages
		if err := tx.Unmarshal(b, &m); err != nil {
			return
		}
		re, err := tx.Marshal(m)
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("round trip: %v", err)
		}
		if m.Check(jobs.StageJob{ID: id, ChainID: "c", Model: "m", MaxTokens: 10}) != nil {
			_ = m.StagePayments(1000)
			return
		}
		var sum coin.Amount
		for _, p := range m.StagePayments(1_000_003) {
			sum += p.Amount
		}
		if sum != 1_000_003 {
			t.Fatalf("a checked settlement pays %s of 1000003", sum)
		}
	})
}

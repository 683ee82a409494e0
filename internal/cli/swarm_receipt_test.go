package cli_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/coordinator"
)

func stageOf(seed byte, id []byte, first, last uint32, tokens uint64, in, out string) jobs.StageReceipt {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	h := func(s string) []byte { b := sha256.Sum256([]byte(s)); return b[:] }
	s := jobs.StageReceipt{JobID: id, ChainID: "aitbc-devnet", Session: "s" + string(rune('0'+seed)), Model: "tolstoy-1m",
		First: first, Last: last, Tokens: tokens, InHash: h(in), OutHash: h(out)}
	s.SignWith(priv.Public().(ed25519.PublicKey), func(b []byte) []byte { return ed25519.Sign(priv, b) })
	return s
}

// `receipt verify --offline` checks a split job's chain of stage receipts
// from the job's JSON alone, and names what is wrong with a forged one.
func TestReceiptVerifyStagesOffline(t *testing.T) {
	id := bytes.Repeat([]byte{5}, jobs.IDLen)
	text := "awkward of the French"
	res := sha256.Sum256([]byte(text))
	set := jobs.MsgSettleStages{JobID: id, ResultHash: res[:], TokensIn: 3, TokensOut: 9, Layers: 4, PricePer1k: coin.Unit, Route: 2,
		Stages: []jobs.StageReceipt{stageOf(1, id, 0, 1, 11, "t", "h"), stageOf(2, id, 2, 3, 11, "h", "l"), stageOf(3, id, 2, 3, 4, "h4", "l4")}}
	write := func(set jobs.MsgSettleStages, result string) string {
		b, err := tx.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(coordinator.JobView{JobID: hex.EncodeToString(id), Model: "tolstoy-1m", MaxTokens: 9, Status: "settled", Split: true,
			StageSettlement: b, Result: &result})
		f := filepath.Join(t.TempDir(), "job.json")
		if err := os.WriteFile(f, j, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	out, _, err := runCLI(t, "receipt", "verify", "--file", write(set, text), "--offline", "--output", "json")
	if err != nil {
		t.Fatalf("a good chain: %v\n%s", err, out)
	}
	var chk cli.StageCheck
	if err := json.Unmarshal([]byte(out), &chk); err != nil || !chk.ChainOK || chk.ResultOK == nil || !*chk.ResultOK || len(chk.Stages) != 3 || chk.Stages[2].Route {
		t.Fatalf("check %+v (%v)\n%s", chk, err, out)
	}
	for _, c := range []struct {
		name   string
		edit   func(*jobs.MsgSettleStages)
		result string
		want   string
	}{
		{"tokens raised after signing", func(s *jobs.MsgSettleStages) { s.Stages[2].Tokens = 11 }, text, jobs.ErrStageSignature.Error()},
		{"a stage that does not chain", func(s *jobs.MsgSettleStages) { s.Stages[1] = stageOf(2, id, 2, 3, 11, "x", "l") }, text, jobs.ErrStageRoute.Error()},
		{"another result", func(*jobs.MsgSettleStages) {}, "other text", "result text"},
	} {
		bad := set
		bad.Stages = append([]jobs.StageReceipt(nil), set.Stages...)
		c.edit(&bad)
		out, _, err := runCLI(t, "receipt", "verify", "--file", write(bad, c.result), "--offline")
		if !errors.Is(err, cli.ErrReceiptBad) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q\n%s", c.name, err, c.want, out)
		}
	}
}

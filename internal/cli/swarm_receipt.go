package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator"
)

// StageCheck is what `receipt verify` established of a split job's
// chain of stage receipts (docs/DISTRIBUTED.md).
type StageCheck struct {
	Hash     string       `json:"hash"` // the settlement's digest, anchored on chain
	JobID    string       `json:"job_id"`
	ChainID  string       `json:"chain_id"`
	Stages   []StageShare `json:"stages"`
	ChainOK  bool         `json:"stages_valid"` // every signature, the route's layers and hash links, the token bounds
	Problem  string       `json:"problem,omitempty"`
	ResultOK *bool        `json:"result_matches_hash,omitempty"`
	Anchored *bool        `json:"anchored_on_chain,omitempty"`
	Height   int64        `json:"settled_height,omitempty"`
}

// StageShare is one stage as verified.
type StageShare struct {
	Server string `json:"server"`
	First  uint32 `json:"first_layer"`
	Last   uint32 `json:"last_layer"`
	Tokens uint64 `json:"tokens"`
	Route  bool   `json:"route"` // false: a server that dropped out mid-generation
}

// verifyStages checks a split job's stage settlement: offline, every
// stage's signature (each receipt carries its key, bound to its address),
// that the route covers the layers in order with each stage's input chain
// the previous one's output chain, the token bounds, and the result hash;
// online, also that the settlement is anchored on chain. It returns the
// check and the first failure.
func verifyStages(ctx context.Context, node receiptAnchors, job coordinator.JobView) (StageCheck, string) {
	var set jobs.MsgSettleStages
	if err := tx.Unmarshal(job.StageSettlement, &set); err != nil {
		return StageCheck{JobID: job.JobID}, "the stage settlement does not decode: " + err.Error()
	}
	h := set.Hash()
	chk := StageCheck{Hash: hex.EncodeToString(h[:]), JobID: hex.EncodeToString(set.JobID)}
	for i, s := range set.Stages {
		chk.Stages = append(chk.Stages, StageShare{Server: s.ServerAddr().String(), First: s.First, Last: s.Last, Tokens: s.Tokens, Route: i < int(set.Route)})
	}
	if len(set.Stages) > 0 {
		chk.ChainID = set.Stages[0].ChainID
	}
	var fails []string
	id, _ := hex.DecodeString(job.JobID)
	if err := set.Check(jobs.StageJob{ID: id, ChainID: chk.ChainID, Model: job.Model, MaxTokens: uint64(job.MaxTokens)}); err != nil {
		chk.Problem = err.Error()
		fails = append(fails, err.Error())
	} else {
		chk.ChainOK = true
	}
	if job.Result != nil {
		r := sha256.Sum256([]byte(*job.Result))
		ok := string(r[:]) == string(set.ResultHash)
		chk.ResultOK = &ok
		if !ok {
			fails = append(fails, "the result text does not hash to the settlement's result hash")
		}
	}
	if node != nil {
		a, err := node(ctx, chk.Hash)
		if err != nil {
			fails = append(fails, err.Error())
		} else {
			chk.Anchored, chk.Height = &a.Anchored, a.Height
			if !a.Anchored {
				fails = append(fails, "the settlement's hash is not anchored on chain (not settled yet, or not this settlement)")
			}
		}
	}
	if len(fails) > 0 {
		return chk, fails[0]
	}
	return chk, ""
}

// receiptAnchors asks the chain whether a receipt hash is anchored (nil:
// offline).
type receiptAnchors func(ctx context.Context, hash string) (jobs.ReceiptAnchor, error)

func printStageCheck(w io.Writer, chk StageCheck) {
	fmt.Fprintf(w, "split job %s: %d stage receipts, settlement %s\n", chk.JobID, len(chk.Stages), chk.Hash)
	for _, s := range chk.Stages {
		role := "route"
		if !s.Route {
			role = "dropped"
		}
		fmt.Fprintf(w, "  %-7s %s layers %d-%d, %d tokens\n", role, s.Server, s.First, s.Last, s.Tokens)
	}
	fmt.Fprintf(w, "  stages         %s\n", okBad(chk.ChainOK))
	if chk.Problem != "" {
		fmt.Fprintf(w, "    %s\n", chk.Problem)
	}
	if chk.ResultOK != nil {
		fmt.Fprintf(w, "  result hash    %s\n", okBad(*chk.ResultOK))
	}
	if chk.Anchored != nil {
		fmt.Fprintf(w, "  on chain       %s", okBad(*chk.Anchored))
		if *chk.Anchored {
			fmt.Fprintf(w, " (settled at height %d)", chk.Height)
		}
		fmt.Fprintln(w)
	}
}

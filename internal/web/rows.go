package web

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/rpc"
)

// BlockRow is a block as the explorer's lists and JSON show it.
type BlockRow struct {
	Height   int64         `json:"height"`
	Hash     string        `json:"hash"`
	Time     time.Time     `json:"time"`
	NumTxs   int           `json:"num_txs"`
	Proposer string        `json:"proposer"`
	Interval time.Duration `json:"interval_ns,omitempty"` // since the block before; 0 for the first known
}

// TxRow is a transaction as the explorer's lists and JSON show it: the
// body decoded into who, to whom and how much, where the type has them.
type TxRow struct {
	Hash   string    `json:"tx_hash"`
	Height int64     `json:"height"`
	Index  uint32    `json:"index"`
	Time   time.Time `json:"time"`
	Type   string    `json:"type"`
	Status string    `json:"status"`
	From   string    `json:"from"`
	To     string    `json:"to,omitempty"`     // recipient, miner or coordinator, by type
	Amount string    `json:"amount,omitempty"` // decimal AITBC moved or locked, by type
	Fee    string    `json:"fee"`
	JobID  string    `json:"job_id,omitempty"`
	Error  string    `json:"error,omitempty"`
	Tokens uint64    `json:"tokens_out,omitempty"` // jobs/settle
	body   map[string]any
	job    *jobEvent
}

// jobEvent is what a committed jobs/assign or jobs/settle tells the
// charts and the leaderboard.
type jobEvent struct {
	Time      time.Time
	Settle    bool // else an assignment
	Miner     string
	TokensOut uint64
	Price     coin.Amount
}

func blockRow(b rpc.Block, prev *BlockRow) BlockRow {
	r := BlockRow{Height: b.Height, Hash: b.Hash, Time: b.Time, NumTxs: b.NumTxs, Proposer: b.Proposer}
	if prev != nil && prev.Height == b.Height-1 {
		r.Interval = b.Time.Sub(prev.Time)
	}
	return r
}

// txRow flattens a node transaction. The body is the module's own
// description (Describe), decoded from JSON into a map: the fields read
// here are the ones the bank, miners and jobs modules name.
func txRow(t rpc.Transaction) TxRow {
	r := TxRow{Hash: t.Hash, Height: t.Height, Index: t.Index, Type: t.Type, Status: t.Status, From: t.From.String(),
		Fee: t.Fee.String(), Error: t.Error}
	if t.Time != nil {
		r.Time = t.Time.UTC()
	}
	if t.From.IsZero() {
		r.From = ""
	}
	r.body = bodyMap(t.Body)
	str := func(k string) string {
		switch v := r.body[k].(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ""
	}
	r.JobID = str("job_id")
	switch {
	case str("to") != "":
		r.To = str("to")
	case str("miner") != "":
		r.To = str("miner")
	case str("coordinator") != "":
		r.To = str("coordinator")
	case str("customer") != "":
		r.To = str("customer")
	case str("operator") != "":
		r.To = str("operator") // staking/stake, staking/unstake
	}
	for _, k := range []string{"amount", "price", "max_price", "stake"} {
		if v := str(k); v != "" {
			r.Amount = v
			break
		}
	}
	switch {
	case t.Status != "committed":
	case t.Type == "jobs/settle":
		if n, err := strconv.ParseUint(str("tokens_out"), 10, 64); err == nil {
			r.Tokens = n
			price, _ := coin.Parse(str("price"))
			r.job = &jobEvent{Time: r.Time, Settle: true, Miner: str("miner"), TokensOut: n, Price: price}
		}
	case t.Type == "jobs/assign":
		r.job = &jobEvent{Time: r.Time, Miner: str("miner")}
	}
	return r
}

// bodyMap turns a transaction body (decoded from the node's JSON as
// map[string]any, or a module's value in process) into a map.
func bodyMap(b any) map[string]any {
	if m, ok := b.(map[string]any); ok {
		return m
	}
	if b == nil {
		return nil
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

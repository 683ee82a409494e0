package market_test

import (
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestALateBoundJobIsDeliveredWhileManyEarlierOnesRun: more bound jobs
// than one block examines stay running with lower ids; a job bound after
// them settles and its provider is paid under the agreement within a few
// blocks (a pass from the start of the index every block would look at
// the same running jobs until their TTL, 10 minutes of blocks).
func TestALateBoundJobIsDeliveredWhileManyEarlierOnesRun(t *testing.T) {
	prov, cust, coord := newAcct("provider", 1), newAcct("customer", 2), newAcct("coordinator", 3)
	c := newChain(t, nil, 1_000_000*coin.Unit, prov, cust, coord)
	c.miner(prov, "llama2", coin.Unit/10)
	spec := listing("svc-many", coin.Unit)
	spec.AutoAccept = true
	c.must(prov, market.NewCreateMsg(spec))
	const running = 1200
	c.must(cust, market.NewOrderMsg(market.MsgOrder{Type: market.TypeAIInference, Model: "llama2", MaxPrice: coin.Unit, Units: running + 1}))
	v, err := c.query("/api/v1/market/agreements", req{query: map[string]string{"service": "svc-many"}})
	if err != nil || len(v.(market.AgreementList).Agreements) != 1 {
		t.Fatalf("agreements: %+v %v", v, err)
	}
	agr := v.(market.AgreementList).Agreements[0].ID

	jobID := func(n uint32) []byte {
		id := make([]byte, jobs.IDLen)
		binary.BigEndian.PutUint32(id[jobs.IDLen-4:], n)
		return id
	}
	// The running jobs, created and bound in a few full blocks.
	var batch [][]byte
	flush := func() {
		for i, r := range c.block(nil, batch...) {
			if r.code != 0 {
				t.Fatalf("tx %d: %v", i, r.Err())
			}
		}
		batch = nil
	}
	add := func(msg tx.Msg) {
		batch = append(batch, c.tx(cust, msg))
		cust.nonce++
	}
	for n := uint32(1); n <= running; n++ {
		id := jobID(n)
		add(jobs.NewCreateMsg(jobs.Spec{ID: id, Model: "llama2", PromptHash: promptHash[:], MaxTokens: 500, MaxPrice: coin.Unit, TTLSeconds: 600}, coord.addr))
		add(market.NewBindMsg(agr, id))
		if len(batch) >= 400 {
			flush()
		}
	}
	flush()

	late := jobID(1 << 30)
	c.must(cust, jobs.NewCreateMsg(jobs.Spec{ID: late, Model: "llama2", PromptHash: promptHash[:], MaxTokens: 500, MaxPrice: coin.Unit, TTLSeconds: 600}, coord.addr))
	c.must(cust, market.NewBindMsg(agr, late))
	c.settleJob(late, cust, coord, prov, "llama2", 400, coin.Unit/10)
	for range 3 { // ceil(1201 / 1000) blocks examine every pending job once
		c.block(nil)
	}
	a := c.agreement(agr)
	if a.Delivered != 1 || a.Drawn != coin.Unit {
		t.Fatalf("the late job is not delivered under the agreement after %d running ones: %+v", running, a)
	}
	v, err = c.query("/api/v1/market/jobs/{id}", req{path: map[string]string{"id": hex.EncodeToString(late)}})
	if err != nil || v.(market.JobBinding).Pending {
		t.Fatalf("the late job's binding: %+v %v", v, err)
	}
	// The running ones are still pending and examined in turn.
	v, err = c.query("/api/v1/market/jobs/{id}", req{path: map[string]string{"id": hex.EncodeToString(jobID(running))}})
	if err != nil || !v.(market.JobBinding).Pending {
		t.Fatalf("a running job's binding: %+v %v", v, err)
	}
}

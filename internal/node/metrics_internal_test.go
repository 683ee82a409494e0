package node

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Failing transactions may carry any message type; only types that have
// succeeded get their own label, so junk cannot grow the label set.
func TestTxMetricsKeepLabelsBounded(t *testing.T) {
	m := newAppMetrics()
	cs, code, _ := errs.ABCI(tx.ErrUnknownMsg)
	name := errs.Lookup(cs, code).Name
	m.BlockCommitted(1, []app.TxOutcome{
		{Type: "junk/aaa", Codespace: cs, Code: code},
		{Type: "junk/bbb", Codespace: cs, Code: code},
		{Type: "bank/send", Codespace: cs, Code: code}, // before any success: other
		{Type: "bank/send"},
		{Type: "", Codespace: cs, Code: code},
	})
	m.BlockCommitted(2, []app.TxOutcome{{Type: "bank/send", Codespace: cs, Code: code}, {Type: "bank/send", Codespace: "nowhere", Code: 999}})
	for _, c := range []struct {
		typ, result string
		want        float64
	}{
		{TypeOther, name, 3},
		{"bank/send", ResultOK, 1},
		{"bank/send", name, 1},
		{"bank/send", ResultUnregistered, 1},
		{TypeUndecodable, name, 1},
	} {
		if got := testutil.ToFloat64(m.txs.WithLabelValues(c.typ, c.result)); got != c.want {
			t.Errorf("txs{type=%q,result=%q} = %v, want %v", c.typ, c.result, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.txs); n != 5 {
		t.Errorf("%d label sets, want 5", n)
	}
}

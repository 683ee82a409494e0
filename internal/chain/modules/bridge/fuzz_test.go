package bridge_test

import (
	"testing"

	"github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// FuzzDescribeAndParse: message bodies and outpoints from anyone decode
// or fail, never panic.
func FuzzDescribeAndParse(f *testing.F) {
	for _, m := range []tx.Msg{bridge.NewAddressMsg(), bridge.NewAttestMsg(h32(1), 2, "bcrt1q", 3, h32(4), 5),
		bridge.NewWithdrawMsg("bcrt1q", 10_000), bridge.NewPaidMsg(1, h32(2)), bridge.NewHaltMsg("why")} {
		f.Add(m.Type, []byte(m.Body), "00:1")
	}
	k := bridge.NewKeeper(nil)
	f.Fuzz(func(t *testing.T, typ string, body []byte, outpoint string) {
		_, _ = k.Describe(tx.Msg{Type: typ, Body: body})
		_, _, _ = bridge.ParseOutpoint(outpoint)
	})
}

package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/modules/staking"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// TestMsgFromJSON: a proposal's JSON builds exactly the message the
// module's own builder makes; an unknown type, field or missing address is
// refused before anything is sent.
func TestMsgFromJSON(t *testing.T) {
	op := address.Module("someone")
	same := func(name string, got tx.Msg, err error, want tx.Msg) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Type != want.Type || !bytes.Equal(got.Body, want.Body) {
			t.Errorf("%s: built %s %x, want %s %x", name, got.Type, got.Body, want.Type, want.Body)
		}
	}
	m, err := msgFromJSON(proposalMsg{Type: "staking/stake", Body: json.RawMessage(`{"operator":"` + op.String() + `","amount":"5.5"}`)})
	same("stake", m, err, staking.NewStakeMsg(op, 5*coin.Unit+coin.Unit/2))
	m, err = msgFromJSON(proposalMsg{Type: "market/create", Body: json.RawMessage(`{"service_id":"svc-x","name":"n","type":"ai-inference","price":"2","parameters":{"z":"1","a":"2"}}`)})
	same("listing", m, err, market.NewCreateMsg(market.ListingSpec{ID: "svc-x", Name: "n", Type: "ai-inference", Price: 2 * coin.Unit,
		Params: []market.Param{{Key: "a", Value: "2"}, {Key: "z", Value: "1"}}}))
	m, err = msgFromJSON(proposalMsg{Type: "market/accept", Body: json.RawMessage(`{"id":"bid-3"}`)})
	same("accept", m, err, market.NewAcceptMsg("bid-3"))
	raw := staking.NewCommissionMsg(700)
	m, err = msgFromJSON(proposalMsg{Type: raw.Type, CBOR: hex.EncodeToString(raw.Body)})
	same("cbor", m, err, raw)

	for _, c := range []struct {
		p    proposalMsg
		want string
	}{
		{proposalMsg{}, "no type"},
		{proposalMsg{Type: "exchange/order", Body: json.RawMessage(`{}`)}, `no JSON form for type "exchange/order"`},
		{proposalMsg{Type: "staking/stake", Body: json.RawMessage(`{"operater":"x","amount":"1"}`)}, "unknown field"},
		{proposalMsg{Type: "staking/stake", Body: json.RawMessage(`{"amount":"1"}`)}, `"operator" (an aitbc1 address) is required`},
		{proposalMsg{Type: "bank/send", Body: json.RawMessage(`{"to":"aitbc1nope","amount":"1"}`)}, "bank/send body"},
		{proposalMsg{Type: "bank/send", Body: json.RawMessage(`{"to":"` + op.String() + `","amount":"-1"}`)}, "bank/send body"},
		{proposalMsg{Type: "bank/send", Body: json.RawMessage(`{}`), CBOR: "00"}, "not both"},
		{proposalMsg{Type: "bank/send", CBOR: "zz"}, "cbor"},
	} {
		_, err := msgFromJSON(c.p)
		if !errors.Is(err, ErrMsgJSON) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.p, err, c.want)
		}
	}
}

package agents_test

import (
	"bytes"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// FuzzRegisterAndRecordDecode: registrations and records, v1 or v2, either
// fail to decode or re-encode to the same bytes; checking never panics.
func FuzzRegisterAndRecordDecode(f *testing.F) {
	f.Add([]byte(agents.NewRegisterMsg("a", hashA, []string{"inference"}, &agents.Span{Model: "m", First: 0, Last: 1}).Body))
	f.Add([]byte(agents.NewRegisterSpansMsg("a", hashA, []string{"span"}, "http://h:1", []agents.Span{{Model: "m", First: 0, Last: 1}, {Model: "m", First: 2, Last: 3}}).Body))
	a1 := addr(1)
	rec, _ := tx.Marshal(agents.Agent{Address: a1[:], Name: "a", ModelHash: hashA, Caps: []string{"x"}, Endpoint: "https://x"})
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m agents.MsgRegister
		if err := tx.Unmarshal(b, &m); err == nil {
			if re, err := tx.Marshal(m); err != nil || !bytes.Equal(re, b) {
				t.Fatalf("registration round trip: %v", err)
			}
			_ = m.Check()
		}
		var a agents.Agent
		if err := tx.Unmarshal(b, &a); err == nil {
			if re, err := tx.Marshal(a); err != nil || !bytes.Equal(re, b) {
				t.Fatalf("record round trip: %v", err)
			}
			_ = a.Spans()
			_ = a.Serves("m", 0, 1)
		}
	})
}

package agents_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// A span server registers its endpoint and several spans under one key;
// the record shows them, the list filters by any span's model, and the
// record survives export and import.
func TestEndpointAndSeveralSpans(t *testing.T) {
	w := newWorld(t, "")
	spans := []agents.Span{{Model: "tolstoy-1m", First: 0, Last: 1}, {Model: "tolstoy-1m", First: 3, Last: 3}, {Model: "other", First: 0, Last: 0}}
	msg := agents.NewRegisterSpansMsg("span-a", hashA, []string{"inference", "span"}, "http://10.0.0.5:8031", spans)
	if err := w.exec(addr(1), msg); err != nil {
		t.Fatal(err)
	}
	v := w.show(addr(1))
	if v.Endpoint != "http://10.0.0.5:8031" || len(v.Spans) != 3 || v.Spans[1].First != 3 || v.Span == nil || v.Span.Last != 1 {
		t.Fatalf("record: %+v", v)
	}
	if l := w.list(req{"model": "other"}); len(l.Agents) != 1 {
		t.Fatalf("filter by the third span's model: %+v", l)
	}
	raw, err := w.k.ExportGenesis(w.kv)
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := state.OpenInMemory()
	w2 := &world{t: t, k: agents.NewKeeper(), h: w.h, kv: state.NewCache(st2)}
	if err := w2.k.ImportGenesis(&module.Context{KV: w2.kv}, raw); err != nil {
		t.Fatal(err)
	}
	if v2 := w2.show(addr(1)); v2.Endpoint != v.Endpoint || len(v2.Spans) != 3 {
		t.Fatalf("imported: %+v", v2)
	}
	// A plain re-registration clears the endpoint and the extra spans.
	if err := w.exec(addr(1), agents.NewRegisterMsg("span-a", hashA, []string{"inference"}, &spans[0])); err != nil {
		t.Fatal(err)
	}
	if v := w.show(addr(1)); v.Endpoint != "" || len(v.Spans) != 1 {
		t.Fatalf("after a v1 registration: %+v", v)
	}
}

// Registrations and records without the new fields keep the bytes they
// always had (the v1 array), so old transactions replay and old state
// reads; a v2 array holding neither field is refused as non-canonical.
func TestOldEncodingsStayDecodable(t *testing.T) {
	old := agents.NewRegisterMsg("a", hashA, []string{"inference"}, &agents.Span{Model: "m", First: 0, Last: 1})
	if old.Body[0] != 0x84 {
		t.Fatalf("a registration without endpoint is not the 4-element array: % x", old.Body[:1])
	}
	var m agents.MsgRegister
	if err := old.DecodeBody(&m); err != nil || m.Span == nil || m.Endpoint != "" {
		t.Fatalf("decode v1: %+v %v", m, err)
	}
	nu := agents.NewRegisterSpansMsg("a", hashA, []string{"inference"}, "https://x.example", []agents.Span{{Model: "m", First: 0, Last: 1}})
	if nu.Body[0] != 0x86 {
		t.Fatalf("v2 registration: % x", nu.Body[:2])
	}
	if err := nu.DecodeBody(&m); err != nil || m.Endpoint != "https://x.example" {
		t.Fatalf("decode v2: %+v %v", m, err)
	}
	empty := append([]byte{0x86}, old.Body[1:]...)
	empty = append(empty, 0x60, 0xf6) // "" and null
	if err := (tx.Msg{Type: agents.TypeRegister, Body: empty}).DecodeBody(&m); err == nil {
		t.Fatal("an empty v2 registration decoded")
	}
	a1 := addr(1)
	b, err := tx.Marshal(agents.Agent{Address: a1[:], Name: "a", ModelHash: hashA, Caps: []string{"x"}})
	if err != nil || b[0] != 0x89 {
		t.Fatalf("record without endpoint: % x %v", b[:1], err)
	}
}

func TestEndpointAndSpansRefused(t *testing.T) {
	w := newWorld(t, "")
	caps := []string{"inference", "span"}
	one := []agents.Span{{Model: "m", First: 0, Last: 1}}
	for _, c := range []struct {
		endpoint string
		spans    []agents.Span
		want     error
	}{
		{"ftp://h:1", one, agents.ErrEndpoint},
		{"http://", one, agents.ErrEndpoint},
		{"127.0.0.1:8031", one, agents.ErrEndpoint},
		{"http://u:p@h:1", one, agents.ErrEndpoint},
		{"http://h:1/?q=1", one, agents.ErrEndpoint},
		{"http://h/" + strings.Repeat("a", 250), one, agents.ErrEndpoint},
		{"http://h:1", []agents.Span{{Model: "m", First: 0, Last: 2}, {Model: "m", First: 2, Last: 3}}, agents.ErrSpan},
		{"http://h:1", make([]agents.Span, 9), agents.ErrSpan},
		{"http://h:1", []agents.Span{{Model: "m", First: 0, Last: 1}, {Model: "m", First: 5, Last: 4}}, agents.ErrSpan},
	} {
		if err := w.exec(addr(1), agents.NewRegisterSpansMsg("a", hashA, caps, c.endpoint, c.spans)); !errors.Is(err, c.want) {
			t.Errorf("%q %v: got %v, want %v", c.endpoint, c.spans, err, c.want)
		}
	}
	if l := w.list(req{}); len(l.Agents) != 0 {
		t.Fatalf("refusals registered %+v", l)
	}
}

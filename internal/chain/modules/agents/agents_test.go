package agents_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

func addr(i byte) address.Address {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = i
	return address.FromPubKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

const hashA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

type world struct {
	t  *testing.T
	kv *state.Cache
	k  *agents.Keeper
	h  int64
}

func newWorld(t *testing.T, genesis string) *world {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, kv: state.NewCache(st), k: agents.NewKeeper(), h: 1}
	var raw []byte
	if genesis != "" {
		raw = []byte(genesis)
	}
	if err := w.k.InitGenesis(&module.Context{KV: w.kv, Height: 0}, raw); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) exec(signer address.Address, msg tx.Msg) error {
	kv := w.kv.Child()
	err := w.k.Exec(&module.Context{KV: kv, Height: w.h, Signer: signer}, msg)
	if err == nil {
		kv.Write()
	} else if kv.Len() != 0 {
		w.t.Errorf("%s refused (%v) but wrote %d keys", msg.Type, err, kv.Len())
	}
	return err
}

type req map[string]string

func (r req) PathValue(n string) string { return r[n] }
func (r req) Param(n string) string     { return r[n] }

func (w *world) route(path string, in req) (any, error) {
	for _, r := range w.k.Routes() {
		if r.Path == path {
			return r.Handle(module.Query{State: w.kv, Height: w.h}, in)
		}
	}
	w.t.Fatalf("no route %s", path)
	return nil, nil
}

func (w *world) show(a address.Address) agents.View {
	w.t.Helper()
	v, err := w.route("/api/v1/agents/{id}", req{"id": a.String()})
	if err != nil {
		w.t.Fatal(err)
	}
	return v.(agents.View)
}

func (w *world) list(in req) agents.ListView {
	w.t.Helper()
	v, err := w.route("/api/v1/agents", in)
	if err != nil {
		w.t.Fatal(err)
	}
	return v.(agents.ListView)
}

// TestRegisterHeartbeatActiveWindow: a registered agent is active until
// its last heartbeat is more than the window (10 blocks here) old; a
// heartbeat makes it active again.
func TestRegisterHeartbeatActiveWindow(t *testing.T) {
	w := newWorld(t, `{"active_window_blocks": 10}`)
	a := addr(1)
	span := &agents.Span{Model: "tolstoy-1m", First: 0, Last: 1}
	w.h = 5
	if err := w.exec(a, agents.NewRegisterMsg("node A", hashA, []string{"inference", "span"}, span)); err != nil {
		t.Fatal(err)
	}
	v := w.show(a)
	if v.Name != "node A" || v.ModelHash != hashA || v.Span == nil || v.Span.Model != "tolstoy-1m" || v.Span.Last != 1 ||
		!v.Active || v.Created != 5 || v.Heartbeat != 5 || v.ActiveWindow != 10 {
		t.Fatalf("after register: %+v", v)
	}
	w.h = 15 // 10 blocks: still inside the window
	if !w.show(a).Active {
		t.Fatal("inactive at the window's edge")
	}
	w.h = 16
	if v := w.show(a); v.Active {
		t.Fatalf("active 11 blocks after its last heartbeat: %+v", v)
	}
	if l := w.list(req{"active": "true"}); len(l.Agents) != 0 {
		t.Fatalf("active list shows an inactive agent: %+v", l)
	}
	if l := w.list(req{}); len(l.Agents) != 1 || l.Agents[0].Active {
		t.Fatalf("full list: %+v", l)
	}
	if err := w.exec(a, agents.NewHeartbeatMsg()); err != nil {
		t.Fatal(err)
	}
	if v := w.show(a); !v.Active || v.Heartbeat != 16 || v.Created != 5 {
		t.Fatalf("after heartbeat: %+v", v)
	}
	// Updating keeps the registration height.
	w.h = 20
	if err := w.exec(a, agents.NewRegisterMsg("node A2", hashA, []string{"inference"}, nil)); err != nil {
		t.Fatal(err)
	}
	if v := w.show(a); v.Name != "node A2" || v.Span != nil || v.Created != 5 || v.Updated != 20 {
		t.Fatalf("after update: %+v", v)
	}
	if err := w.exec(a, agents.NewDeregisterMsg()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.route("/api/v1/agents/{id}", req{"id": a.String()}); !errors.Is(err, agents.ErrNotFound) {
		t.Fatalf("after deregister: %v", err)
	}
}

// TestRefusals: every bad message is a specific error and writes nothing
// (exec checks the writes).
func TestRefusals(t *testing.T) {
	w := newWorld(t, "")
	a := addr(1)
	caps := []string{"inference"}
	for _, c := range []struct {
		msg  tx.Msg
		want error
	}{
		{agents.NewRegisterMsg("", hashA, caps, nil), agents.ErrName},
		{agents.NewRegisterMsg(strings.Repeat("n", 65), hashA, caps, nil), agents.ErrName},
		{agents.NewRegisterMsg("bad\nname", hashA, caps, nil), agents.ErrName},
		{agents.NewRegisterMsg("a", "abc", caps, nil), agents.ErrModelHash},
		{agents.NewRegisterMsg("a", strings.ToUpper(hashA), caps, nil), agents.ErrModelHash},
		{agents.NewRegisterMsg("a", hashA, nil, nil), agents.ErrCapabilities},
		{agents.NewRegisterMsg("a", hashA, []string{"x", "x"}, nil), agents.ErrCapabilities},
		{agents.NewRegisterMsg("a", hashA, make([]string, 17), nil), agents.ErrCapabilities},
		{agents.NewRegisterMsg("a", hashA, []string{"Big"}, nil), agents.ErrCapabilities},
		{agents.NewRegisterMsg("a", hashA, caps, &agents.Span{Model: "m", First: 3, Last: 2}), agents.ErrSpan},
		{agents.NewRegisterMsg("a", hashA, caps, &agents.Span{Model: "m", First: -1, Last: 2}), agents.ErrSpan},
		{agents.NewRegisterMsg("a", hashA, caps, &agents.Span{Model: "m", First: 0, Last: 4096}), agents.ErrSpan},
		{agents.NewRegisterMsg("a", hashA, caps, &agents.Span{Model: "", First: 0, Last: 1}), agents.ErrSpan},
		{agents.NewHeartbeatMsg(), agents.ErrNotFound},
		{agents.NewDeregisterMsg(), agents.ErrNotFound},
		{agents.NewMetricsMsg(a, agents.Metrics{Epoch: 1, Reports: 1}), agents.ErrNotOracle},
	} {
		if err := w.exec(a, c.msg); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.msg.Type, err, c.want)
		}
	}
	if l := w.list(req{}); len(l.Agents) != 0 {
		t.Fatalf("refusals registered %+v", l)
	}
	for _, in := range []req{{"limit": "0"}, {"limit": "501"}, {"active": "yes"}, {"capability": "A B"}} {
		if _, err := w.route("/api/v1/agents", in); !errors.Is(err, agents.ErrFilter) {
			t.Errorf("filter %v: %v", in, err)
		}
	}
	if _, err := w.route("/api/v1/agents/{id}", req{"id": "nope"}); !errors.Is(err, agents.ErrAddress) {
		t.Errorf("bad id: %v", err)
	}
}

// TestListFilters: by span model, by model hash, by capability, limit.
func TestListFilters(t *testing.T) {
	w := newWorld(t, "")
	hashB := strings.Repeat("b", 64)
	regs := []tx.Msg{
		agents.NewRegisterMsg("a", hashA, []string{"inference", "span"}, &agents.Span{Model: "tolstoy-1m", First: 0, Last: 1}),
		agents.NewRegisterMsg("b", hashA, []string{"inference", "span"}, &agents.Span{Model: "tolstoy-1m", First: 2, Last: 3}),
		agents.NewRegisterMsg("c", hashB, []string{"training"}, nil),
	}
	for i, m := range regs {
		if err := w.exec(addr(byte(i+1)), m); err != nil {
			t.Fatal(err)
		}
	}
	count := func(in req) int { return len(w.list(in).Agents) }
	if n := count(req{"model": "tolstoy-1m"}); n != 2 {
		t.Errorf("model tolstoy-1m: %d", n)
	}
	if n := count(req{"model": hashB}); n != 1 {
		t.Errorf("model hash B: %d", n)
	}
	if n := count(req{"capability": "span"}); n != 2 {
		t.Errorf("capability span: %d", n)
	}
	if n := count(req{"capability": "training", "model": "tolstoy-1m"}); n != 0 {
		t.Errorf("training on tolstoy: %d", n)
	}
	if l := w.list(req{"limit": "2"}); len(l.Agents) != 2 || !l.More {
		t.Errorf("limit 2: %d more=%v", len(l.Agents), l.More)
	}
}

// TestMetricsFromOracleOnly: the oracle named in genesis commits an
// agent's epoch aggregate; epochs must increase; other keys are refused.
func TestMetricsFromOracleOnly(t *testing.T) {
	oracle := addr(9)
	w := newWorld(t, `{"oracles": ["`+oracle.String()+`"]}`)
	a := addr(1)
	met := agents.Metrics{Epoch: 3, Reports: 4, ProcessedTokens: 1000, TasksCompleted: 7, AvgLatencyMs: 12, UptimeSeconds: 600}
	if err := w.exec(oracle, agents.NewMetricsMsg(a, met)); !errors.Is(err, agents.ErrNotFound) {
		t.Fatalf("metrics of an unregistered agent: %v", err)
	}
	if err := w.exec(a, agents.NewRegisterMsg("a", hashA, []string{"inference"}, nil)); err != nil {
		t.Fatal(err)
	}
	if err := w.exec(a, agents.NewMetricsMsg(a, met)); !errors.Is(err, agents.ErrNotOracle) {
		t.Fatalf("agent's own metrics: %v", err)
	}
	if err := w.exec(oracle, agents.NewMetricsMsg(a, agents.Metrics{Epoch: 3})); !errors.Is(err, agents.ErrMetrics) {
		t.Fatalf("no reports: %v", err)
	}
	if err := w.exec(oracle, agents.NewMetricsMsg(a, met)); err != nil {
		t.Fatal(err)
	}
	if v := w.show(a); v.Metrics == nil || *v.Metrics != met {
		t.Fatalf("committed metrics: %+v", v.Metrics)
	}
	if err := w.exec(oracle, agents.NewMetricsMsg(a, met)); !errors.Is(err, agents.ErrEpoch) {
		t.Fatalf("same epoch again: %v", err)
	}
	b, _ := json.Marshal(w.show(a))
	if !strings.Contains(string(b), `"processed_tokens":1000`) {
		t.Fatalf("JSON: %s", b)
	}
}

// TestGenesisParamsAndExport: bad parameters are refused; export and
// import carry every agent.
func TestGenesisParamsAndExport(t *testing.T) {
	st, _ := state.OpenInMemory()
	k := agents.NewKeeper()
	for _, g := range []string{`{"active_window_blocks": 0}`, `{"oracles": ["nope"]}`} {
		if err := k.InitGenesis(&module.Context{KV: state.NewCache(st)}, []byte(g)); !errors.Is(err, agents.ErrParams) {
			t.Errorf("genesis %s: %v", g, err)
		}
	}
	w := newWorld(t, `{"active_window_blocks": 7}`)
	if err := w.exec(addr(1), agents.NewRegisterMsg("a", hashA, []string{"inference"}, nil)); err != nil {
		t.Fatal(err)
	}
	raw, err := w.k.ExportGenesis(w.kv)
	if err != nil {
		t.Fatal(err)
	}
	w2 := &world{t: t, k: agents.NewKeeper(), h: w.h}
	st2, _ := state.OpenInMemory()
	w2.kv = state.NewCache(st2)
	if err := w2.k.ImportGenesis(&module.Context{KV: w2.kv}, raw); err != nil {
		t.Fatal(err)
	}
	if v := w2.show(addr(1)); v.Name != "a" || v.ActiveWindow != 7 {
		t.Fatalf("imported: %+v", v)
	}
}

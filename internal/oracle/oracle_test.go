package oracle_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/oracle"
	"github.com/aitbc/aitbc/internal/oracle/report"
)

const chainID = "aitbc-test"

type key struct{ priv ed25519.PrivateKey }

func newKey(i byte) key {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = i
	return key{ed25519.NewKeyFromSeed(seed)}
}
func (k key) Sign(m []byte) []byte         { return ed25519.Sign(k.priv, m) }
func (k key) PublicKey() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }
func (k key) Addr() address.Address        { return address.FromPubKey(k.PublicKey()) }

// chain is the agents module on real state: the oracle's node. Its GetJSON
// answers as the node's REST server does, through the module's routes.
type chain struct {
	t  *testing.T
	k  *agents.Keeper
	kv *state.Cache
	h  int64
}

func newChain(t *testing.T, oracleAddr address.Address) *chain {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	c := &chain{t: t, k: agents.NewKeeper(), kv: state.NewCache(st), h: 1}
	if err := c.k.InitGenesis(&module.Context{KV: c.kv}, []byte(`{"oracles":["`+oracleAddr.String()+`"]}`)); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *chain) exec(signer address.Address, msg tx.Msg) error {
	kv := c.kv.Child()
	err := c.k.Exec(&module.Context{KV: kv, Height: c.h, Signer: signer}, msg)
	if err == nil {
		kv.Write()
	}
	c.h++
	return err
}

func (c *chain) GetJSON(_ context.Context, path string, out any) error {
	id, ok := strings.CutPrefix(path, "/api/v1/agents/")
	if !ok {
		c.t.Fatalf("unexpected node path %s", path)
	}
	var route module.Route
	for _, r := range c.k.Routes() {
		if r.Path == "/api/v1/agents/{id}" {
			route = r
		}
	}
	v, err := route.Handle(module.Query{State: c.kv, Height: c.h}, pathReq{id})
	if err != nil {
		var e *errs.Error
		if errors.As(err, &e) {
			return &httpx.APIError{Status: 404, Code: e.Name, Message: err.Error()}
		}
		return err
	}
	b, _ := json.Marshal(v)
	return json.Unmarshal(b, out)
}

type pathReq struct{ id string }

func (p pathReq) PathValue(string) string { return p.id }
func (pathReq) Param(string) string       { return "" }

type env struct {
	t      *testing.T
	chain  *chain
	store  *oracle.Store
	o      *oracle.Oracle
	srv    *httptest.Server
	now    time.Time
	oracle key
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, oracle: newKey(99), now: time.Unix(1_800_000_000, 0)}
	e.chain = newChain(t, e.oracle.Addr())
	st, err := oracle.OpenStore(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	submit := func(_ context.Context, msg tx.Msg) (string, error) {
		if err := e.chain.exec(e.oracle.Addr(), msg); err != nil {
			var ce *errs.Error
			if errors.As(err, &ce) {
				return "", &httpx.APIError{Status: 400, Code: ce.Name, Message: err.Error()}
			}
			return "", err
		}
		return "tx", nil
	}
	e.o = oracle.New(oracle.Config{ChainID: chainID, Epoch: time.Minute, Now: func() time.Time { return e.now }}, st, e.chain, submit)
	e.srv = httptest.NewServer(e.o.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) register(k key) {
	e.t.Helper()
	if err := e.chain.exec(k.Addr(), agents.NewRegisterMsg("node", strings.Repeat("a", 64), []string{"inference"}, nil)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) payload(k key) report.Payload {
	return report.Payload{Agent: k.Addr().String(), ProcessedTokens: 120, AvgLatencyMs: 35.5, UptimeSeconds: 600, TasksCompleted: 3, Timestamp: e.now.Unix()}
}

// post sends a raw body and returns the status and error code.
func (e *env) post(body []byte) (int, string) {
	resp, err := http.Post(e.srv.URL+"/api/v1/report", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb httpx.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb.Error.Code
}

func (e *env) signed(k key, p report.Payload) []byte {
	r, err := report.Sign(k, chainID, p)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	return b
}

// rawSigned signs an arbitrary payload object (a missing or extra field).
func (e *env) rawSigned(k key, payload string) []byte {
	r := report.Request{Payload: json.RawMessage(payload), PublicKey: hexOf(k.PublicKey()), Signature: hexOf(k.Sign(report.SignedBytes(chainID, []byte(payload))))}
	b, _ := json.Marshal(r)
	return b
}

func hexOf(b []byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, d[c>>4], d[c&15])
	}
	return string(out)
}

func (e *env) count() int64 {
	n, err := e.store.Count(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) metrics(a address.Address) oracle.MetricsView {
	e.t.Helper()
	var v oracle.MetricsView
	if err := httpx.Do(context.Background(), http.DefaultClient, "GET", e.srv.URL+"/api/v1/agents/"+a.String()+"/metrics", nil, nil, &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

// TestReportAcceptedAndAggregated: the seed's flow, with the reporter's
// collector: two tasks, a signed report, stored and aggregated.
func TestReportAcceptedAndAggregated(t *testing.T) {
	e := newEnv(t)
	k := newKey(1)
	e.register(k)
	col := report.NewMetricsCollector(func() time.Time { return e.now })
	col.Task(100, 30*time.Millisecond)
	col.Task(50, 50*time.Millisecond)
	e.now = e.now.Add(20 * time.Second)
	rep := &report.OracleReporter{URL: e.srv.URL, ChainID: chainID, Key: k, Collector: col}
	ack, err := rep.Send(context.Background())
	if err != nil || ack.Status != "success" {
		t.Fatalf("report: %+v %v", ack, err)
	}
	v := e.metrics(k.Addr())
	if v.Total.Reports != 1 || v.Total.ProcessedTokens != 150 || v.Total.TasksCompleted != 2 || v.Total.AvgLatencyMs != 40 || v.Total.UptimeSeconds != 20 {
		t.Fatalf("aggregate: %+v", v.Total)
	}
	// A second report after the interval adds to the sums.
	e.now = e.now.Add(11 * time.Second)
	col.Task(10, 10*time.Millisecond)
	if _, err := rep.Send(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := e.metrics(k.Addr()); v.Total.Reports != 2 || v.Total.ProcessedTokens != 160 || v.Total.TasksCompleted != 3 || v.Total.AvgLatencyMs != 30 {
		t.Fatalf("aggregate of two: %+v", v.Total)
	}
}

// TestAttacks: each bad report is refused with its own code and nothing is
// stored.
func TestAttacks(t *testing.T) {
	e := newEnv(t)
	k, other, stranger := newKey(1), newKey(2), newKey(3)
	e.register(k)
	e.register(other)
	good := e.payload(k)
	okBody := e.signed(k, good)

	tampered := report.Request{}
	_ = json.Unmarshal(okBody, &tampered)
	tampered.Payload = json.RawMessage(strings.Replace(string(tampered.Payload), `"processed_tokens":120`, `"processed_tokens":999999`, 1))
	tamperedBody, _ := json.Marshal(tampered)

	otherChain, _ := report.Sign(k, "another-chain", good)
	otherChainBody, _ := json.Marshal(otherChain)

	ts := good.Timestamp
	cases := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"tampered payload", tamperedBody, 401, "bad_signature"},
		{"signed for another chain", otherChainBody, 401, "bad_signature"},
		{"signed by another agent's key", e.signed(other, good), 401, "agent_key_mismatch"},
		{"missing field", e.rawSigned(k, `{"agent":"`+good.Agent+`","processed_tokens":1,"avg_latency_ms":1,"uptime_seconds":1,"timestamp":`+itoa(ts)+`}`), 400, "malformed_report"},
		{"extra field", e.rawSigned(k, `{"agent":"`+good.Agent+`","processed_tokens":1,"avg_latency_ms":1,"uptime_seconds":1,"tasks_completed":1,"timestamp":`+itoa(ts)+`,"bonus":1}`), 400, "malformed_report"},
		{"negative count", e.rawSigned(k, `{"agent":"`+good.Agent+`","processed_tokens":-1,"avg_latency_ms":1,"uptime_seconds":1,"tasks_completed":1,"timestamp":`+itoa(ts)+`}`), 400, "malformed_report"},
		{"extra top-level field", []byte(strings.Replace(string(okBody), `{`, `{"x":1,`, 1)), 400, "malformed_report"},
		{"not JSON", []byte("agent=me"), 400, "malformed_report"},
		{"too large", []byte(`{"payload":"` + strings.Repeat("a", report.MaxBody) + `"}`), 413, "body_too_large"},
		{"stale timestamp", e.signed(k, withTS(good, ts-120)), 400, "stale_timestamp"},
		{"future timestamp", e.signed(k, withTS(good, ts+120)), 400, "stale_timestamp"},
		{"unregistered agent", e.signed(stranger, e.payload(stranger)), 403, "agent_not_registered"},
	}
	for _, c := range cases {
		if st, code := e.post(c.body); st != c.status || code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, st, code, c.status, c.code)
		}
	}
	if n := e.count(); n != 0 {
		t.Fatalf("refused reports stored: %d", n)
	}

	// One good report; then a replay of it, an older timestamp, and one
	// too soon.
	if st, code := e.post(okBody); st != 200 {
		t.Fatalf("good report: %d %s", st, code)
	}
	e.now = e.now.Add(30 * time.Second)
	if st, code := e.post(okBody); st != 409 || code != "replayed_timestamp" {
		t.Errorf("replay: %d %s", st, code)
	}
	if st, code := e.post(e.signed(k, withTS(good, ts-1))); st != 409 || code != "replayed_timestamp" {
		t.Errorf("older timestamp: %d %s", st, code)
	}
	if st, code := e.post(e.signed(k, withTS(good, ts+30))); st != 200 {
		t.Fatalf("next report: %d %s", st, code)
	}
	e.now = e.now.Add(5 * time.Second)
	if st, code := e.post(e.signed(k, withTS(good, ts+35))); st != 429 || code != "rate_limited" {
		t.Errorf("too often: %d %s", st, code)
	}
	if n := e.count(); n != 2 {
		t.Fatalf("stored %d reports, want the 2 good ones", n)
	}
}

func withTS(p report.Payload, ts int64) report.Payload { p.Timestamp = ts; return p }

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestEpochCommittedOnChain: once an epoch ends, its aggregate is an
// agents/metrics transaction the chain accepts from the oracle's key; the
// agent's record shows it; nothing is committed twice.
func TestEpochCommittedOnChain(t *testing.T) {
	e := newEnv(t)
	k := newKey(1)
	e.register(k)
	e.now = time.Unix(1_800_000_000/60*60, 0) // an epoch's start
	for i, p := range []report.Payload{
		{ProcessedTokens: 100, AvgLatencyMs: 10, UptimeSeconds: 60, TasksCompleted: 1},
		{ProcessedTokens: 300, AvgLatencyMs: 30, UptimeSeconds: 80, TasksCompleted: 3},
	} {
		p.Agent, p.Timestamp = k.Addr().String(), e.now.Unix()
		if st, code := e.post(e.signed(k, p)); st != 200 {
			t.Fatalf("report %d: %d %s", i, st, code)
		}
		e.now = e.now.Add(20 * time.Second)
	}
	ctx := context.Background()
	if n, err := e.o.CommitFinished(ctx); err != nil || n != 0 {
		t.Fatalf("committed %d (%v) before the epoch ended", n, err)
	}
	e.now = e.now.Add(30 * time.Second) // the next epoch
	if n, err := e.o.CommitFinished(ctx); err != nil || n != 1 {
		t.Fatalf("commit: %d %v", n, err)
	}
	var v agents.View
	if err := e.chain.GetJSON(ctx, "/api/v1/agents/"+k.Addr().String(), &v); err != nil {
		t.Fatal(err)
	}
	want := agents.Metrics{Epoch: uint64(e.o.EpochOf(e.now.Unix()) - 1), Reports: 2, ProcessedTokens: 400, TasksCompleted: 4, AvgLatencyMs: 25, UptimeSeconds: 80}
	if v.Metrics == nil || *v.Metrics != want {
		t.Fatalf("on chain: %+v, want %+v", v.Metrics, want)
	}
	if n, err := e.o.CommitFinished(ctx); err != nil || n != 0 {
		t.Fatalf("committed again: %d %v", n, err)
	}
	if mv := e.metrics(k.Addr()); len(mv.Commits) != 1 || mv.Commits[0].TxHash != "tx" {
		t.Fatalf("commits: %+v", mv.Commits)
	}
}

// TestSpecMatchesRoutes: docs/api/oracle.openapi.yaml lists exactly the
// oracle's routes, and every error code with its status.
func TestSpecMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../../docs/api/oracle.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec := string(b)
	var inSpec []string
	lines := strings.Split(spec, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "  /") && i+1 < len(lines) {
			inSpec = append(inSpec, strings.ToUpper(strings.TrimSuffix(strings.TrimSpace(lines[i+1]), ":"))+" "+strings.TrimSuffix(strings.TrimSpace(l), ":"))
		}
	}
	slices.Sort(inSpec)
	routes := slices.Clone(oracle.Routes)
	slices.Sort(routes)
	if !slices.Equal(inSpec, routes) {
		t.Errorf("spec %v, server %v", inSpec, routes)
	}
	for code, status := range oracle.Codes() {
		if !strings.Contains(spec, `"`+strconv.Itoa(status)+`": {description: `) || !strings.Contains(spec, code) {
			t.Errorf("code %s (%d) is not in the spec", code, status)
		}
	}
}

// TestCommitByANonOracleIsRecordedOnce: a chain that does not name the
// oracle's key refuses its commit; the epoch is recorded with the reason
// and not sent again.
func TestCommitByANonOracleIsRecordedOnce(t *testing.T) {
	e := newEnv(t)
	e.oracle = newKey(98) // not the key the chain's genesis names
	k := newKey(1)
	e.register(k)
	if st, code := e.post(e.signed(k, e.payload(k))); st != 200 {
		t.Fatalf("report: %d %s", st, code)
	}
	e.now = e.now.Add(2 * time.Minute)
	ctx := context.Background()
	if n, err := e.o.CommitFinished(ctx); err != nil || n != 0 {
		t.Fatalf("commit: %d %v", n, err)
	}
	mv := e.metrics(k.Addr())
	if len(mv.Commits) != 1 || mv.Commits[0].TxHash != "" || !strings.Contains(mv.Commits[0].Error, "oracle") {
		t.Fatalf("commits: %+v", mv.Commits)
	}
	h := e.chain.h
	if n, err := e.o.CommitFinished(ctx); err != nil || n != 0 || e.chain.h != h {
		t.Fatalf("sent again: %d %v", n, err)
	}
}

// TestRetention: a committed epoch's reports are deleted once older than
// the retention, not before.
func TestRetention(t *testing.T) {
	e := newEnv(t)
	k := newKey(1)
	e.register(k)
	if st, code := e.post(e.signed(k, e.payload(k))); st != 200 {
		t.Fatalf("report: %d %s", st, code)
	}
	e.now = e.now.Add(2 * time.Minute)
	ctx := context.Background()
	if n, err := e.o.CommitFinished(ctx); err != nil || n != 1 {
		t.Fatalf("commit: %d %v", n, err)
	}
	if e.count() != 1 {
		t.Fatal("pruned within the retention")
	}
	e.now = e.now.Add(31 * 24 * time.Hour)
	if _, err := e.o.CommitFinished(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(); n != 0 {
		t.Fatalf("%d reports kept past the retention", n)
	}
}

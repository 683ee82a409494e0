package swarm

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/httpx"
)

const model = "tolstoy-1m"

var (
	loadOnce sync.Once
	loaded   *engine.Model
	loadErr  error
)

func tolstoy(t *testing.T) *engine.Model {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = engine.LoadDefault() })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// spanServer starts a span server for layers [first, last) of tolstoy-1m.
func spanServer(t *testing.T, first, last int, cfg ServerConfig) (*Server, *httptest.Server) {
	t.Helper()
	s, err := NewServer([]ServedSpan{{Name: model, Model: tolstoy(t), First: first, Last: last}}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

// reference is the whole model's greedy output on one machine.
func reference(t *testing.T, prompt string, n int) engine.Result {
	t.Helper()
	res, err := tolstoy(t).Generate(context.Background(), engine.GenerateRequest{Prompt: prompt, MaxTokens: n, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tokens) < 10 {
		t.Fatalf("reference made only %d tokens; the test needs a longer generation", len(res.Tokens))
	}
	return res
}

func request(ref engine.Result, n int) GenerateRequest {
	tok := loaded.Tokenizer()
	return GenerateRequest{Model: model, Layers: loaded.Config().Layers, Prompt: ref.PromptTokens, MaxTokens: n, Stop: []int{tok.BOS(), tok.EOS()}}
}

func TestRoutesMatchWholeModel(t *testing.T) {
	const n = 40
	ref := reference(t, "Once upon a time", n)
	for _, tc := range []struct {
		name  string
		spans [][2]int
	}{
		{"whole", [][2]int{{0, 4}}},
		{"halves 0-1 2-3", [][2]int{{0, 2}, {2, 4}}},
		{"0-0 1-2 3-3", [][2]int{{0, 1}, {1, 3}, {3, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var peers StaticPeers
			for i, sp := range tc.spans {
				_, hs := spanServer(t, sp[0], sp[1], ServerConfig{Threads: 1})
				peers = append(peers, Peer{ID: "m" + string(rune('a'+i)), URL: hs.URL, Model: model, First: sp[0], Last: sp[1]})
			}
			p := &Pipeline{Dir: peers}
			var streamed []int
			res, err := p.Generate(context.Background(), request(ref, n), func(id, _ int) error { streamed = append(streamed, id); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Tokens, ref.Tokens) || !slices.Equal(streamed, ref.Tokens) {
				t.Fatalf("route output differs from the whole model:\n got %v\nwant %v", res.Tokens, ref.Tokens)
			}
			if len(res.Route) != len(tc.spans) {
				t.Fatalf("route has %d hops, want %d: %+v", len(res.Route), len(tc.spans), res.Route)
			}
			// Every peer computed its layers for every position.
			positions := uint64(len(ref.PromptTokens) + len(ref.Tokens) - 1)
			for i, sp := range tc.spans {
				if got, want := res.LayerWork[peers[i].ID], positions*uint64(sp[1]-sp[0]); got != want {
					t.Errorf("%s did %d layer-tokens, want %d", peers[i].ID, got, want)
				}
			}
		})
	}
}

func TestFailoverMidGeneration(t *testing.T) {
	const n = 40
	ref := reference(t, "The old man", n)
	for _, tc := range []struct {
		name    string
		spans   [][2]int
		rtts    []time.Duration
		kill    int // index of the server killed mid-generation
		wantHop [][2]int
	}{
		// The middle server dies; the spare serves 1-3, so the new route
		// has other boundaries than the old one.
		{"middle, replaced by a longer span", [][2]int{{0, 1}, {1, 3}, {3, 4}, {1, 4}}, []time.Duration{ms(1), ms(1), ms(1), ms(900)}, 1, [][2]int{{0, 1}, {1, 4}}},
		// The first server dies: the replay starts from the tokens.
		{"first", [][2]int{{0, 2}, {2, 4}, {0, 2}}, []time.Duration{ms(1), ms(1), ms(900)}, 0, [][2]int{{0, 2}, {2, 4}}},
		// The last server dies: the logits come from the spare.
		{"last", [][2]int{{0, 2}, {2, 4}, {2, 4}}, []time.Duration{ms(1), ms(1), ms(900)}, 1, [][2]int{{0, 2}, {2, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var peers StaticPeers
			var servers []*httptest.Server
			for i, sp := range tc.spans {
				_, hs := spanServer(t, sp[0], sp[1], ServerConfig{Threads: 1})
				servers = append(servers, hs)
				peers = append(peers, Peer{ID: "m" + string(rune('a'+i)), URL: hs.URL, Model: model, First: sp[0], Last: sp[1], RTT: tc.rtts[i], LayerRPS: 1000})
			}
			p := &Pipeline{Dir: peers, Bans: NewBans(0, 0)}
			var streamed, positions []int
			res, err := p.Generate(context.Background(), request(ref, n), func(id, pos int) error {
				streamed, positions = append(streamed, id), append(positions, pos)
				if len(streamed) == 7 {
					servers[tc.kill].CloseClientConnections()
					servers[tc.kill].Close()
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(streamed, ref.Tokens) {
				t.Fatalf("stream after failover differs from the whole model:\n got %v\nwant %v", streamed, ref.Tokens)
			}
			for i, pos := range positions {
				if want := len(ref.PromptTokens) + i; pos != want {
					t.Fatalf("token %d at position %d, want %d (gap or duplicate)", i, pos, want)
				}
			}
			if res.Repairs != 1 {
				t.Errorf("%d repairs, want 1", res.Repairs)
			}
			var got [][2]int
			for _, h := range res.Route {
				got = append(got, [2]int{h.First, h.Last})
				if h.Peer.ID == peers[tc.kill].ID {
					t.Errorf("the dead server %s is still in the route", h.Peer.ID)
				}
			}
			if !slices.Equal(got, tc.wantHop) {
				t.Errorf("route after failover %v, want %v", got, tc.wantHop)
			}
			if !p.Bans.Banned(peers[tc.kill].ID) {
				t.Errorf("the dead server is not banned")
			}
		})
	}
}

func TestFailoverWithoutReplacementNamesMissingLayers(t *testing.T) {
	ref := reference(t, "The old man", 30)
	_, a := spanServer(t, 0, 2, ServerConfig{Threads: 1})
	_, b := spanServer(t, 2, 4, ServerConfig{Threads: 1})
	peers := StaticPeers{{ID: "a", URL: a.URL, Model: model, First: 0, Last: 2}, {ID: "b", URL: b.URL, Model: model, First: 2, Last: 4}}
	p := &Pipeline{Dir: peers}
	var streamed []int
	_, err := p.Generate(context.Background(), request(ref, 30), func(id, _ int) error {
		streamed = append(streamed, id)
		if len(streamed) == 3 {
			b.Close()
		}
		return nil
	})
	var me *MissingLayersError
	if !errors.As(err, &me) || !slices.Equal(me.Layers, []int{2, 3}) {
		t.Fatalf("err = %v, want missing layers 2, 3", err)
	}
	if !slices.Equal(streamed, ref.Tokens[:3]) {
		t.Fatalf("streamed %v before the failure, want %v", streamed, ref.Tokens[:3])
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestRouteMinLatency(t *testing.T) {
	fast := func(id string, f, l int, rtt time.Duration) Peer {
		return Peer{ID: id, Model: model, First: f, Last: l, RTT: rtt, LayerRPS: 1000}
	}
	hopsOf := func(h []Hop) (s []string) {
		for _, x := range h {
			s = append(s, x.Peer.ID+":"+string(rune('0'+x.First))+"-"+string(rune('0'+x.Last-1)))
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		peers []Peer
		mode  Mode
		want  []string
	}{
		{"one whole server beats two hops", []Peer{fast("w", 0, 4, ms(10)), fast("a", 0, 2, ms(10)), fast("b", 2, 4, ms(10))}, MinLatency, []string{"w:0-3"}},
		{"two near servers beat a far whole one", []Peer{fast("w", 0, 4, ms(100)), fast("a", 0, 2, ms(10)), fast("b", 2, 4, ms(10))}, MinLatency, []string{"a:0-1", "b:2-3"}},
		{"a slow server is avoided", []Peer{{ID: "slow", Model: model, First: 0, Last: 4, RTT: ms(5), LayerRPS: 10}, fast("a", 0, 2, ms(10)), fast("b", 2, 4, ms(10))}, MinLatency, []string{"a:0-1", "b:2-3"}},
		{"throughput takes the longest span", []Peer{fast("a", 0, 1, ms(1)), fast("b", 1, 4, ms(1)), fast("w", 0, 4, ms(90))}, MaxThroughput, []string{"w:0-3"}},
		{"other models are ignored", []Peer{{ID: "x", Model: "other", First: 0, Last: 4}, fast("a", 0, 4, ms(9))}, MinLatency, []string{"a:0-3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hops, err := Route(model, 0, 4, tc.peers, tc.mode, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := hopsOf(hops); !slices.Equal(got, tc.want) {
				t.Fatalf("route %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRouteEntersASpanMidway(t *testing.T) {
	// A repair routes from the failed hop's first layer: a server whose
	// span starts earlier is entered there.
	hops, err := Route(model, 1, 4, []Peer{{ID: "w", Model: model, First: 0, Last: 4}}, MinLatency, nil)
	if err != nil || len(hops) != 1 || hops[0].First != 1 || hops[0].Last != 4 {
		t.Fatalf("route %+v, %v; want w for layers 1-3", hops, err)
	}
}

func TestRouteMissingLayers(t *testing.T) {
	peers := []Peer{{ID: "a", Model: model, First: 0, Last: 1}, {ID: "b", Model: model, First: 3, Last: 4}, {ID: "c", Model: model, First: 1, Last: 3}}
	_, err := Route(model, 0, 4, peers, MinLatency, func(id string) bool { return id == "c" })
	var me *MissingLayersError
	if !errors.As(err, &me) || !errors.Is(err, ErrMissingLayers) || !slices.Equal(me.Layers, []int{1, 2}) {
		t.Fatalf("err = %v, want layers 1, 2 missing", err)
	}
	if got, want := err.Error(), "swarm: no server for layers 1, 2 of tolstoy-1m"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if _, err := Route(model, 0, 4, peers, MinLatency, nil); err != nil {
		t.Fatalf("unbanned: %v", err)
	}
}

func TestBansDoubleOnRepeatedFailure(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBans(10*time.Second, 60*time.Second)
	b.Now = func() time.Time { return now }
	for i, want := range []time.Duration{10, 20, 40, 60, 60} {
		if got := b.Fail("x"); got != want*time.Second {
			t.Fatalf("failure %d: banned for %v, want %v", i+1, got, want*time.Second)
		}
	}
	if !b.Banned("x") || b.Banned("y") {
		t.Fatal("x must be banned, y not")
	}
	now = now.Add(61 * time.Second)
	if b.Banned("x") {
		t.Fatal("the ban must end")
	}
	b.Succeed("x")
	if got := b.Fail("x"); got != 10*time.Second {
		t.Fatalf("after a success the ban restarts at %v, got %v", 10*time.Second, got)
	}
}

func post(t *testing.T, url string, req ForwardRequest) (ForwardResponse, error) {
	t.Helper()
	var resp ForwardResponse
	err := httpx.Do(context.Background(), nil, http.MethodPost, url+PathForward, nil, req, &resp)
	return resp, err
}

func TestServerRefusesBadInput(t *testing.T) {
	m := tolstoy(t)
	dim := m.Config().Dim
	_, hs := spanServer(t, 2, 4, ServerConfig{Threads: 1, MaxSessions: 2})
	good := func() ForwardRequest {
		return ForwardRequest{Session: "s1", Model: model, First: 2, Last: 4, Pos: 0, Rows: 2, Dim: dim, Hidden: EncodeFloats(make([]float32, 2*dim))}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*ForwardRequest)
		status int
		code   string
	}{
		{"hidden too short", func(r *ForwardRequest) { r.Hidden = EncodeFloats(make([]float32, 2*dim-1)) }, 400, CodeShape},
		{"hidden too long", func(r *ForwardRequest) { r.Hidden = EncodeFloats(make([]float32, 3*dim)) }, 400, CodeShape},
		{"wrong dim", func(r *ForwardRequest) { r.Dim = dim + 1 }, 400, CodeShape},
		{"not base64", func(r *ForwardRequest) { r.Hidden = "!!" }, 400, CodeShape},
		{"tokens to a middle span", func(r *ForwardRequest) { r.Tokens = []int{1, 2} }, 400, CodeShape},
		{"zero rows", func(r *ForwardRequest) { r.Rows = 0 }, 400, CodeShape},
		{"too many rows", func(r *ForwardRequest) { r.Rows = MaxRows + 1 }, 400, CodeShape},
		{"layers not served", func(r *ForwardRequest) { r.First = 1 }, 404, CodeSpanNotServed},
		{"unknown model", func(r *ForwardRequest) { r.Model = "nope" }, 404, CodeUnknownModel},
		{"empty range", func(r *ForwardRequest) { r.Last = 2 }, 400, CodeInvalid},
		{"no session id", func(r *ForwardRequest) { r.Session = "" }, 400, CodeInvalid},
		{"new session not at 0", func(r *ForwardRequest) { r.Pos = 3 }, 409, CodePosition},
		{"past the context", func(r *ForwardRequest) { r.Pos = m.Config().SeqLen - 1 }, 400, CodePosition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := good()
			tc.mutate(&req)
			_, err := post(t, hs.URL, req)
			var ae *httpx.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
				t.Fatalf("err = %v, want %d %s", err, tc.status, tc.code)
			}
		})
	}
	// A bad token id after good ones: refused before any row runs.
	_, first := spanServer(t, 0, 2, ServerConfig{Threads: 1})
	if _, err := post(t, first.URL, ForwardRequest{Session: "t", Model: model, First: 0, Last: 2, Rows: 2, Tokens: []int{1, m.Config().VocabSize}}); !httpx.IsCode(err, CodeInvalid) {
		t.Fatalf("token out of the vocabulary: %v", err)
	}
	var firstInfo Info
	if err := httpx.Do(context.Background(), nil, http.MethodGet, first.URL+PathInfo, nil, nil, &firstInfo); err != nil || firstInfo.Sessions != 0 || firstInfo.TokensProcessed != 0 {
		t.Fatalf("a refused token left %+v (%v)", firstInfo, err)
	}
	// Nothing was kept from the refused requests.
	var info Info
	if err := httpx.Do(context.Background(), nil, http.MethodGet, hs.URL+PathInfo, nil, nil, &info); err != nil {
		t.Fatal(err)
	}
	if info.Sessions != 0 || info.TokensProcessed != 0 {
		t.Fatalf("refused requests left %d sessions, %d tokens", info.Sessions, info.TokensProcessed)
	}

	// A session keeps its range and its order of positions.
	if _, err := post(t, hs.URL, good()); err != nil {
		t.Fatal(err)
	}
	other := good()
	other.First = 3
	if _, err := post(t, hs.URL, other); !httpx.IsCode(err, CodeSpanMismatch) {
		t.Fatalf("other range in the same session: %v", err)
	}
	gap := good()
	gap.Pos = 3
	if _, err := post(t, hs.URL, gap); !httpx.IsCode(err, CodePosition) {
		t.Fatalf("position gap: %v", err)
	}
	resp, err := post(t, hs.URL, func() ForwardRequest {
		r := good()
		r.Pos = 2
		r.Rows = 1
		r.Hidden = EncodeFloats(make([]float32, dim))
		return r
	}())
	if err != nil || resp.Vocab != m.Config().VocabSize || resp.Hidden != "" {
		t.Fatalf("last span answers logits: %+v, %v", resp, err)
	}
}

func TestServerSessionLimits(t *testing.T) {
	m := tolstoy(t)
	c := m.Config()
	perSession := int64(2*2) * int64(c.SeqLen) * int64(c.KVDim()) * 4
	s, hs := spanServer(t, 0, 2, ServerConfig{Threads: 1, MaxSessions: 2, MaxCacheBytes: 3 * perSession, IdleTimeout: time.Minute})
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	open := func(id string) error {
		_, err := post(t, hs.URL, ForwardRequest{Session: id, Model: model, First: 0, Last: 2, Rows: 1, Tokens: []int{1}})
		return err
	}
	for _, id := range []string{"a", "b"} {
		if err := open(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := open("c"); !httpx.IsCode(err, CodeTooManySession) {
		t.Fatalf("third session: %v", err)
	}
	// Idle sessions expire, and their memory is freed.
	now = now.Add(2 * time.Minute)
	if err := open("c"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if in := s.Info(); in.Sessions != 1 || in.CacheBytes != perSession {
		t.Fatalf("after expiry: %d sessions, %d bytes; want 1, %d", in.Sessions, in.CacheBytes, perSession)
	}
	// The memory bound: a 2-session limit of 1.5 sessions' bytes.
	s2, hs2 := spanServer(t, 0, 2, ServerConfig{Threads: 1, MaxCacheBytes: perSession * 3 / 2})
	_ = s2
	for i, want := range []string{"", CodeCacheFull} {
		_, err := post(t, hs2.URL, ForwardRequest{Session: string(rune('a' + i)), Model: model, First: 0, Last: 2, Rows: 1, Tokens: []int{1}})
		if want == "" && err != nil || want != "" && !httpx.IsCode(err, want) {
			t.Fatalf("session %d: %v, want %q", i, err, want)
		}
	}
	// A closed session is gone.
	req, _ := http.NewRequest(http.MethodDelete, hs.URL+"/v1/spans/sessions/c", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("close: %v %v", resp, err)
	}
	resp.Body.Close()
	if in := s.Info(); in.Sessions != 0 || in.CacheBytes != 0 {
		t.Fatalf("after close: %+v", in)
	}
}

func TestBenchLoopbackRuns(t *testing.T) {
	base, res, err := BenchLoopback(context.Background(), model, tolstoy(t), []int{1, 2, 4}, 20)
	if err != nil {
		t.Fatal(err)
	}
	if base <= 0 || len(res) != 3 {
		t.Fatalf("base %v, results %+v", base, res)
	}
	for i, want := range []int{1, 2, 4} {
		if res[i].Spans != want || res[i].Tokens != 20 || res[i].TokensPerSec <= 0 {
			t.Errorf("result %d: %+v", i, res[i])
		}
	}
}

// TestBadRequestIsNotAFailover: an error any server would give (here a
// prompt past the context) ends the generation without banning anyone.
func TestBadRequestIsNotAFailover(t *testing.T) {
	m := tolstoy(t)
	_, a := spanServer(t, 0, 2, ServerConfig{Threads: 1})
	_, b := spanServer(t, 2, 4, ServerConfig{Threads: 1})
	p := &Pipeline{Dir: StaticPeers{{ID: "a", URL: a.URL, Model: model, First: 0, Last: 2}, {ID: "b", URL: b.URL, Model: model, First: 2, Last: 4}}, Bans: NewBans(0, 0)}
	prompt := make([]int, m.Config().SeqLen+1)
	for i := range prompt {
		prompt[i] = 1
	}
	res, err := p.Generate(context.Background(), GenerateRequest{Model: model, Layers: 4, Prompt: prompt, MaxTokens: 1}, nil)
	if !httpx.IsCode(err, CodePosition) || res.Repairs != 0 || p.Bans.Banned("a") || p.Bans.Banned("b") {
		t.Fatalf("err %v, %d repairs, bans a=%v b=%v; want position_out_of_order, no repair, no ban", err, res.Repairs, p.Bans.Banned("a"), p.Bans.Banned("b"))
	}
}

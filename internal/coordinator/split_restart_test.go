package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/swarm"
)

// sessionGate wraps a span server: it records the session of every
// forward request and holds a session's forwards past the holdFrom-th
// until released (a coordinator stopped mid-generation never sees the
// answer), except for sessions first seen after passNew (the restarted
// coordinator's).
type sessionGate struct {
	mu       sync.Mutex
	seen     map[string]int // forwards per session
	fresh    map[string]bool
	passNew  bool
	holdFrom int
	release  chan struct{}
	next     http.Handler
}

func (g *sessionGate) passFresh() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.passNew = true
}

func (g *sessionGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/forward") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Session string `json:"session"`
		}
		_ = json.Unmarshal(body, &req)
		g.mu.Lock()
		if _, ok := g.seen[req.Session]; !ok && g.passNew {
			g.fresh[req.Session] = true
		}
		g.seen[req.Session]++
		n := g.seen[req.Session]
		hold := g.holdFrom > 0 && n > g.holdFrom && !g.fresh[req.Session]
		g.mu.Unlock()
		if hold {
			<-g.release
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// sessions are the sessions the gate has seen.
func (g *sessionGate) sessions() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]bool{}
	for s := range g.seen {
		out[s] = true
	}
	return out
}

// TestSplitJobAtRestartRunsAgainOnce: a coordinator stops while it drives
// a split job (8 tokens streamed, the next forward never answered). The
// coordinator that starts on its store runs the job again from the start
// as the next attempt (the driver's per-boundary inputs lived in the
// stopped process). What the customer sees: the new attempt's stream,
// its tokens numbered from 1 and marked with the new attempt, whose text
// is the whole model's exactly once (the first attempt's 8 tokens are
// void, not repeated after the new ones); what the customer pays: one
// settlement, of the new attempt's stages only (the lost attempt's
// sessions are in none of them), for the tokens of one generation.
func TestSplitJobAtRestartRunsAgainOnce(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 20, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var gates []*sessionGate
	var peers swarm.StaticPeers
	for i, r := range [][2]int{{0, 2}, {2, 4}} {
		key := minerproto.KeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32)))
		srv, err := swarm.NewServer([]swarm.ServedSpan{{Name: engine.DefaultModel, Model: m, First: r[0], Last: r[1]}}, swarm.ServerConfig{Threads: 1, Signer: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := &sessionGate{seen: map[string]int{}, fresh: map[string]bool{}, release: release, next: srv.Handler()}
		gates = append(gates, g)
		hs := httptest.NewServer(g)
		t.Cleanup(hs.Close)
		peers = append(peers, swarm.Peer{ID: address.FromPubKey(key.PublicKey()).String(), URL: hs.URL, Model: engine.DefaultModel, First: r[0], Last: r[1], RTT: time.Millisecond, LayerRPS: 1000})
	}
	// The last span answers the prompt and 7 tokens' forwards (8 tokens
	// out), then holds the first attempt's session.
	gates[1].holdFrom = 8
	tok := m.Tokenizer()
	split := SplitConfig{Dir: peers, HTTP: &http.Client{}, Model: func(name string) (SplitModel, bool) {
		return SplitModel{Layers: m.Config().Layers, Encode: m.EncodePrompt, Piece: tok.Piece, Stop: m.StopTokens()}, name == engine.DefaultModel
	}}
	// A release delay long enough that the deposit's window releases the
	// tokens as they come (the fake clock stands still).
	h := newHarness(t, time.Hour, func(c *Config) { c.Split = split })
	// Runs first at cleanup: the stopped coordinator's held forward is
	// answered (with a failure) so that the span server can close.
	t.Cleanup(func() { close(release) })
	h.fund(100 * coin.Unit)
	j := h.submit(JobRequest{Model: engine.DefaultModel, Prompt: "It was", MaxTokens: 20, Split: true})

	// The customer follows the first attempt up to the held forward.
	sub, err := h.s.Follow(h.ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	first := sub.Text
	seq := sub.Seq
	timeout := time.After(20 * time.Second)
	for seq < 8 {
		select {
		case e := <-sub.Events:
			if e.Type == EventToken {
				if e.Seq != seq+1 || e.Attempt != 1 {
					t.Fatalf("token %+v after seq %d", e, seq)
				}
				seq, first = e.Seq, first+e.Text
			}
		case <-timeout:
			t.Fatalf("the first attempt streamed %d tokens, want 8", seq)
		}
	}
	sub.Cancel()
	if !strings.HasPrefix(want.Text, first) || first == "" {
		t.Fatalf("first attempt's text %q is not a start of %q", first, want.Text)
	}
	oldSessions := gates[1].sessions()
	for s := range gates[0].sessions() {
		oldSessions[s] = true
	}

	// The coordinator stops; the job is stored running, attempt 1.
	h.kill()
	waitFor(t, "the job stored running", func() bool {
		sj, err := h.st.Job(context.Background(), j.ID)
		return err == nil && sj.Status == store.StatusRunning && sj.Attempt == 1
	})
	gates[1].passFresh()
	cfg := Config{Store: h.st, View: h.chain, Sender: h.chain, Address: h.chain.coord, Logger: testLogger(), Now: h.clock.Now,
		AckTimeout: time.Hour, RefreshEvery: time.Hour, TickEvery: time.Hour, MaxAttempts: 3, Split: split}
	ctx, cancel := context.WithCancel(context.Background())
	s2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s2.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// The customer's stream on the restarted coordinator: the new attempt,
	// from its first token, the whole text once.
	sub, err = s2.Follow(ctx, h.tenant, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	if sub.Attempt != 2 {
		t.Fatalf("the restarted job streams attempt %d, want 2", sub.Attempt)
	}
	text, seq := sub.Text, sub.Seq
	timeout = time.After(20 * time.Second)
	// Until done, or the generation's last token (done follows the
	// settlement on chain).
	for finished := seq == len(want.Tokens); !finished; {
		select {
		case e, ok := <-sub.Events:
			switch {
			case !ok || e.Type == EventDone:
				finished = true
			case e.Type == EventToken:
				if e.Seq != seq+1 || e.Attempt != 2 {
					t.Fatalf("token %+v after seq %d of attempt 2", e, seq)
				}
				seq, text = e.Seq, text+e.Text
				finished = seq == len(want.Tokens)
			}
		case <-timeout:
			t.Fatalf("the second attempt streamed %d tokens: %q", seq, text)
		}
	}
	if text != want.Text || seq != len(want.Tokens) && seq != 0 {
		t.Fatalf("the customer's stream after the restart: %q (%d tokens); the whole model's: %q (%d)", text, seq, want.Text, len(want.Tokens))
	}

	// One settlement, of the new attempt's stages, for one generation.
	var sj *store.Job
	waitFor(t, "the split job's completion", func() bool {
		var err error
		sj, err = h.st.Job(context.Background(), j.ID)
		return err == nil && (sj.Status == store.StatusCompleted || sj.Status == store.StatusSettled || sj.Status == store.StatusFailed)
	})
	if sj.Status == store.StatusFailed || sj.Result != want.Text || sj.Attempt != 2 || sj.TokensOut != len(want.Tokens) {
		t.Fatalf("job %s (%s) attempt %d, %d tokens out, text %q", sj.Status, sj.Error, sj.Attempt, sj.TokensOut, sj.Result)
	}
	var set jobs.MsgSettleStages
	if err := tx.Unmarshal(sj.Receipt, &set); err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(j.ID)
	if err := set.Check(jobs.StageJob{ID: raw, ChainID: s2.chainID, Model: engine.DefaultModel, MaxTokens: 20}); err != nil {
		t.Fatal(err)
	}
	if set.TokensOut != uint64(len(want.Tokens)) || len(set.Stages) != 2 {
		t.Fatalf("settlement of %d tokens out in %d stages", set.TokensOut, len(set.Stages))
	}
	for _, st := range set.Stages {
		if oldSessions[st.Session] {
			t.Fatalf("the settlement pays session %s of the lost attempt", st.Session)
		}
	}
	h.chain.commit() // the create_for, so that the settlement may follow
	s2.followJobs(ctx)
	waitFor(t, "the stage settlement sent", func() bool {
		n := 0
		for _, typ := range h.chain.sentTypes() {
			if typ == jobs.TypeSettleStages {
				n++
			}
		}
		return n >= 1
	})
	n := 0
	for _, typ := range h.chain.sentTypes() {
		if typ == jobs.TypeSettleStages {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d stage settlements sent for one job", n)
	}
}

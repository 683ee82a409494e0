package coordinator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
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

// spanPair starts two signing span servers holding tolstoy-1m's halves
// and returns a split configuration routing to them.
func spanPair(t *testing.T, m *engine.Model) SplitConfig {
	t.Helper()
	var peers swarm.StaticPeers
	for i, r := range [][2]int{{0, 2}, {2, 4}} {
		key := minerproto.KeySigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32)))
		srv, err := swarm.NewServer([]swarm.ServedSpan{{Name: engine.DefaultModel, Model: m, First: r[0], Last: r[1]}}, swarm.ServerConfig{Threads: 1, Signer: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(hs.Close)
		peers = append(peers, swarm.Peer{ID: address.FromPubKey(key.PublicKey()).String(), URL: hs.URL, Model: engine.DefaultModel, First: r[0], Last: r[1], RTT: time.Millisecond, LayerRPS: 1000})
	}
	tok := m.Tokenizer()
	return SplitConfig{Dir: peers, HTTP: &http.Client{}, Model: func(name string) (SplitModel, bool) {
		return SplitModel{Layers: m.Config().Layers, Encode: m.EncodePrompt, Piece: tok.Piece, Stop: m.StopTokens()}, name == engine.DefaultModel
	}}
}

// A split job completes with the text of the whole model and a stage
// settlement that checks; a split job held when the coordinator stopped
// runs again through the spans when it restarts.
func TestSplitJobRunsAndRecovers(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 20, Threads: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	split := spanPair(t, m)
	h := newHarness(t, 0, func(c *Config) { c.Split = split })
	h.fund(100 * coin.Unit)
	check := func(s *Service, id string) {
		t.Helper()
		var j *store.Job
		waitFor(t, "the split job's completion", func() bool {
			var err error
			j, err = h.st.Job(context.Background(), id)
			return err == nil && (j.Status == store.StatusCompleted || j.Status == store.StatusSettled || j.Status == store.StatusFailed)
		})
		if j.Status == store.StatusFailed || j.Result != want.Text || !j.Split || j.Miner != s.cfg.Address {
			t.Fatalf("job %s (%s), text %q, split %v, miner %s; want %q by the coordinator", j.Status, j.Error, j.Result, j.Split, j.Miner, want.Text)
		}
		var set jobs.MsgSettleStages
		if err := tx.Unmarshal(j.Receipt, &set); err != nil {
			t.Fatal(err)
		}
		raw, _ := hex.DecodeString(id)
		if err := set.Check(jobs.StageJob{ID: raw, ChainID: s.chainID, Model: engine.DefaultModel, MaxTokens: 20}); err != nil || set.Route != 2 {
			t.Fatalf("stage settlement (route %d): %v", set.Route, err)
		}
	}
	j := h.submit(JobRequest{Model: engine.DefaultModel, Prompt: "It was", MaxTokens: 20, Split: true})
	check(h.s, j.ID)

	// A job the coordinator held when it stopped: stored running, attempt 1.
	h.kill()
	held := *j
	held.ID, held.Status, held.Attempt, held.Result, held.Receipt, held.TokensOut = "00112233445566778899aabbccddeeff", store.StatusRunning, 1, "", nil, 0
	if err := h.st.PutJob(context.Background(), &held); err != nil {
		t.Fatal(err)
	}
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
	check(s2, held.ID)
}

package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/chain/state"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
)

// servedCoordinator is a real coordinator behind an HTTP server; delay is
// added in front of every request (a coordinator far away), and probes
// counts its health requests.
type servedCoordinator struct {
	h      *harness
	srv    *httptest.Server
	probes atomic.Int64
}

func serveCoordinator(t *testing.T, delay time.Duration) *servedCoordinator {
	t.Helper()
	sc := &servedCoordinator{h: newHarness(t, 0)}
	inner := sc.h.s.Handler()
	sc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/health" {
			sc.probes.Add(1)
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(sc.srv.Close)
	return sc
}

// deadURL is the URL of a server that no longer listens.
func deadURL(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// TestPickerPrefersTheNearestHealthyCoordinator: of three real
// coordinators, one near, one far (800 ms added to each request: more
// than any scheduling delay the near one's fastest of 3 probes could see
// on a loaded machine) and one
// too slow for the probe's timeout, and a dead one, the near one comes
// first, the far one second, and the too slow and the dead last, each
// saying why.
func TestPickerPrefersTheNearestHealthyCoordinator(t *testing.T) {
	near, far, tooSlow := serveCoordinator(t, 0), serveCoordinator(t, 800*time.Millisecond), serveCoordinator(t, 10*time.Second)
	dead := deadURL(t)
	p := &Picker{Timeout: 3 * time.Second}
	// Given in the worst order: the ranking, not the order, decides.
	ranked, cached, err := p.Pick(t.Context(), Given([]string{dead, tooSlow.srv.URL, far.srv.URL, near.srv.URL + "/"}))
	if err != nil || cached {
		t.Fatalf("pick: %v (cached %v)", err, cached)
	}
	got := URLs(ranked)
	want := []string{near.srv.URL, far.srv.URL, dead, tooSlow.srv.URL}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ranking %v, want %v\n%+v", got, want, ranked)
	}
	if !ranked[0].Healthy || !ranked[1].Healthy || ranked[2].Healthy || ranked[3].Healthy {
		t.Fatalf("health: %+v", ranked)
	}
	if ranked[0].Address != near.h.s.Address().String() || ranked[1].Address != far.h.s.Address().String() {
		t.Fatalf("addresses from health: %+v", ranked[:2])
	}
	if ranked[1].RTT < 800*time.Millisecond || ranked[1].RTTMs < 800 {
		t.Fatalf("the far one's round trip %v is below the delay in front of it", ranked[1].RTT)
	}
	if ranked[2].Error == "" || !strings.Contains(ranked[3].Error, "deadline") {
		t.Fatalf("why not healthy: dead %q, too slow %q", ranked[2].Error, ranked[3].Error)
	}
	// Nothing healthy: an error that names each, and the ranking.
	ranked, _, err = p.Pick(t.Context(), Given([]string{dead}))
	if !errors.Is(err, ErrNoCoordinator) || len(ranked) != 1 || ranked[0].Healthy || !strings.Contains(err.Error(), dead) {
		t.Fatalf("only a dead one: %v %+v", err, ranked)
	}
}

// TestPickerKeepsItsChoiceBriefly: a second pick of the same coordinators
// within the TTL reads the cache file and probes no one; after the TTL, or
// for another set of coordinators, it probes again.
func TestPickerKeepsItsChoiceBriefly(t *testing.T) {
	a, b := serveCoordinator(t, 0), serveCoordinator(t, 0)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	p := &Picker{CacheFile: filepath.Join(t.TempDir(), "pick.json"), TTL: 30 * time.Second, Now: func() time.Time { return now }}
	set := Given([]string{a.srv.URL, b.srv.URL})
	first, cached, err := p.Pick(t.Context(), set)
	if err != nil || cached {
		t.Fatal(err, cached)
	}
	probes := a.probes.Load() + b.probes.Load()
	if probes != 2*probeTries {
		t.Fatalf("%d probes for two coordinators, want %d", probes, 2*probeTries)
	}
	now = now.Add(29 * time.Second)
	again, cached, err := p.Pick(t.Context(), Given([]string{b.srv.URL, a.srv.URL}))
	if err != nil || !cached || again[0].URL != first[0].URL || a.probes.Load()+b.probes.Load() != probes {
		t.Fatalf("within the TTL: cached %v, %v, %d probes (had %d)", cached, err, a.probes.Load()+b.probes.Load(), probes)
	}
	if _, cached, _ = p.Pick(t.Context(), Given([]string{a.srv.URL})); cached {
		t.Fatal("another set of coordinators was answered from the cache")
	}
	now = now.Add(2 * time.Second)
	probes = a.probes.Load() + b.probes.Load()
	if _, cached, _ = p.Pick(t.Context(), set); cached || a.probes.Load()+b.probes.Load() == probes {
		t.Fatal("a ranking past its TTL was reused")
	}
}

// TestClientMovesOnWhenItsCoordinatorIsDown: a client whose first
// coordinator is dead reads from and submits to the next; an answer (an
// error the coordinator gave) is not a reason to move on.
func TestClientMovesOnWhenItsCoordinatorIsDown(t *testing.T) {
	live := serveCoordinator(t, 0)
	c := NewClient(deadURL(t), live.h.apiKey)
	c.Fallbacks = []string{deadURL(t), live.srv.URL}
	h, err := c.Health(t.Context())
	if err != nil || h.Coordinator != live.h.s.Address().String() {
		t.Fatalf("health through the fallback: %+v %v", h, err)
	}
	// A write moves on too when the connection was refused: the dead one
	// never saw it. The live one answers (no deposit, no miner: refused).
	_, err = c.Submit(t.Context(), JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 4})
	var api *httpx.APIError
	if !errors.As(err, &api) {
		t.Fatalf("submit through the fallback: %v, want the live coordinator's answer", err)
	}
	// A coordinator's answer is final: a bad key on the first is not
	// retried on the next.
	c2 := NewClient(live.srv.URL, "wrong-key")
	c2.Fallbacks = []string{deadURL(t)}
	if _, err := c2.Jobs(t.Context(), 1); !errors.As(err, &api) || api.Status != http.StatusUnauthorized {
		t.Fatalf("a refused key: %v", err)
	}
}

// TestAnnouncedCoordinatorMustAnswerAsItsKey: a URL announced on chain by
// one key but served by another key's coordinator is not healthy, so an
// announcement cannot draw clients to someone else's coordinator.
func TestAnnouncedCoordinatorMustAnswerAsItsKey(t *testing.T) {
	sc := serveCoordinator(t, 0)
	_, other := newKey(t)
	ranked := (&Picker{}).Rank(t.Context(), []Candidate{
		{URL: sc.srv.URL, Source: "chain", Address: other.String()},
		{URL: sc.srv.URL, Source: "chain", Address: sc.h.s.Address().String(), Region: "eu-west"},
	})
	if !ranked[0].Healthy || ranked[0].Address != sc.h.s.Address().String() || ranked[1].Healthy ||
		!strings.Contains(ranked[1].Error, "announced by "+other.String()) {
		t.Fatalf("%+v", ranked)
	}
}

// moduleChain runs the coordinators module in memory: its Getter answers
// the module's routes and its Send applies a message in a block of its own,
// as the node would.
type moduleChain struct {
	t      *testing.T
	kv     *state.Cache
	k      *coordinators.Keeper
	signer address.Address
	height int64
	sent   int
}

func (m *moduleChain) Send(_ context.Context, msg tx.Msg) (string, error) {
	m.sent++
	m.height++
	kv := m.kv.Child()
	if err := m.k.Exec(&module.Context{KV: kv, Height: m.height, Signer: m.signer}, msg); err != nil {
		return "", err
	}
	kv.Write()
	return "hash", nil
}

func (m *moduleChain) GetJSON(_ context.Context, path string, out any) error {
	id, _ := strings.CutPrefix(path, "/api/v1/coordinators/")
	for _, r := range m.k.Routes() {
		if r.Path != "/api/v1/coordinators/{address}" {
			continue
		}
		v, err := r.Handle(module.Query{State: m.kv, Height: m.height}, pathReq{id})
		if errors.Is(err, coordinators.ErrNotFound) {
			return &httpx.APIError{Status: 404, Code: "coordinator_not_found", Message: err.Error()}
		}
		if err != nil {
			return err
		}
		b, _ := json.Marshal(v)
		return json.Unmarshal(b, out)
	}
	m.t.Fatalf("no route for %s", path)
	return nil
}

type pathReq struct{ id string }

func (r pathReq) PathValue(string) string { return r.id }
func (r pathReq) Param(string) string     { return "" }

// TestAnnounceSendsOnlyWhatChanged: a coordinator's first start announces
// it, a restart with the same URL and region sends nothing, a new region
// is announced again, and a bad URL is refused before any transaction.
func TestAnnounceSendsOnlyWhatChanged(t *testing.T) {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	_, self := newKey(t)
	m := &moduleChain{t: t, kv: state.NewCache(st), k: coordinators.NewKeeper(), signer: self}
	a := Announcement{PublicURL: "https://eu1.aitbc.example:8000", Region: "eu-west", Name: "aitbc"}
	for i, want := range []bool{true, false, false} {
		sent, err := Announce(t.Context(), m, m, self, a)
		if err != nil || sent != want {
			t.Fatalf("start %d: sent %v, %v", i, sent, err)
		}
	}
	a.Region = "eu-central"
	if sent, err := Announce(t.Context(), m, m, self, a); err != nil || !sent {
		t.Fatalf("new region: %v %v", sent, err)
	}
	l, err := coordinators.Of(t.Context(), m, self)
	if err != nil || len(l.Coordinators) != 1 || l.Coordinators[0].Region != "eu-central" || l.Coordinators[0].Created != 1 {
		t.Fatalf("on chain: %+v %v", l, err)
	}
	if _, err := Announce(t.Context(), m, m, self, Announcement{PublicURL: "eu1.aitbc.example", Region: "eu"}); !errors.Is(err, coordinators.ErrURL) {
		t.Fatalf("bad URL: %v", err)
	}
	if m.sent != 2 {
		t.Fatalf("%d transactions, want 2", m.sent)
	}
	// The loop returns once the chain holds the announcement.
	a.PublicURL = "https://eu2.aitbc.example:8000"
	if err := AnnounceLoop(t.Context(), m, m, self, a, time.Millisecond, testLogger()); err != nil || m.sent != 3 {
		t.Fatalf("loop: %v, %d sent", err, m.sent)
	}
	// Candidates read from the chain carry the announcing key and region.
	cs, err := Announced(t.Context(), m, self.String())
	if err != nil || len(cs) != 2 || cs[0].Source != "chain" || cs[0].Address != self.String() || cs[0].Region != "eu-central" {
		t.Fatalf("announced: %+v %v", cs, err)
	}
}

// swallowingSender takes transactions that never reach the chain (the
// block refuses them), as a node whose mempool accepted them would.
type swallowingSender struct{ sent int }

func (s *swallowingSender) Send(context.Context, tx.Msg) (string, error) {
	s.sent++
	return "hash", nil
}

// TestAnnounceLoopGivesUpAfterFiveSends: an announcement the chain takes
// but never records costs at most maxAnnounceSends fees, not one every few
// seconds for ever.
func TestAnnounceLoopGivesUpAfterFiveSends(t *testing.T) {
	st, err := state.OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	_, self := newKey(t)
	m := &moduleChain{t: t, kv: state.NewCache(st), k: coordinators.NewKeeper(), signer: self}
	s := &swallowingSender{}
	a := Announcement{PublicURL: "https://eu1.aitbc.example:8000", Region: "eu-west"}
	if err := AnnounceLoop(t.Context(), m, s, self, a, time.Millisecond, testLogger()); err != nil {
		t.Fatal(err)
	}
	if s.sent != maxAnnounceSends {
		t.Fatalf("%d transactions sent, want %d", s.sent, maxAnnounceSends)
	}
}

package coordinator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// minersView reads GET /v1/miners as a client does.
func minersView(t *testing.T, h *harness) map[string]map[string]any {
	t.Helper()
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/miners")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Miners []map[string]any `json:"miners"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, m := range body.Miners {
		out[m["address"].(string)] = m
	}
	return out
}

// The miners view publishes each miner's time from dispatch to its first
// streamed token, a moving average over its jobs, and nothing before the
// miner has streamed one.
func TestMinersViewPublishesTimeToFirstToken(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	m := h.addMiner(coin.Unit)
	if v := minersView(t, h)[m.addr.String()]; v == nil {
		t.Fatal("the connected miner is not in the view")
	} else if _, ok := v["first_token_ms"]; ok {
		t.Fatalf("first_token_ms = %v before any token", v["first_token_ms"])
	}

	run := func(firstToken, rest time.Duration) *store.Job {
		j := h.submit(JobRequest{Model: testModel, Prompt: "hi", MaxTokens: 100})
		mj := m.nextJob()
		h.clock.Advance(firstToken)
		m.tokens(mj, "Once", " upon")
		h.clock.Advance(rest)
		m.finish(mj, "Once upon", 2)
		return h.waitStatus(j.ID, store.StatusCompleted)
	}

	j := run(300*time.Millisecond, 700*time.Millisecond)
	v := minersView(t, h)[m.addr.String()]
	ms, ok := v["first_token_ms"].(float64)
	if !ok {
		t.Fatalf("no first_token_ms after a streamed job: %v", v)
	}
	if dur := float64(j.Completed.Sub(j.Started)) / float64(time.Millisecond); ms <= 0 || ms >= dur {
		t.Fatalf("first_token_ms = %v, want > 0 and below the job's %v ms", ms, dur)
	}
	if ms != 300 {
		t.Fatalf("first_token_ms = %v after one job whose first token came 300 ms after dispatch", ms)
	}

	// A second, slower job moves the average towards it.
	run(800*time.Millisecond, 200*time.Millisecond)
	ms = minersView(t, h)[m.addr.String()]["first_token_ms"].(float64)
	if ms != 0.8*300+0.2*800 {
		t.Fatalf("first_token_ms = %v after 300 ms and 800 ms, want the moving average 400", ms)
	}
}

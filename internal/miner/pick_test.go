package miner

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// TestRankCoordinatorsNearestAnsweringFirst: coordinators that answer come
// first, nearest first; those about as near as the nearest keep the
// configured order; those that do not answer go last, in order.
func TestRankCoordinatorsNearestAnsweringFirst(t *testing.T) {
	lat := map[string]time.Duration{"far": 90 * time.Millisecond, "near": 2 * time.Millisecond, "near2": 3 * time.Millisecond, "mid": 60 * time.Millisecond}
	probe := func(_ context.Context, u string) (time.Duration, error) {
		if d, ok := lat[u]; ok {
			return d, nil
		}
		return 0, errors.New("connection refused")
	}
	cases := []struct{ in, want []string }{
		{[]string{"far", "dead", "near", "mid"}, []string{"near", "mid", "far", "dead"}},
		{[]string{"near2", "near"}, []string{"near2", "near"}}, // equally near: as configured
		{[]string{"dead", "dead2", "mid"}, []string{"mid", "dead", "dead2"}},
		{[]string{"dead", "dead2"}, []string{"dead", "dead2"}},
		{[]string{"far"}, []string{"far"}},
	}
	for _, c := range cases {
		if got := rankCoordinators(t.Context(), c.in, probe); !slices.Equal(got, c.want) {
			t.Errorf("rank %v = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestProbeHealthSkipsDeadAndUnhealthyCoordinators: with real servers, a
// coordinator that is down or answers 503 goes after one that answers.
func TestProbeHealthSkipsDeadAndUnhealthyCoordinators(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/health" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer ok.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer sick.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	got := rankCoordinators(t.Context(), []string{dead.URL, sick.URL, ok.URL}, probeHealth)
	if want := []string{ok.URL, dead.URL, sick.URL}; !slices.Equal(got, want) {
		t.Fatalf("rank = %v, want %v", got, want)
	}
}

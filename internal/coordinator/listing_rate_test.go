package coordinator

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestListingRateIsSharedByCoordinators: a tenant allowed 2 coordinator-paid
// listings at once gets 2 in all, not 2 on each of the two coordinators of
// one database: its third, on either, answers 429 before anything is sent.
func TestListingRateIsSharedByCoordinators(t *testing.T) {
	h1, h2 := sharedPair(t, func(c *Config) { c.Limits.ListingRate, c.Limits.ListingBurst = 0.001, 2 })
	s1, s2 := httptest.NewServer(h1.s.Handler()), httptest.NewServer(h2.s.Handler())
	defer s1.Close()
	defer s2.Close()
	now := h1.clock.Now()
	listing := func(id string) map[string]any {
		return map[string]any{"service_id": id, "name": "GPU Computing Service", "type": "gpu_compute",
			"specs":        map[string]any{"gpu_type": "NVIDIA RTX 4090", "memory": "24GB"},
			"pricing":      map[string]any{"rate_per_hour": 100, "currency": "AITBC"},
			"availability": map[string]any{"start_time": now.UTC().Format(time.RFC3339), "end_time": now.Add(time.Hour).UTC().Format(time.RFC3339)}}
	}
	var codes []int
	for i, u := range []string{s1.URL, s2.URL, s2.URL, s1.URL} {
		resp, _ := post(t, u+"/v1/services/register", h1.apiKey, listing(fmt.Sprintf("gpu-%d", i)))
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] == http.StatusTooManyRequests || codes[1] == http.StatusTooManyRequests ||
		codes[2] != http.StatusTooManyRequests || codes[3] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v: want two answered (whatever the chain says), then 429 on both coordinators", codes)
	}
}

package miner

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/rank"
)

// A miner given several coordinators (--coordinator c1,c2,...) starts
// each round of its list with the ones that answer, nearest first, so that
// a miner goes to the coordinator closest to it and skips dead ones
// without waiting on them. Measured latencies within nearEnough of the
// nearest count as equal and keep the configured order: miners on one
// network, given rotated lists, still spread over the coordinators as
// configured, and noise does not reorder them. The ordering is the
// clients' (internal/coordinator/rank, which coordinator.Picker uses too)
// with this band; only the probe is the miner's own (this package cannot
// import the coordinator's).

// probeTimeout bounds one health probe.
const probeTimeout = 2 * time.Second

// nearEnough is how much slower than the nearest coordinator another may
// answer and still count as equally near: 25 ms, or the nearest's own
// time, whichever is more (a busy machine's scheduling delays stay below
// it; another region is farther).
func nearEnough(best time.Duration) time.Duration { return best + max(best, 25*time.Millisecond) }

// probes is how many times each coordinator is timed; the fastest counts
// (delays only ever add to a round trip).
const probes = 3

// probeFunc measures one coordinator: the time its health answer took.
type probeFunc func(ctx context.Context, url string) (time.Duration, error)

// probeHealth times GET url/v1/health, the fastest of probes tries; an
// answer other than 200 is an error.
func probeHealth(ctx context.Context, url string) (time.Duration, error) {
	best := time.Duration(-1)
	for range probes {
		d, err := probeOnce(ctx, url)
		if err != nil {
			return 0, err
		}
		if best < 0 || d < best {
			best = d
		}
	}
	return best, nil
}

func probeOnce(ctx context.Context, url string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/v1/health", nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("health: %s", resp.Status)
	}
	return time.Since(start), nil
}

// rankCoordinators orders urls for the next round: those that answer the
// probe first (nearest first, those within nearEnough of the nearest in
// their configured order), then those that do not, in their order. The
// probes run at once.
func rankCoordinators(ctx context.Context, urls []string, probe probeFunc) []string {
	if len(urls) < 2 {
		return urls
	}
	rtt, ok := make([]time.Duration, len(urls)), make([]bool, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := probe(ctx, u)
			rtt[i], ok[i] = d, err == nil
		}()
	}
	wg.Wait()
	out := make([]string, 0, len(urls))
	for _, i := range rank.Order(rtt, ok, nearEnough) { // the clients' ranking (coordinator.Picker), with the miners' band
		out = append(out, urls[i])
	}
	return out
}

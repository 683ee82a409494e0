package miner

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// A miner given several coordinators (--coordinator c1,c2,...) starts
// each round of its list with the ones that answer, nearest first, so that
// a miner goes to the coordinator closest to it and skips dead ones
// without waiting on them. Measured latencies within nearEnough of the
// nearest count as equal and keep the configured order: miners on one
// network, given rotated lists, still spread over the coordinators as
// configured, and noise does not reorder them.

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
	type result struct {
		i   int
		rtt time.Duration
		ok  bool
	}
	res := make([]result, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rtt, err := probe(ctx, u)
			res[i] = result{i: i, rtt: rtt, ok: err == nil}
		}()
	}
	wg.Wait()
	best := time.Duration(-1)
	for _, r := range res {
		if r.ok && (best < 0 || r.rtt < best) {
			best = r.rtt
		}
	}
	key := func(r result) time.Duration {
		switch {
		case !r.ok:
			return time.Duration(1<<62 - 1)
		case r.rtt <= nearEnough(best):
			return 0
		}
		return r.rtt
	}
	slices.SortStableFunc(res, func(a, b result) int {
		ka, kb := key(a), key(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	out := make([]string, len(urls))
	for i, r := range res {
		out[i] = urls[r.i]
	}
	return out
}

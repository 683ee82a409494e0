package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner/backend"
)

// JobsOptions configure the coordinator benchmarks.
type JobsOptions struct {
	Clients    int // concurrent API clients for the latency figure (1000)
	Requests   int // status requests per client (20)
	QueueDepth int // jobs queued with no miner connected (10000)
	PaidJobs   int // jobs through the whole paid flow (200)
	Miners     int // miners for the paid flow (3)
	Progress   io.Writer
}

// Latency summarises a set of request durations.
type Latency struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P95 time.Duration `json:"p95_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func summarise(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Latency{N: len(ds), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ds[len(ds)-1]}
}

func (l Latency) String() string {
	return fmt.Sprintf("p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.1f ms (%d requests)",
		ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max), l.N)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// JobsResult is what the coordinator benchmarks measured.
type JobsResult struct {
	StatusLatency     Latency       `json:"status_latency"` // GET /v1/jobs/{id}/status under Clients concurrent clients
	StatusRPS         float64       `json:"status_rps"`
	SaturationRPS     float64       `json:"saturation_rps"` // status requests/s with 64 clients sending back to back
	SaturationLatency Latency       `json:"saturation_latency"`
	SubmitFirstK      Latency       `json:"submit_first_1k"` // POST /v1/jobs, the first 1,000 of QueueDepth
	SubmitLastK       Latency       `json:"submit_last_1k"`  // ... and the last 1,000
	QueuedAtEnd       int           `json:"queued_at_end"`   // /v1/health's queue length after the submissions
	StatusAtDepth     Latency       `json:"status_at_depth"` // status latency with QueueDepth jobs queued
	FirstTokenDirect  time.Duration `json:"first_token_direct_ns"`
	FirstTokenMarket  time.Duration `json:"first_token_market_ns"`
	Overhead          time.Duration `json:"overhead_ns"`
	PaidJobs          int           `json:"paid_jobs"`
	PaidElapsed       time.Duration `json:"paid_elapsed_ns"`
	PaidJobsPerSecond float64       `json:"paid_jobs_per_second"`
	Method            string        `json:"method"`
}

func (o *JobsOptions) defaults() {
	if o.Clients <= 0 {
		o.Clients = 1000
	}
	if o.Requests <= 0 {
		o.Requests = 20
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = 10000
	}
	if o.PaidJobs <= 0 {
		o.PaidJobs = 200
	}
	if o.Miners <= 0 {
		o.Miners = 3
	}
}

// startDevnet starts the benchmarks' devnet: coordinators of them (1 when
// 0) sharing store ("" an SQLite file in the home, else a postgres:// URL).
func startDevnet(ctx context.Context, miners, coordinators int, store string) (*devnet.Devnet, func(), error) {
	p2p, err := freeAddr()
	if err != nil {
		return nil, nil, err
	}
	home, err := os.MkdirTemp("", "aitbc-bench-jobs-")
	if err != nil {
		return nil, nil, err
	}
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 500 * time.Millisecond, Miners: miners, MinerSlots: 4,
		Coordinators: coordinators, Store: store,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0",
		CometRPCListen: "off", P2PListen: p2p,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
		// One tenant here offers the load of a whole market: its write
		// rate, active-job and prompt-byte quotas, and the per-client
		// connection cap (every client is on loopback) are lifted, so
		// the figures measure the coordinator, not its abuse limits.
		CoordinatorLimits: coordinator.Limits{WriteRate: -1, MaxActiveJobs: -1, MaxActiveBytes: -1},
		CoordinatorHTTP:   httpx.Limits{MaxConnsPerClient: -1},
	})
	if err != nil {
		os.RemoveAll(home)
		return nil, nil, err
	}
	return d, func() { d.Close(); os.RemoveAll(home) }, nil
}

// Jobs runs the coordinator benchmarks.
func Jobs(ctx context.Context, o JobsOptions) (JobsResult, error) {
	o.defaults()
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	var res JobsResult
	d, stop, err := startDevnet(ctx, o.Miners, 1, "")
	if err != nil {
		return res, err
	}
	defer stop()
	transport := &http.Transport{MaxIdleConns: o.Clients * 2, MaxIdleConnsPerHost: o.Clients * 2, MaxConnsPerHost: 0}
	httpc := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	c := &coordinator.Client{BaseURL: d.CoordinatorURL(), APIKey: d.APIKey, HTTP: httpc}

	// 1. Overhead: first token through the marketplace vs from the backend.
	say("first-token overhead ...")
	b := backend.NewBuiltin(os.TempDir(), backend.BuiltinOptions{Threads: 1})
	var direct, market []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		var first time.Duration
		_, err := b.Generate(ctx, backend.Request{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 8}, func(string) error {
			if first == 0 {
				first = time.Since(start)
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		direct = append(direct, first)
		t0 := time.Now()
		temp := float32(0.8)
		job, err := c.Submit(ctx, coordinator.JobRequest{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 8, Temperature: &temp})
		if err != nil {
			return res, err
		}
		first = 0
		if err := c.Stream(ctx, job.JobID, func(e coordinator.Event) {
			if e.Type == coordinator.EventToken && e.Text != "" && first == 0 {
				first = time.Since(t0)
			}
		}); err != nil {
			return res, err
		}
		market = append(market, first)
	}
	res.FirstTokenDirect, res.FirstTokenMarket = summarise(direct).P50, summarise(market).P50
	res.Overhead = res.FirstTokenMarket - res.FirstTokenDirect
	say("  direct %.2f ms, through the coordinator %.2f ms (medians of 20)", ms(res.FirstTokenDirect), ms(res.FirstTokenMarket))

	// 2. Paid jobs per second through the whole flow, until settled.
	say("%d paid jobs on %d miners ...", o.PaidJobs, o.Miners)
	ids, elapsed, err := paidFlow(ctx, []*coordinator.Client{c}, o.PaidJobs)
	if err != nil {
		return res, err
	}
	res.PaidJobs, res.PaidElapsed = o.PaidJobs, elapsed
	res.PaidJobsPerSecond = float64(o.PaidJobs) / res.PaidElapsed.Seconds()
	say("  %d settled in %.1f s: %.1f jobs/s", o.PaidJobs, res.PaidElapsed.Seconds(), res.PaidJobsPerSecond)

	// 3. API latency: many users polling job status once a second each
	// (open loop), then the most the API serves (closed loop).
	say("%d clients polling status once a second, %d requests each ...", o.Clients, o.Requests)
	lat, rps, err := statusLoad(ctx, []*coordinator.Client{c}, ids, o.Clients, o.Requests, time.Second)
	if err != nil {
		return res, err
	}
	res.StatusLatency, res.StatusRPS = lat, rps
	say("  %s at %.0f requests/s offered", lat, rps)
	lat, rps, err = statusLoad(ctx, []*coordinator.Client{c}, ids, 64, 200, 0)
	if err != nil {
		return res, err
	}
	res.SaturationLatency, res.SaturationRPS = lat, rps
	say("  saturation: %.0f requests/s (64 clients back to back), %s", rps, lat)

	// 4. Queue depth: stop the miners, queue QueueDepth jobs, compare the
	// first and last thousand submissions, then read status at depth.
	for i := range d.Miners {
		d.StopMiner(i)
	}
	time.Sleep(500 * time.Millisecond)
	say("queueing %d jobs with no miner connected ...", o.QueueDepth)
	sub := make([]time.Duration, o.QueueDepth)
	qids := make([]string, o.QueueDepth)
	var wg sync.WaitGroup
	var next int64
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if int(i) >= o.QueueDepth {
					return
				}
				t0 := time.Now()
				v, err := c.Submit(ctx, coordinator.JobRequest{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 8, MaxPrice: 100_000, TTLSeconds: 3600})
				sub[i], qids[i] = time.Since(t0), v.JobID
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	k := min(1000, o.QueueDepth/2)
	res.SubmitFirstK = summarise(append([]time.Duration(nil), sub[:k]...))
	res.SubmitLastK = summarise(append([]time.Duration(nil), sub[len(sub)-k:]...))
	h, err := c.Health(ctx)
	if err != nil {
		return res, err
	}
	res.QueuedAtEnd = h.Queued
	say("  first %d: %s", k, res.SubmitFirstK)
	say("  last %d:  %s; %d queued", k, res.SubmitLastK, h.Queued)
	lat, _, err = statusLoad(ctx, []*coordinator.Client{c}, qids, o.Clients, 5, time.Second)
	if err != nil {
		return res, err
	}
	res.StatusAtDepth = lat
	say("  status with %d queued: %s", h.Queued, lat)
	res.Method = fmt.Sprintf("one in-process devnet (real chain, 500 ms blocks, coordinator on SQLite, %d miners on the built-in engine, tolstoy-1m), "+
		"clients over loopback HTTP with keep-alive. Overhead: median of 20 first-token times through POST /v1/jobs + WebSocket stream, minus the median "+
		"of 20 direct calls to the built-in backend (8 tokens). Paid flow: %d jobs of 16 tokens submitted at once, timed until every one is settled on chain. "+
		"Latency: %d clients, each sending GET /v1/jobs/{id}/status once a second (random phase) %d times; saturation: 64 clients back to back. "+
		"Depth: %d jobs submitted by 32 clients with no miner connected, then the same status load. The load generator runs in the same process "+
		"and shares the 2 cores with the coordinator, node and miners.",
		o.Miners, o.PaidJobs, o.Clients, o.Requests, o.QueueDepth)
	return res, nil
}

// paidFlow submits jobs paid jobs at once, job i through cs[i%len(cs)],
// and waits until every one is settled, polling its status through the
// coordinator it was submitted to. It returns the jobs' ids and the time
// from the first submission to the last settlement.
func paidFlow(ctx context.Context, cs []*coordinator.Client, jobs int) ([]string, time.Duration, error) {
	start := time.Now()
	ids := make([]string, jobs)
	var wg sync.WaitGroup
	errs := make(chan error, jobs)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			temp := float32(0.8)
			v, err := cs[i%len(cs)].Submit(ctx, coordinator.JobRequest{Model: "tolstoy-1m", Prompt: fmt.Sprintf("Chapter %d", i), MaxTokens: 16, Temperature: &temp, Seed: uint64(i + 1)})
			ids[i] = v.JobID
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, err
	}
	for i, id := range ids {
		for {
			v, err := cs[i%len(cs)].Status(ctx, id)
			if err != nil {
				return nil, 0, err
			}
			if v.Status == "settled" {
				break
			}
			if v.Status == "failed" || v.Status == "expired" {
				return nil, 0, fmt.Errorf("bench: job %s %s: %s", id, v.Status, v.Error)
			}
			select {
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return ids, time.Since(start), nil
}

// statusLoad runs clients that each send requests status queries, one
// every interval (open loop, random phase), or back to back when interval
// is 0; client w asks cs[w%len(cs)]. It returns the latencies and the
// request rate achieved.
func statusLoad(ctx context.Context, cs []*coordinator.Client, ids []string, clients, requests int, interval time.Duration) (Latency, float64, error) {
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var next time.Time
			if interval > 0 {
				next = start.Add(time.Duration(w) * interval / time.Duration(clients))
			}
			for r := 0; r < requests; r++ {
				if interval > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(interval)
				}
				t0 := time.Now()
				if _, err := cs[w%len(cs)].Status(ctx, ids[(w*requests+r)%len(ids)]); err != nil {
					errc <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return Latency{}, 0, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return summarise(all), float64(len(all)) / elapsed.Seconds(), nil
}

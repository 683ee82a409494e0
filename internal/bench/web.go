package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
)

// WebOptions configure the web pages' benchmark.
type WebOptions struct {
	Viewers   int           // concurrent viewers per page (200)
	Requests  int           // requests per viewer per page (10)
	BlockTime time.Duration // the devnet's block time (2 s, as aitbc devnet)
	Transfers int           // transfers timed from commit to an open explorer (10)
	Progress  io.Writer
}

func (o *WebOptions) defaults() {
	if o.Viewers <= 0 {
		o.Viewers = 200
	}
	if o.Requests <= 0 {
		o.Requests = 10
	}
	if o.BlockTime <= 0 {
		o.BlockTime = 2 * time.Second
	}
	if o.Transfers <= 0 {
		o.Transfers = 10
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// PageLatency is one page's figures under the viewers.
type PageLatency struct {
	Page string `json:"page"`
	// Latency is with Viewers viewers each loading the page once a second
	// (starts spread over the first second).
	Latency Latency `json:"latency"`
	// SaturationRPS is pages per second with Viewers viewers loading it
	// back to back, and SaturationLatency their latency then.
	SaturationRPS     float64 `json:"saturation_rps"`
	SaturationLatency Latency `json:"saturation_latency"`
}

// WebResult is what the web benchmark measured.
type WebResult struct {
	Viewers   int           `json:"viewers"`
	BlockTime time.Duration `json:"block_time_ns"`
	Pages     []PageLatency `json:"pages"`
	// CommitToPage is, for each transfer, the time from the node first
	// answering that it is committed (asked every 5 ms) to its row arriving
	// on an open explorer's live feed (what the page's script adds to the
	// table; 0 when the feed was first); MaxBlocksLate is how many blocks
	// the head had moved past the transfer's block when it arrived.
	CommitToPage  Latency `json:"commit_to_page"`
	MaxBlocksLate int64   `json:"max_blocks_late"`
	Method        string  `json:"method"`
}

// Web starts a devnet with the pages, gives it a transfer and a settled
// job to show, then loads each page with Viewers concurrent viewers
// (Requests each, back to back, keep-alive) and times a transfer from its
// commit to an open explorer.
func Web(ctx context.Context, o WebOptions) (WebResult, error) {
	o.defaults()
	res := WebResult{Viewers: o.Viewers, BlockTime: o.BlockTime}
	p2p, err := freeAddr()
	if err != nil {
		return res, err
	}
	home, err := os.MkdirTemp("", "aitbc-bench-web-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(home)
	fmt.Fprintf(o.Progress, "starting a devnet with the web pages (%s blocks) ...\n", o.BlockTime)
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: o.BlockTime, Miners: 1,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "127.0.0.1:0", WebListen: "127.0.0.1:0",
		// The viewers stand for people at as many addresses; here they
		// share one, and a page's viewers connect while the last page's
		// are still closing: lift the per-address cap past them.
		WebLimits:      func() httpx.Limits { l := system.DefaultWebLimits(); l.MaxConnsPerClient = 4 * o.Viewers; return l }(),
		CometRPCListen: "off", P2PListen: p2p,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		return res, err
	}
	defer d.Close()
	node := rpc.NewClient(d.RPCURL())
	to := address.FromPubKey(make([]byte, 32))
	sent, err := d.Wallets.Service().Send(ctx, devnet.GenesisWallet, "123", to, coin.Unit, 0)
	if err != nil {
		return res, err
	}
	job, err := runJob(ctx, d)
	if err != nil {
		return res, err
	}
	tx, err := waitTx(ctx, node, sent.TxHash)
	if err != nil {
		return res, err
	}
	base := d.WebURL()
	pages := []string{"/", "/explorer", fmt.Sprintf("/explorer/block/%d", tx.Height), "/explorer/tx/" + sent.TxHash,
		"/explorer/address/" + d.Genesis.String(), "/explorer/job/" + job.JobID, "/explorer/validators", "/explorer/miners",
		"/explorer/supply", "/marketplace", "/marketplace/service/" + job.Miner, "/miner/" + job.Miner, "/api/explorer/blocks"}
	for _, p := range pages {
		lat, _, err := pageLoad(ctx, base+p, o.Viewers, o.Requests, time.Second)
		if err != nil {
			return res, fmt.Errorf("%s: %w", p, err)
		}
		sat, rps, err := pageLoad(ctx, base+p, o.Viewers, o.Requests, 0)
		if err != nil {
			return res, fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintf(o.Progress, "%-40s %s; back to back %.0f req/s\n", short(p), lat, rps)
		res.Pages = append(res.Pages, PageLatency{Page: p, Latency: lat, SaturationRPS: rps, SaturationLatency: sat})
	}
	fmt.Fprintf(o.Progress, "timing %d transfers from commit to an open explorer ...\n", o.Transfers)
	if res.CommitToPage, res.MaxBlocksLate, err = commitToPage(ctx, d, node, base, o.Transfers); err != nil {
		return res, err
	}
	res.Method = fmt.Sprintf("devnet with %s blocks and one miner on the built-in engine, all in this process with the load "+
		"generator; per page %d viewers over keep-alive, after one warm-up request each, each loading the page %d times once a "+
		"second (latency), then %d times back to back (saturation); commit to page: an SSE client on /api/explorer/live "+
		"(what the explorer page listens to) receives the transfer's tx event, timed from the node first reporting it committed (polled every 5 ms)",
		o.BlockTime, o.Viewers, o.Requests, o.Requests)
	return res, nil
}

func short(p string) string {
	if len(p) > 40 {
		return p[:37] + "…"
	}
	return p
}

func runJob(ctx context.Context, d *devnet.Devnet) (coordinator.JobView, error) {
	c := coordinator.NewClient(d.CoordinatorURL(), d.APIKey)
	v, err := c.Submit(ctx, coordinator.JobRequest{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 16})
	if err != nil {
		return v, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		r, err := c.Results(ctx, v.JobID)
		if err == nil && r.Settlement != nil && r.Settlement.SettleTx != "" {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return v, fmt.Errorf("job %s not settled in 2 minutes", v.JobID)
}

func waitTx(ctx context.Context, node *rpc.Client, hash string) (rpc.Transaction, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		tx, err := node.Tx(ctx, hash)
		if err == nil && tx.Height > 0 {
			return tx, nil
		}
		if time.Now().After(deadline) {
			return tx, fmt.Errorf("tx %s not committed: %v", hash, err)
		}
		select {
		case <-ctx.Done():
			return tx, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pageLoad has viewers clients GET u requests times each, every interval
// (0: back to back), and returns the latencies and the pages per second.
func pageLoad(ctx context.Context, u string, viewers, requests int, interval time.Duration) (Latency, float64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: viewers, MaxConnsPerHost: viewers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	get := func() (time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %.300s", resp.StatusCode, pageText(body))
		}
		return time.Since(start), err
	}
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	// One warm-up request each opens the viewers' connections.
	for range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := get(); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return Latency{}, 0, first
	}
	start := time.Now()
	for v := range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, requests)
			next := start.Add(interval * time.Duration(v) / time.Duration(viewers))
			for range requests {
				if interval > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(interval)
				}
				d, err := get()
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
				mine = append(mine, d)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return Latency{}, 0, first
	}
	return summarise(all), float64(len(all)) / elapsed.Seconds(), nil
}

// pageText is an error page's main text, without markup.
func pageText(b []byte) string {
	s := string(b)
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	var out strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			out.WriteByte(' ')
		case !in:
			out.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(out.String()), " ")
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// commitToPage sends n transfers one after another and times each from
// its commit to its tx event on the explorer's live feed.
func commitToPage(ctx context.Context, d *devnet.Devnet, node *rpc.Client, base string, n int) (Latency, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/explorer/live", nil)
	if err != nil {
		return Latency{}, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Latency{}, 0, err
	}
	defer resp.Body.Close()
	arrived := map[string]time.Time{}
	var mu sync.Mutex
	sig := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var event string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok && event == "tx" {
				if i := strings.Index(v, `"tx_hash":"`); i >= 0 {
					h := v[i+len(`"tx_hash":"`):]
					if j := strings.IndexByte(h, '"'); j > 0 {
						mu.Lock()
						arrived[h[:j]] = time.Now()
						mu.Unlock()
						select {
						case sig <- struct{}{}:
						default:
						}
					}
				}
			}
		}
	}()
	var ds []time.Duration
	var late int64
	to := address.FromPubKey(make([]byte, 32))
	for range n {
		sent, err := d.Wallets.Service().Send(ctx, devnet.GenesisWallet, "123", to, coin.Unit, 0)
		if err != nil {
			return Latency{}, 0, err
		}
		// A poller asks the node every 5 ms: the first answer "committed"
		// is the commit as a client of the node can see it.
		committed := make(chan time.Time, 1)
		go func() {
			for ctx.Err() == nil {
				if tx, err := node.Tx(ctx, sent.TxHash); err == nil && tx.Height > 0 {
					committed <- time.Now()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		var at time.Time
		deadline := time.After(time.Minute)
		for at.IsZero() {
			select {
			case <-sig:
			case <-time.After(50 * time.Millisecond):
			case <-deadline:
				return Latency{}, 0, errors.New("a transfer did not reach the live feed in a minute")
			}
			mu.Lock()
			at = arrived[sent.TxHash]
			mu.Unlock()
		}
		head, err := node.Head(ctx)
		if err != nil {
			return Latency{}, 0, err
		}
		tx, err := waitTx(ctx, node, sent.TxHash)
		if err != nil {
			return Latency{}, 0, err
		}
		var seen time.Time
		select {
		case seen = <-committed:
		case <-time.After(time.Minute):
			return Latency{}, 0, errors.New("the node never reported a transfer committed")
		}
		ds = append(ds, max(0, at.Sub(seen)))
		late = max(late, head.Height-tx.Height)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return summarise(ds), late, nil
}

package testnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/netsim"
	"github.com/aitbc/aitbc/internal/rpc"
)

// BenchOptions configure a localnet benchmark.
type BenchOptions struct {
	Binary     string        // aitbc binary; default this executable
	Validators int           // default 4
	Accounts   int           // funded sender accounts, default 2000
	PerAcct    int           // transfers per account, default 20
	BlockTime  time.Duration // default 1s
	Submitters int           // concurrent HTTP submitters, default 32
	Batch      int           // transactions per request: 1 (default) posts each to /api/v1/transaction/submit, more use /api/v1/transactions/submit
	Rate       float64       // offered load in transactions per second; 0 sends as fast as the submitters can
	Dir        string        // default a temporary directory, removed after
	Progress   io.Writer     // optional progress lines
	NodeArgs   []string      // extra `node start` flags ("%d": the node's index), e.g. --cpuprofile
	GossipOnce bool          // each transaction over each link once (node.Config.GossipOnce)
	// RTT is a round trip put on every link between validators by
	// userspace relays (relayLinks); 0: none.
	RTT time.Duration
}

// BenchResult is what a localnet benchmark measured.
type BenchResult struct {
	Validators  int           `json:"validators"`
	Txs         int           `json:"txs"`
	Committed   int           `json:"committed"`
	Rejected    int           `json:"rejected"`
	Blocks      int64         `json:"blocks"`
	MaxBlockTxs int           `json:"max_block_txs"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	TPS         float64       `json:"tps"`
	SubmitTPS   float64       `json:"submit_tps"`
	// SubmitElapsed is how long submitting took.
	SubmitElapsed time.Duration `json:"submit_elapsed_ns"`
	Batch         int           `json:"batch"`
	BlockTime     time.Duration `json:"block_time_ns"`
	CPUCores      int           `json:"cpu_cores"`
	Agree         bool          `json:"agree"`              // every node has the same block hashes over the run
	NodeCPU       float64       `json:"node_cpu_seconds"`   // all node processes, from start to the end of the run (Linux)
	ClientCPU     float64       `json:"client_cpu_seconds"` // this process while submitting and following
	// MaxInterval is the longest time between consecutive blocks of the
	// run (their header times); AfterTxs is the size of the block before
	// it, whose propagation and execution the gap includes.
	MaxInterval time.Duration `json:"max_block_interval_ns"`
	AfterTxs    int           `json:"max_interval_after_txs"`
	// MeanInterval is the mean time between the run's blocks (header
	// times of its first and last block over the gaps between them).
	MeanInterval time.Duration `json:"mean_block_interval_ns"`
	// RTT is the round trip injected on every validator link.
	RTT time.Duration `json:"injected_rtt_ns"`

	Method string `json:"method"`
}

func (o *BenchOptions) defaults() error {
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("testnet: bench: %w", err)
		}
		o.Binary = exe
	}
	if o.Validators <= 0 {
		o.Validators = 4
	}
	if o.Accounts <= 0 {
		o.Accounts = 2000
	}
	if o.PerAcct <= 0 {
		o.PerAcct = 20
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if o.Submitters <= 0 {
		o.Submitters = 32
	}
	if o.Batch <= 0 {
		o.Batch = 1
	}
	if o.RTT < 0 || o.RTT > netsim.MaxDelay {
		return fmt.Errorf("testnet: bench: a round trip of %s (0 to %s)", o.RTT, netsim.MaxDelay)
	}
	if o.Batch > rpc.MaxSubmitBatch {
		return fmt.Errorf("testnet: bench: batch of %d, the API takes at most %d", o.Batch, rpc.MaxSubmitBatch)
	}
	return nil
}

// BenchKey is the deterministic key of benchmark (and load-generator)
// account i; never use it outside throwaway networks.
func BenchKey(i int) ed25519.PrivateKey {
	seed := make([]byte, 32)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	copy(seed[8:], "aitbc-localnet-account")
	return ed25519.NewKeyFromSeed(seed)
}

// BenchAccounts returns genesis accounts for BenchKey(0..n-1), each with
// balance.
func BenchAccounts(n int, balance coin.Amount) []app.GenesisAccount {
	out := make([]app.GenesisAccount, n)
	for i := range out {
		out[i] = app.GenesisAccount{Address: address.FromPubKey(BenchKey(i).Public().(ed25519.PublicKey)), Balance: balance}
	}
	return out
}

// Bench runs a localnet benchmark: a fresh testnet of o.Validators
// validators, each its own `aitbc node start` process on loopback; many
// funded accounts; pre-signed transfers submitted over HTTP to every
// node's REST API (account a always to node a mod N, so that its nonces
// arrive in order); committed transactions per second counted from the
// blocks.
func Bench(ctx context.Context, o BenchOptions) (BenchResult, error) {
	res := BenchResult{}
	if err := o.defaults(); err != nil {
		return res, err
	}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	res.Validators, res.BlockTime, res.CPUCores = o.Validators, o.BlockTime, runtime.NumCPU()
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "aitbc-localnet-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	const chainID = "aitbc-localnet-bench"
	params := app.DefaultParams()
	m, err := Init(Options{
		Dir: dir, ChainID: chainID, Validators: o.Validators, FreePorts: true, NoCometRPC: true,
		BlockTime: o.BlockTime, Accounts: BenchAccounts(o.Accounts, 1_000_000*coin.Unit), Params: &params, GossipOnce: o.GossipOnce,
	})
	if err != nil {
		return res, err
	}
	res.RTT = o.RTT
	if o.RTT > 0 {
		closeRelays, err := relayLinks(m, o.RTT)
		if err != nil {
			return res, err
		}
		// Deferred before the cluster's Close: runs after the nodes stop.
		defer func() { _ = closeRelays() }()
	}

	say("signing %d transfers from %d accounts...", o.Accounts*o.PerAcct, o.Accounts)
	keys := make([]ed25519.PrivateKey, o.Accounts)
	addrs := make([]address.Address, o.Accounts)
	for i := range keys {
		keys[i] = BenchKey(i)
		addrs[i] = address.FromPubKey(keys[i].Public().(ed25519.PublicKey))
	}
	// Nonce-major order: nonce n of every account, then n+1.
	raws := make([][]byte, o.Accounts*o.PerAcct)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(raws); i += workers {
				acct, nonce := i%o.Accounts, i/o.Accounts
				t := &tx.Tx{ChainID: chainID, Nonce: uint64(nonce), Fee: params.MinFee, Msg: bank.NewSendMsg(addrs[(acct+1)%o.Accounts], coin.Unit)}
				t.Sign(keys[acct])
				raws[i], _ = t.Encode()
			}
		}()
	}
	wg.Wait()
	res.Txs = len(raws)
	// Requests are prepared before the clock starts, so that the client
	// costs the nodes' machine as little as it can: each node's accounts'
	// transfers in nonce-major order, cut into requests of o.Batch.
	n := len(m.Nodes)
	reqs := prepareRequests(raws, o.Accounts, n, o.Batch)
	res.Batch = o.Batch

	say("starting %d validator processes (%s)...", o.Validators, o.Binary)
	cl := NewCluster(m, o.Binary)
	cl.Args = o.NodeArgs
	defer cl.Close()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := cl.StartAll(sctx); err != nil {
		return res, err
	}
	startHeight, err := waitAllHeight(sctx, cl, 2)
	if err != nil {
		return res, err
	}

	say("submitting with %d concurrent HTTP submitters to %d nodes (block time %s)...", o.Submitters, o.Validators, o.BlockTime)
	nodeCPU0 := clusterCPU(cl)
	clientCPU0 := selfCPU()
	start := time.Now()
	var next, rejected atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < o.Submitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				if o.Rate > 0 {
					// Open loop: request i leaves at its scheduled time,
					// whatever happened to the ones before it.
					at := start.Add(time.Duration(float64(i*o.Batch) / o.Rate * float64(time.Second)))
					time.Sleep(time.Until(at))
				}
				if err := reqs[i].send(ctx, cl.http, m.Nodes[reqs[i].node].RESTURL); err != nil {
					rejected.Add(int64(reqs[i].failed))
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	submitted := time.Since(start)
	res.SubmitElapsed = submitted
	res.SubmitTPS = float64(len(raws)) / submitted.Seconds()
	res.Rejected = int(rejected.Load())
	say("submitted in %s (%.0f tx/s accepted), %d rejected", submitted.Round(time.Millisecond), res.SubmitTPS, res.Rejected)
	if e := firstErr.Load(); e != nil {
		say("first rejection: %v", e)
	}

	// Follow node0's blocks until they hold every accepted transfer.
	want := res.Txs - res.Rejected
	c0 := cl.Client(0)
	h := startHeight
	var lastProgress = time.Now()
	var prevTime, firstTime time.Time
	prevTxs := 0
	for res.Committed < want {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		b, err := c0.Block(ctx, h+1)
		if err != nil {
			if !httpx.IsCode(err, "block_not_found") {
				return res, err
			}
			if time.Since(lastProgress) > time.Minute {
				return res, fmt.Errorf("testnet: bench: no new block for a minute; %d of %d committed", res.Committed, want)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		h, lastProgress = b.Height, time.Now()
		if gap := b.Time.Sub(prevTime); !prevTime.IsZero() && gap > res.MaxInterval {
			res.MaxInterval, res.AfterTxs = gap, prevTxs
		}
		if firstTime.IsZero() {
			firstTime = b.Time
		}
		prevTime, prevTxs = b.Time, b.NumTxs
		res.Committed += b.NumTxs
		res.MaxBlockTxs = max(res.MaxBlockTxs, b.NumTxs)
	}
	res.Elapsed = time.Since(start)
	res.NodeCPU, res.ClientCPU = clusterCPU(cl)-nodeCPU0, selfCPU()-clientCPU0
	res.Blocks = h - startHeight
	if res.Blocks > 1 {
		res.MeanInterval = prevTime.Sub(firstTime) / time.Duration(res.Blocks-1)
	}
	res.TPS = float64(res.Committed) / res.Elapsed.Seconds()
	say("committed %d in %d blocks, %.2fs: %.0f tx/s; CPU: nodes %.1fs, this client %.1fs", res.Committed, res.Blocks, res.Elapsed.Seconds(), res.TPS, res.NodeCPU, res.ClientCPU)

	// Every node must hold the same blocks.
	res.Agree = true
	for i := 1; i < n; i++ {
		if _, err := waitHeight(sctx, cl.Client(i), h); err != nil {
			return res, err
		}
	}
	for hh := startHeight + 1; hh <= h; hh++ {
		b0, err := c0.Block(ctx, hh)
		if err != nil {
			return res, err
		}
		for i := 1; i < n; i++ {
			b, err := cl.Client(i).Block(ctx, hh)
			if err != nil {
				return res, err
			}
			if b.Hash != b0.Hash || b.AppHash != b0.AppHash {
				res.Agree = false
			}
		}
	}
	how := "one per request (POST /api/v1/transaction/submit)"
	if o.Batch > 1 {
		how = fmt.Sprintf("%d per request (POST /api/v1/transactions/submit)", o.Batch)
	}
	res.Method = fmt.Sprintf("%d validators, each an `aitbc node start` process on loopback, on %d CPU cores; %d pre-signed ed25519 transfers "+
		"from %d genesis accounts (%d each, consecutive nonces) submitted over HTTP, %s, by %d concurrent submitters, "+
		"account a always to node a mod %d; TPS = transactions in committed blocks / time from the first submission until node0 committed the last; "+
		"block time %s; gossip once: %v", o.Validators, res.CPUCores, res.Txs, o.Accounts, o.PerAcct, how, o.Submitters, n, o.BlockTime, o.GossipOnce)
	if o.RTT > 0 {
		res.Method += fmt.Sprintf("; every validator link through a userspace TCP relay adding a %s round trip (internal/netsim; no peer exchange)", o.RTT)
	}
	if !res.Agree {
		return res, errors.New("testnet: bench: nodes disagree about block hashes")
	}
	return res, nil
}

// waitAllHeight waits until every node of cl has committed height h and
// returns the highest height seen.
func waitAllHeight(ctx context.Context, cl *Cluster, h int64) (int64, error) {
	var top int64
	for i := range cl.M.Nodes {
		got, err := waitHeight(ctx, cl.Client(i), h)
		if err != nil {
			return 0, err
		}
		top = max(top, got)
	}
	return top, nil
}

// waitHeight waits until c's node has committed height h and returns its
// height.
func waitHeight(ctx context.Context, c *rpc.Client, h int64) (int64, error) {
	for {
		hh, err := c.Health(ctx)
		if err == nil && hh.Height >= h {
			return hh.Height, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("testnet: %s did not reach height %d: %w (last error %v)", c.BaseURL, h, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clusterCPU sums the CPU seconds the cluster's running processes have
// used, from /proc (0 where that is not available).
func clusterCPU(cl *Cluster) float64 {
	var sum float64
	for _, p := range cl.Procs {
		if p != nil && !p.Exited() {
			sum += procCPU(p.Pid())
		}
	}
	return sum
}

// procCPU reads utime+stime of pid from /proc/PID/stat.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// benchRequest is one prepared submission: a single transaction or a
// batch, all for one node.
type benchRequest struct {
	node   int
	raws   [][]byte
	body   []byte // prepared JSON body
	failed int    // transactions finally refused
}

// prepareRequests groups raws (nonce-major: nonce k of every account, then
// k+1) by the node their account submits to, keeping that order, and cuts
// each node's list into requests of batch transactions.
func prepareRequests(raws [][]byte, accounts, nodes, batch int) []*benchRequest {
	perNode := make([][][]byte, nodes)
	for i, raw := range raws {
		k := (i % accounts) % nodes
		perNode[k] = append(perNode[k], raw)
	}
	byNode := make([][]*benchRequest, nodes)
	longest := 0
	for k, list := range perNode {
		for len(list) > 0 {
			c := min(batch, len(list))
			r := &benchRequest{node: k, raws: list[:c]}
			r.body = requestBody(r.raws, batch > 1)
			byNode[k] = append(byNode[k], r)
			list = list[c:]
		}
		longest = max(longest, len(byNode[k]))
	}
	// Interleave the nodes, so that every node is busy from the start.
	var out []*benchRequest
	for p := 0; p < longest; p++ {
		for k := range byNode {
			if p < len(byNode[k]) {
				out = append(out, byNode[k][p])
			}
		}
	}
	return out
}

func requestBody(raws [][]byte, batch bool) []byte {
	if !batch {
		b, _ := json.Marshal(rpc.SubmitRequest{Tx: base64.StdEncoding.EncodeToString(raws[0])})
		return b
	}
	req := rpc.SubmitBatchRequest{Txs: make([]string, len(raws))}
	for i, raw := range raws {
		req.Txs[i] = base64.StdEncoding.EncodeToString(raw)
	}
	b, _ := json.Marshal(req)
	return b
}

// send posts r to the node at base, resubmitting what the node refused
// only for being early (a nonce gap: an earlier nonce of the same sender is
// still in flight in another request) or for a full mempool.
func (r *benchRequest) send(ctx context.Context, hc *http.Client, base string) error {
	pending := r.raws
	body := r.body
	for attempt := 0; ; attempt++ {
		var retry [][]byte
		var lastErr error
		if len(pending) == 1 && len(r.raws) == 1 {
			code, err := postSubmit(ctx, hc, base+"/api/v1/transaction/submit", body)
			if err != nil {
				r.failed = 1
				return err
			}
			switch code {
			case "", "tx_already_known":
			case "nonce_gap", "mempool_full":
				retry = pending
			default:
				lastErr = fmt.Errorf("testnet: bench: submit: %s", code)
				r.failed++
			}
		} else {
			res, err := postBatch(ctx, hc, base+"/api/v1/transactions/submit", body)
			if err != nil {
				r.failed += len(pending)
				return err
			}
			for i, e := range res.Results {
				if e.Error == nil || e.Error.Code == "tx_already_known" {
					continue
				}
				if e.Error.Code == "nonce_gap" || e.Error.Code == "mempool_full" {
					retry = append(retry, pending[i])
					continue
				}
				lastErr = fmt.Errorf("testnet: bench: submit: %s: %s", e.Error.Code, e.Error.Message)
				r.failed++
			}
		}
		if len(retry) == 0 {
			return lastErr
		}
		if attempt >= 400 {
			r.failed += len(retry)
			return fmt.Errorf("testnet: bench: %d transactions still refused after %d attempts", len(retry), attempt)
		}
		time.Sleep(5 * time.Millisecond)
		pending = retry
		body = requestBody(pending, len(r.raws) > 1)
	}
}

// postBatch posts a prepared batch body and decodes the per-transaction
// outcomes.
func postBatch(ctx context.Context, hc *http.Client, url string, body []byte) (rpc.SubmitBatchResult, error) {
	var res rpc.SubmitBatchResult
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return res, err
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("testnet: bench: batch submit: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return res, json.Unmarshal(b, &res)
}

// postSubmit posts a prepared submit body; it returns the error code of a
// refusal ("" when accepted), or an error when the node did not answer.
func postSubmit(ctx context.Context, hc *http.Client, url string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 == 2 {
		return "", nil
	}
	var eb httpx.ErrorBody
	if json.Unmarshal(b, &eb) != nil || eb.Error.Code == "" {
		return fmt.Sprintf("http_%d", resp.StatusCode), nil
	}
	return eb.Error.Code, nil
}

// Package miner is the provider daemon: it registers the miner on chain
// (stake, models, price), keeps it alive with heartbeats, holds a session
// with a coordinator, runs the jobs it receives through a backend with
// bounded concurrency, streams tokens back and signs a receipt for each
// result. Sessions that drop are reopened with backoff.
//
// Imported by the miner command and the devnet.
package miner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/miner/backend"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// Output is what a runner produced for one job.
type Output struct {
	Text         string
	TokensIn     int
	TokensOut    int
	FinishReason string
	// Attestation is the backend's commitments (backend.Result), signed
	// into the receipt by its hash; nil when the backend has none.
	Attestation []byte
}

// Runner runs jobs on some backend (the built-in engine, Ollama, an
// OpenAI-compatible server).
type Runner interface {
	Name() string
	Models(ctx context.Context) ([]string, error)
	Run(ctx context.Context, job *minerproto.Job, onToken func(text string) error) (Output, error)
}

// ErrBadJob marks a job the runner can never do (unknown model, invalid
// parameters): the coordinator should not retry it elsewhere blindly.
var ErrBadJob = errors.New("miner: job cannot be run")

// Chain is what the miner reads from a node: its registry entry, through
// the miners module's query. *rpc.Client satisfies it.
type Chain interface {
	module.Getter // the miners module's queries (miners.Query)
}

// Sender submits transactions signed with the miner's key.
type Sender interface {
	Send(ctx context.Context, msg tx.Msg) (string, error)
}

// Config configures a miner.
type Config struct {
	Coordinator    string // base URL, e.g. http://127.0.0.1:8000; several, comma-separated, are served in turn (serve)
	Key            minerproto.Signer
	Chain          Chain
	Sender         Sender
	Runner         Runner
	Models         []string    // empty: whatever the runner serves
	PricePer1k     coin.Amount // per 1,000 output tokens
	Stake          coin.Amount // locked at registration
	Slots          int         // concurrent jobs (default 1)
	GPU            string      // as registered on chain
	GPUMemoryMB    uint64
	Hardware       string // shown to the coordinator
	HeartbeatEvery time.Duration
	Logger         *slog.Logger
	Version        string
	// JobKinds also runs data-processing and training jobs (kinds.go,
	// docs/JOBS.md), fetching their input files from the coordinator.
	JobKinds bool
	// Provider, when set, is the marketplace provider the miner works for:
	// after registering, the miner names it on chain (miners/set_provider),
	// its half of the consent that lets the provider's agreements run on it
	// (the provider's half is market add-miner). Nil leaves what the chain
	// holds as it is.
	Provider *address.Address
	// Images, when set, runs image jobs ("image:<model>", kinds.go) on an
	// OpenAI-compatible images server.
	Images ImageGenerator
	// Vision, when set, says which of the runner's models read images;
	// the hello declares them, and the coordinator sends jobs whose
	// messages carry images only to miners declaring their model.
	Vision backend.VisionLister
}

// Miner is a running provider.
type Miner struct {
	cfg  Config
	addr address.Address
	log  *slog.Logger

	mu      sync.Mutex
	coord   string // the coordinator of the current or last session
	running int
	done    uint64
	tokens  uint64
	conn    bool
}

// New checks the configuration.
func New(cfg Config) (*Miner, error) {
	if cfg.Key == nil || cfg.Chain == nil || cfg.Sender == nil || cfg.Runner == nil || len(Coordinators(cfg.Coordinator)) == 0 {
		return nil, errors.New("miner: key, chain, sender, runner and coordinator are required")
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 1
	}
	if cfg.HeartbeatEvery <= 0 {
		cfg.HeartbeatEvery = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GPU == "" {
		cfg.GPU = "cpu"
	}
	m := &Miner{addr: address.FromPubKey(cfg.Key.PublicKey()), log: cfg.Logger}
	if cfg.JobKinds || cfg.Images != nil {
		// Input files come from, and image results go to, the coordinator
		// the miner serves now (its --coordinator may list several).
		files := &HTTPFiles{Coordinator: Coordinators(cfg.Coordinator)[0], Current: m.currentCoordinator, Key: cfg.Key}
		kr := KindRunner{Next: cfg.Runner, Workers: 1, Images: cfg.Images}
		if cfg.Images != nil {
			kr.Results = files // the PNG goes to the coordinator's file store
		}
		if cfg.JobKinds {
			kr.Files = files
			kr.Results = files // a fine-tuned model goes to the coordinator's file store
			if len(cfg.Models) > 0 {
				cfg.Models = append(append([]string(nil), cfg.Models...), jobkind.Models...)
			}
		}
		cfg.Runner = kr
	}
	m.cfg = cfg
	return m, nil
}

// Address is the miner's chain address.
func (m *Miner) Address() address.Address { return m.addr }

// Status is a snapshot for dashboards.
type Status struct {
	Address   string `json:"address"`
	Connected bool   `json:"connected"`
	// Coordinator is the URL of the current (or, while reconnecting, the
	// last) session's coordinator.
	Coordinator string `json:"coordinator,omitempty"`
	Running     int    `json:"running"`
	JobsDone    uint64 `json:"jobs_done"`
	TokensOut   uint64 `json:"tokens_out"`
}

// Status returns the miner's counters.
func (m *Miner) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Status{Address: m.addr.String(), Connected: m.conn, Coordinator: m.coord, Running: m.running, JobsDone: m.done, TokensOut: m.tokens}
}

// Run registers (if needed), then serves the coordinator until ctx ends.
func (m *Miner) Run(ctx context.Context) error {
	models, err := m.models(ctx)
	if err != nil {
		return err
	}
	if err := m.EnsureRegistered(ctx, models); err != nil {
		return err
	}
	// Heartbeats run beside the sessions and are joined before Run returns,
	// so nothing of the miner outlives it.
	hctx, stopHeartbeats := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Add(1)
	go func() { defer hb.Done(); m.heartbeats(hctx) }()
	defer func() { stopHeartbeats(); hb.Wait() }()
	m.serve(ctx, models)
	return nil
}

// Coordinators splits a --coordinator value: several URLs, comma-separated,
// that a miner moves between in order when a session ends.
func Coordinators(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// serve holds coordinator sessions until ctx ends. When a session ends
// (its coordinator died, restarted or dropped it) the miner connects to
// the next coordinator of its list at once; only after a whole round
// failed does it back off, so a miner of a dead coordinator serves
// another within moments. Each round starts with the coordinators that
// answer, nearest first (pick.go).
func (m *Miner) serve(ctx context.Context, models []string) {
	configured := Coordinators(m.cfg.Coordinator)
	urls := configured
	backoff := 250 * time.Millisecond
	for i := 0; ctx.Err() == nil; i = (i + 1) % len(urls) {
		if i == 0 && len(configured) > 1 {
			if urls = rankCoordinators(ctx, configured, probeHealth); urls[0] != configured[0] {
				m.log.Info("coordinators ranked by health and latency", "order", urls)
			}
		}
		start := time.Now()
		m.setCoordinator(urls[i])
		err := m.session(ctx, models, urls[i])
		if ctx.Err() != nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			backoff = 250 * time.Millisecond
		}
		if len(urls) > 1 && i+1 < len(urls) {
			m.log.Warn("coordinator session ended; trying the next coordinator", "coordinator", urls[i], "next", urls[i+1], "err", err)
			continue
		}
		m.log.Warn("coordinator session ended; reconnecting", "coordinator", urls[i], "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Models returns the models the miner offers: configured, or the runner's.
func (m *Miner) Models(ctx context.Context) ([]string, error) { return m.models(ctx) }

func (m *Miner) models(ctx context.Context) ([]string, error) {
	if len(m.cfg.Models) > 0 {
		return m.cfg.Models, nil
	}
	ms, err := m.cfg.Runner.Models(ctx)
	if err != nil {
		return nil, fmt.Errorf("miner: %s backend models: %w", m.cfg.Runner.Name(), err)
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("miner: the %s backend serves no model", m.cfg.Runner.Name())
	}
	return ms, nil
}

// EnsureRegistered registers the miner with its stake, or updates its
// capabilities if they changed, and waits until the chain shows them.
func (m *Miner) EnsureRegistered(ctx context.Context, models []string) error {
	if err := m.ensureCaps(ctx, models); err != nil {
		return err
	}
	return m.ensureProvider(ctx)
}

// ensureProvider names Config.Provider on chain unless the miner already
// does, and waits for it to be committed.
func (m *Miner) ensureProvider(ctx context.Context) error {
	want := m.cfg.Provider
	if want == nil {
		return nil
	}
	same := func() bool {
		cur, err := miners.Query(ctx, m.cfg.Chain, m.addr)
		return err == nil && cur.Provider != nil && *cur.Provider == *want
	}
	if same() {
		return nil
	}
	m.log.Info("naming the marketplace provider this miner works for", "provider", want.String())
	if _, err := m.cfg.Sender.Send(ctx, miners.NewSetProviderMsg(want)); err != nil {
		return fmt.Errorf("miner: naming provider %s: %w", want, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if same() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("miner: naming provider %s not committed after 2 minutes", want)
}

func (m *Miner) ensureCaps(ctx context.Context, models []string) error {
	caps := miners.Capabilities{Models: models, GPU: m.cfg.GPU, GPUMemoryMB: m.cfg.GPUMemoryMB, PricePer1k: m.cfg.PricePer1k}
	cur, err := miners.Query(ctx, m.cfg.Chain, m.addr)
	var msg tx.Msg
	switch {
	case err != nil && httpx.IsCode(err, miners.ErrMinerNotFound.Name):
		if msg, err = miners.NewRegisterMsg(caps, m.cfg.Stake); err != nil {
			return err
		}
		m.log.Info("registering miner", "address", m.addr.String(), "stake", m.cfg.Stake.String(), "models", models, "price_per_1k", m.cfg.PricePer1k.String())
	case err != nil:
		return fmt.Errorf("miner: chain: %w", err)
	case cur.Status != "active":
		return fmt.Errorf("miner: %s is unbonding until height %d; wait, then start again", m.addr, cur.UnbondAt)
	case sameCaps(cur, caps):
		return nil
	default:
		if msg, err = miners.NewUpdateMsg(caps); err != nil {
			return err
		}
		m.log.Info("updating miner capabilities", "models", models, "price_per_1k", m.cfg.PricePer1k.String())
	}
	if _, err := m.cfg.Sender.Send(ctx, msg); err != nil {
		return fmt.Errorf("miner: register: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		cur, err := miners.Query(ctx, m.cfg.Chain, m.addr)
		if err == nil && cur.Status == "active" && sameCaps(cur, caps) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return errors.New("miner: registration not committed after 2 minutes")
}

func sameCaps(cur miners.View, c miners.Capabilities) bool {
	if cur.PricePer1k != c.PricePer1k || cur.GPU != c.GPU || cur.GPUMemoryMB != c.GPUMemoryMB || len(cur.Models) != len(c.Models) {
		return false
	}
	for i := range c.Models {
		if cur.Models[i] != c.Models[i] {
			return false
		}
	}
	return true
}

func (m *Miner) heartbeats(ctx context.Context) {
	t := time.NewTicker(m.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := m.cfg.Sender.Send(ctx, miners.NewHeartbeatMsg()); err != nil && ctx.Err() == nil {
				m.log.Warn("heartbeat", "err", err)
			}
		}
	}
}

func wsURL(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/") + "/v1/miners/connect")
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	}
	return u.String(), nil
}

// session holds one coordinator session until it ends.
func (m *Miner) session(ctx context.Context, models []string, coordinator string) error {
	u, err := wsURL(coordinator)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: &http.Client{}})
	cancel()
	if err != nil {
		return fmt.Errorf("miner: connect %s: %w", u, err)
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()

	var ch minerproto.Envelope
	if err := wsjson.Read(sctx, c, &ch); err != nil || ch.Type != minerproto.TypeChallenge {
		return fmt.Errorf("miner: expected a challenge: %v", err)
	}
	nonce, err := hex.DecodeString(ch.Nonce)
	if err != nil {
		return fmt.Errorf("miner: bad challenge nonce")
	}
	coord, err := address.Parse(ch.Coordinator)
	if err != nil {
		return fmt.Errorf("miner: bad coordinator address: %w", err)
	}
	hello := &minerproto.Hello{Models: models, Slots: m.cfg.Slots, Backend: m.cfg.Runner.Name(), Hardware: m.cfg.Hardware, Version: m.cfg.Version}
	if m.cfg.Vision != nil {
		vs, err := m.cfg.Vision.VisionModels(sctx)
		if err != nil {
			// Without the list the miner still serves text: a job with
			// images just goes elsewhere.
			m.log.Warn("miner: cannot tell which models read images", "err", err)
		}
		hello.Vision = vs
	}
	minerproto.SignHello(hello, m.cfg.Key, nonce, coord)
	if err := wsjson.Write(sctx, c, minerproto.Envelope{Type: minerproto.TypeHello, Hello: hello}); err != nil {
		return err
	}
	var w minerproto.Envelope
	if err := wsjson.Read(sctx, c, &w); err != nil {
		return fmt.Errorf("miner: handshake: %w", err)
	}
	if w.Type == minerproto.TypeError {
		return fmt.Errorf("miner: coordinator refused the session: %s: %s", w.Code, w.Message)
	}
	if w.Type != minerproto.TypeWelcome {
		return fmt.Errorf("miner: unexpected %q in handshake", w.Type)
	}
	m.setConnected(true)
	defer m.setConnected(false)
	m.log.Info("connected to coordinator", "coordinator", coord.String(), "chain", ch.ChainID, "models", models, "slots", m.cfg.Slots)

	send := func(e minerproto.Envelope) error {
		wctx, cancel := context.WithTimeout(sctx, 10*time.Second)
		defer cancel()
		return wsjson.Write(wctx, c, e)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer scancel() // running jobs end with the session: the coordinator gave them to others
	// Running jobs by id and attempt, so that the coordinator's cancel
	// (the chain canceled or expired the job, or it was taken back) stops
	// the work and frees the slot.
	var runMu sync.Mutex
	running := map[string]context.CancelFunc{}
	key := func(id string, attempt int) string { return fmt.Sprintf("%s/%d", id, attempt) }
	for {
		var e minerproto.Envelope
		if err := wsjson.Read(sctx, c, &e); err != nil {
			return fmt.Errorf("miner: session: %w", err)
		}
		if e.Type == minerproto.TypeCancel {
			runMu.Lock()
			stop := running[key(e.JobID, e.Attempt)]
			runMu.Unlock()
			if stop != nil {
				m.log.Info("job canceled by the coordinator", "job", e.JobID, "why", e.Reason)
				stop()
			}
			continue
		}
		if e.Type != minerproto.TypeJob || e.Job == nil {
			continue
		}
		job := e.Job
		if !m.take() {
			_ = send(minerproto.Envelope{Type: minerproto.TypeReject, JobID: job.ID, Attempt: job.Attempt, Reason: "all slots busy"})
			continue
		}
		if err := send(minerproto.Envelope{Type: minerproto.TypeAck, JobID: job.ID, Attempt: job.Attempt}); err != nil {
			m.release(0)
			return err
		}
		jctx, jcancel := context.WithCancel(sctx)
		k := key(job.ID, job.Attempt)
		runMu.Lock()
		running[k] = jcancel
		runMu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				runMu.Lock()
				delete(running, k)
				runMu.Unlock()
				jcancel()
			}()
			out := m.runJob(jctx, job, send)
			if out.Type == minerproto.TypeFailed && sctx.Err() != nil {
				// The miner is stopping or lost its session: the job did
				// not fail here. Reporting a failure would make the
				// coordinator hold the job against this miner for good;
				// the dropped session has it requeued as lost instead.
				m.log.Info("job interrupted by the session ending", "job", job.ID)
				return
			}
			if jctx.Err() != nil {
				// The coordinator canceled it: it expects nothing more,
				// and a receipt for it would not be settled.
				return
			}
			if err := send(out); err != nil {
				m.log.Warn("result not delivered", "job", job.ID, "err", err)
			}
		}()
	}
}

func (m *Miner) currentCoordinator() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.coord
}

func (m *Miner) setCoordinator(u string) {
	m.mu.Lock()
	m.coord = u
	m.mu.Unlock()
}

func (m *Miner) setConnected(v bool) {
	m.mu.Lock()
	m.conn = v
	m.mu.Unlock()
}

func (m *Miner) take() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running >= m.cfg.Slots {
		return false
	}
	m.running++
	return true
}

func (m *Miner) release(tokens int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running--
	if tokens >= 0 {
		m.tokens += uint64(tokens)
	}
}

// runJob runs job and returns the message that ends it: a result with a
// signed receipt, or a failure.
func (m *Miner) runJob(ctx context.Context, job *minerproto.Job, send func(minerproto.Envelope) error) minerproto.Envelope {
	fail := func(err error, retryable bool) minerproto.Envelope {
		m.release(-1)
		m.log.Warn("job failed", "job", job.ID, "err", err)
		return minerproto.Envelope{Type: minerproto.TypeFailed, JobID: job.ID, Attempt: job.Attempt, Message: err.Error(), Retryable: retryable}
	}
	price, err := coin.Parse(job.PricePer1k)
	if err != nil {
		return fail(fmt.Errorf("bad price %q", job.PricePer1k), false)
	}
	if price != m.cfg.PricePer1k {
		return fail(fmt.Errorf("coordinator offers %s per 1k, this miner charges %s", price, m.cfg.PricePer1k), true)
	}
	id, err := hex.DecodeString(job.ID)
	cust, cerr := address.Parse(job.Customer)
	ph, perr := hex.DecodeString(job.PromptHash)
	want := minerproto.PromptHash(job.Prompt, job.Messages)
	if err != nil || len(id) != jobs.IDLen || cerr != nil || perr != nil || string(ph) != string(want[:]) {
		return fail(errors.New("malformed job (id, customer or prompt hash)"), false)
	}
	start := time.Now()
	seq := 0
	out, err := m.cfg.Runner.Run(ctx, job, func(text string) error {
		seq++
		return send(minerproto.Envelope{Type: minerproto.TypeToken, JobID: job.ID, Attempt: job.Attempt, Seq: seq, Text: text})
	})
	if err != nil {
		return fail(err, !errors.Is(err, ErrBadJob))
	}
	end := time.Now()
	res := sha256.Sum256([]byte(out.Text))
	r := jobs.Receipt{
		JobID: id, ChainID: job.ChainID, Customer: cust[:], Model: job.Model, PromptHash: ph, ResultHash: res[:],
		TokensIn: uint64(out.TokensIn), TokensOut: uint64(out.TokensOut), StartMs: start.UnixMilli(), EndMs: end.UnixMilli(),
		Price: jobs.PriceFor(uint64(out.TokensOut), price),
	}
	if len(out.Attestation) > 0 {
		h := sha256.Sum256(out.Attestation)
		r.AttestHash = h[:]
	}
	r.SignWith(m.cfg.Key.PublicKey(), m.cfg.Key.Sign)
	b, err := r.Encode()
	if err != nil {
		return fail(err, true)
	}
	m.release(out.TokensOut)
	m.mu.Lock()
	m.done++
	m.mu.Unlock()
	m.log.Info("job done", "job", job.ID, "tokens_out", out.TokensOut, "price", r.Price.String(), "took", end.Sub(start).Round(time.Millisecond))
	env := minerproto.Envelope{Type: minerproto.TypeResult, JobID: job.ID, Attempt: job.Attempt, Text: out.Text,
		TokensIn: out.TokensIn, TokensOut: out.TokensOut, FinishReason: out.FinishReason, Receipt: b, Attestation: out.Attestation}
	if job.Private { // private.go
		if env.PrivateReceipt, env.ZKBlinding, err = privateReceipt(&r, price, m.cfg.Key.PublicKey(), m.cfg.Key.Sign); err != nil {
			return fail(err, true)
		}
	}
	return env
}

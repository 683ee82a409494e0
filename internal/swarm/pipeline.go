package swarm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Directory lists the span servers of a model (the chain's agent
// registry, a coordinator's miner list, or a fixed list in tests).
type Directory interface {
	Peers(ctx context.Context, model string) ([]Peer, error)
}

// StaticPeers is a fixed Directory.
type StaticPeers []Peer

// Peers returns the list.
func (s StaticPeers) Peers(context.Context, string) ([]Peer, error) { return s, nil }

// Pipeline drives generations through span servers.
type Pipeline struct {
	HTTP *http.Client
	Dir  Directory
	// Bans are shared by the generations of this Pipeline (nil: each
	// generation has its own).
	Bans *Bans
	Mode Mode
	Log  *slog.Logger
	// MaxRepairs bounds the route repairs of one generation (default 8).
	MaxRepairs int
}

// GenerateRequest is one greedy generation through a route.
type GenerateRequest struct {
	Model     string
	Layers    int   // the model's layer count
	Prompt    []int // token ids, BOS included when the model wants it
	MaxTokens int
	Stop      []int // token ids that end the generation (BOS, EOS)
	// Job and ChainID, when set, name the job every session serves: each
	// server that signs returns its stage receipt (Result.Stages).
	Job     []byte
	ChainID string
}

// Result is a generation's outcome.
type Result struct {
	Tokens    []int
	Route     []Hop // the route at the end
	Repairs   int   // route repairs after failures
	Stopped   bool  // a stop token ended it (rather than MaxTokens)
	LayerWork map[string]uint64
	// Stages are the servers' last stage receipts (GenerateRequest.Job):
	// the final route's sessions in layer order (the first RouteStages),
	// then those of servers dropped or replaced on the way, each once.
	Stages      []jobs.StageReceipt
	RouteStages int
}

// ErrFailed is wrapped when a generation cannot go on (repairs exhausted).
var ErrFailed = errors.New("swarm: generation failed")

// run is the state of one generation.
type run struct {
	p       *Pipeline
	req     GenerateRequest
	id      string
	seq     int
	hops    []Hop
	sess    []string
	toks    []int             // every position's input to layer 0
	hist    map[int][]float32 // every position's input to layer b (a hop start), rows of dim
	dim     int
	repairs int
	work    map[string]uint64
	bans    *Bans
	log     *slog.Logger
	stages  map[string]jobs.StageReceipt // by session id: the last receipt
	order   []string                     // session ids in the order first used
}

// Generate runs req greedily, calling onToken (if not nil) with each
// token and its position as soon as it is chosen. Failures of a span
// server are repaired transparently: the tokens already handed to onToken
// are never repeated and none is skipped.
func (p *Pipeline) Generate(ctx context.Context, req GenerateRequest, onToken func(id, pos int) error) (Result, error) {
	if len(req.Prompt) == 0 || req.Layers <= 0 || req.MaxTokens < 0 {
		return Result{}, errors.New("swarm: a generation needs a prompt, layers and a non-negative token limit")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	r := &run{p: p, req: req, id: hex.EncodeToString(b[:]), hist: map[int][]float32{}, work: map[string]uint64{}, bans: p.Bans, log: p.Log,
		stages: map[string]jobs.StageReceipt{}}
	if r.bans == nil { // bans then last one generation; share a Bans to keep them
		r.bans = NewBans(0, 0)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	peers, err := p.Dir.Peers(ctx, req.Model)
	if err != nil {
		return Result{}, fmt.Errorf("swarm: list span servers: %w", err)
	}
	hops, err := Route(req.Model, 0, req.Layers, peers, p.Mode, r.bans.Banned)
	if err != nil {
		return Result{}, err
	}
	r.setHops(0, hops)
	defer r.closeSessions(0)

	res := Result{LayerWork: r.work}
	var logits []float32
	for off := 0; off < len(req.Prompt); off += MaxRows {
		if logits, err = r.step(ctx, req.Prompt[off:min(off+MaxRows, len(req.Prompt))], off); err != nil {
			return r.result(res), err
		}
	}
	pos := len(req.Prompt)
	for len(res.Tokens) < req.MaxTokens {
		next := argmax(logits)
		if slices.Contains(req.Stop, next) {
			res.Stopped = true
			break
		}
		res.Tokens = append(res.Tokens, next)
		if onToken != nil {
			if err := onToken(next, pos); err != nil {
				return r.result(res), fmt.Errorf("swarm: token callback: %w", err)
			}
		}
		if len(res.Tokens) == req.MaxTokens || pos+1 > maxContext {
			break
		}
		if logits, err = r.step(ctx, []int{next}, pos); err != nil {
			return r.result(res), err
		}
		pos++
	}
	return r.result(res), nil
}

// maxContext bounds a generation's positions (the servers enforce the
// model's own context too).
const maxContext = 1 << 20

func (r *run) result(res Result) Result {
	res.Route, res.Repairs = r.hops, r.repairs
	res.Stages, res.RouteStages = nil, 0
	final := map[string]bool{}
	for _, id := range r.sess {
		if st, ok := r.stages[id]; ok {
			res.Stages = append(res.Stages, st)
			res.RouteStages++
		}
		final[id] = true
	}
	for _, id := range r.order {
		if st, ok := r.stages[id]; ok && !final[id] {
			res.Stages = append(res.Stages, st)
		}
	}
	return res
}

// argmax returns the index of the first largest value, as the engine's
// greedy sampler does, so that routes reproduce it token for token.
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// setHops replaces the route from hop i on, with fresh session ids.
func (r *run) setHops(i int, hops []Hop) {
	r.hops = append(r.hops[:i], hops...)
	r.sess = r.sess[:i]
	for range hops {
		r.seq++
		r.sess = append(r.sess, r.id+"-"+strconv.Itoa(r.seq))
	}
}

// payload is a hop's input or output: tokens (layer 0) or hidden rows.
type payload struct {
	tokens []int
	hidden []float32
	rows   int
}

// step runs positions pos0.. (tokens) through the whole route and
// returns the logits of the last one, repairing the route on failures.
func (r *run) step(ctx context.Context, tokens []int, pos0 int) ([]float32, error) {
	cur := payload{tokens: tokens, rows: len(tokens)}
	for i := 0; i < len(r.hops); i++ {
		h := r.hops[i]
		r.record(h.First, pos0, cur)
		out, err := r.forward(ctx, i, pos0, cur)
		if err == nil {
			r.bans.Succeed(h.Peer.ID)
			if h.Last == r.req.Layers {
				return out.hidden, nil
			}
			cur = out
			continue
		}
		if !retryable(ctx, err) {
			return nil, err
		}
		if err := r.repair(ctx, i, pos0, err); err != nil {
			return nil, err
		}
		i-- // run the same input through the repaired hop i
	}
	return nil, fmt.Errorf("%w: the route does not reach layer %d", ErrFailed, r.req.Layers)
}

// record keeps rows pos0.. as the input of layer b for replays (a retry
// of the same positions overwrites them).
func (r *run) record(b, pos0 int, in payload) {
	if b == 0 {
		r.toks = append(r.toks[:pos0], in.tokens...)
		return
	}
	r.hist[b] = append(r.hist[b][:pos0*r.dim], in.hidden...)
}

// retryable reports whether err is the server's fault (dead, overloaded,
// restarted) rather than the request's or the caller's.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *httpx.APIError
	if errors.As(err, &ae) {
		// 5xx, a lost session (409: the server restarted or expired it) or
		// a span it no longer serves; a 400 (past the context, bad shape)
		// would fail on any server alike.
		return ae.Status >= 500 || ae.Status == http.StatusConflict && (ae.Code == CodeNoSession || ae.Code == CodePosition) ||
			ae.Status == http.StatusNotFound && ae.Code == CodeSpanNotServed
	}
	return true // transport: refused, reset, timed out
}

// repair bans hop i's server, routes layers [hops[i].First, Layers)
// around it and replays positions 0..pos0-1 into the new hops' caches.
func (r *run) repair(ctx context.Context, i, pos0 int, cause error) error {
	for {
		bad := r.hops[i].Peer
		ban := r.bans.Fail(bad.ID)
		r.repairs++
		r.log.Warn("span server failed; rerouting", "peer", bad.ID, "layers", fmt.Sprintf("%d-%d", r.hops[i].First, r.hops[i].Last-1), "ban", ban, "err", cause)
		if r.repairs > r.maxRepairs() {
			return fmt.Errorf("%w: %d route repairs, last: %w", ErrFailed, r.repairs-1, cause)
		}
		r.closeSessions(i)
		peers, err := r.p.Dir.Peers(ctx, r.req.Model)
		if err != nil {
			return fmt.Errorf("swarm: list span servers: %w", err)
		}
		hops, err := Route(r.req.Model, r.hops[i].First, r.req.Layers, peers, r.p.Mode, r.bans.Banned)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrFailed, err)
		}
		r.setHops(i, hops)
		j, err := r.replay(ctx, i, pos0)
		if err == nil {
			return nil
		}
		if !retryable(ctx, err) {
			return err
		}
		i, cause = j, err // hop j failed during the replay: repair from there
	}
}

func (r *run) maxRepairs() int {
	if r.p.MaxRepairs > 0 {
		return r.p.MaxRepairs
	}
	return 8
}

// replay sends positions 0..pos0-1 of hop i's input through hops i.. so
// that their caches hold the session's past; on failure it returns the
// index of the hop that failed.
func (r *run) replay(ctx context.Context, i, pos0 int) (int, error) {
	for off := 0; off < pos0; off += MaxRows {
		n := min(MaxRows, pos0-off)
		var cur payload
		if b := r.hops[i].First; b == 0 {
			cur = payload{tokens: r.toks[off : off+n], rows: n}
		} else {
			cur = payload{hidden: r.hist[b][off*r.dim : (off+n)*r.dim], rows: n}
		}
		for j := i; j < len(r.hops); j++ {
			if j > i {
				r.record(r.hops[j].First, off, cur)
			}
			out, err := r.forward(ctx, j, off, cur)
			if err != nil {
				return j, err
			}
			cur = out
		}
	}
	return i, nil
}

// forward sends one request to hop i. For the last hop the returned
// payload's hidden holds the logits.
func (r *run) forward(ctx context.Context, i, pos0 int, in payload) (payload, error) {
	h := r.hops[i]
	req := ForwardRequest{Session: r.sess[i], Model: r.req.Model, First: h.First, Last: h.Last, Pos: pos0, Rows: in.rows}
	if h.First == 0 {
		req.Tokens = in.tokens
	} else {
		req.Dim, req.Hidden = r.dim, EncodeFloats(in.hidden)
	}
	if len(r.req.Job) > 0 {
		req.Job, req.ChainID = hex.EncodeToString(r.req.Job), r.req.ChainID
	}
	var resp ForwardResponse
	if err := httpx.Do(ctx, r.p.HTTP, http.MethodPost, strings.TrimSuffix(h.Peer.URL, "/")+PathForward, nil, req, &resp); err != nil {
		return payload{}, fmt.Errorf("span %s layers %d-%d: %w", h.Peer.ID, h.First, h.Last-1, err)
	}
	if err := r.keepReceipt(h, req, resp.Receipt); err != nil {
		return payload{}, fmt.Errorf("span %s layers %d-%d: %w", h.Peer.ID, h.First, h.Last-1, err)
	}
	r.work[h.Peer.ID] += uint64(in.rows * (h.Last - h.First))
	if h.Last == r.req.Layers {
		if resp.Vocab <= 0 {
			return payload{}, fmt.Errorf("span %s: %w: no logits from the last span", h.Peer.ID, errShape)
		}
		logits, err := DecodeFloats(resp.Logits, resp.Vocab)
		if err != nil {
			return payload{}, fmt.Errorf("span %s: %w", h.Peer.ID, err)
		}
		return payload{hidden: logits, rows: 1}, nil
	}
	if resp.Rows != in.rows || resp.Dim <= 0 || (r.dim != 0 && resp.Dim != r.dim) {
		return payload{}, fmt.Errorf("span %s: %w: %d rows of dim %d back for %d rows", h.Peer.ID, errShape, resp.Rows, resp.Dim, in.rows)
	}
	r.dim = resp.Dim
	hidden, err := DecodeFloats(resp.Hidden, resp.Rows*resp.Dim)
	if err != nil {
		return payload{}, fmt.Errorf("span %s: %w", h.Peer.ID, err)
	}
	return payload{hidden: hidden, rows: resp.Rows}, nil
}

// closeSessions frees the sessions of hops i.. on their servers, best
// effort: a dead server frees nothing, and idle expiry covers the rest.
func (r *run) closeSessions(i int) {
	for j := i; j < len(r.hops); j++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = httpx.Do(ctx, r.p.HTTP, http.MethodDelete, strings.TrimSuffix(r.hops[j].Peer.URL, "/")+"/v1/spans/sessions/"+r.sess[j], nil, nil, nil)
		cancel()
	}
}

// ErrStageReceipt is wrapped when a server's stage receipt is missing,
// forged or says other than what was asked: the server is treated as
// failed (banned, routed around), as it could not be paid for the stage.
var ErrStageReceipt = errors.New("swarm: bad stage receipt")

// keepReceipt checks a response's stage receipt against the request and
// keeps it as the session's latest. A peer whose id is an address (the
// chain's directory) must sign with that address's key.
func (r *run) keepReceipt(h Hop, req ForwardRequest, enc string) error {
	if len(r.req.Job) == 0 {
		return nil
	}
	if enc == "" {
		if _, err := address.Parse(h.Peer.ID); err != nil {
			return nil // a server found by URL that does not sign: nothing to pay it by
		}
		return fmt.Errorf("%w: none", ErrStageReceipt)
	}
	st, err := DecodeStageReceipt(enc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStageReceipt, err)
	}
	prev := r.stages[req.Session].Tokens
	switch {
	case st.Session != req.Session || string(st.JobID) != string(r.req.Job) || st.ChainID != r.req.ChainID || st.Model != req.Model:
		return fmt.Errorf("%w: for session %s of job %x", ErrStageReceipt, st.Session, st.JobID)
	case int(st.First) != req.First || int(st.Last) != req.Last-1 || st.Tokens != prev+uint64(req.Rows):
		return fmt.Errorf("%w: layers %d-%d and %d tokens, asked %d-%d and %d", ErrStageReceipt, st.First, st.Last, st.Tokens, req.First, req.Last-1, prev+uint64(req.Rows))
	}
	if a, err := address.Parse(h.Peer.ID); err == nil && st.ServerAddr() != a {
		return fmt.Errorf("%w: signed by %s, not %s", ErrStageReceipt, st.ServerAddr(), a)
	}
	if _, seen := r.stages[req.Session]; !seen {
		r.order = append(r.order, req.Session)
	}
	r.stages[req.Session] = st
	return nil
}

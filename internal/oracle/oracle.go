// Package oracle is AITBC's metrics oracle (docs/AGENTS.md): agents post
// signed reports of their work (POST /api/v1/report, the seed's payload
// signed with the agent's ed25519 key, see package report); the oracle
// checks the structure, the signature, that the agent is registered on
// chain, that the timestamp is fresh and after the agent's last one, and
// the agent's rate; it stores the reports in SQLite, serves aggregates
// (GET /api/v1/agents/{id}/metrics), and commits each agent's aggregate
// per epoch on chain (agents/metrics, signed by the oracle's key, which
// must be one of the agents module's oracles).
package oracle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/oracle/report"
)

// DefaultListen is the oracle's address (docs/AGENTS.md).
const DefaultListen = "127.0.0.1:8010"

// Config of an oracle.
type Config struct {
	ChainID string
	// MaxSkew: a report's timestamp may be at most this far from the
	// oracle's clock, either way (60 s).
	MaxSkew time.Duration
	// MinInterval: an agent's reports must come at least this far apart
	// (10 s); sooner ones are answered 429.
	MinInterval time.Duration
	// Epoch is the length of an epoch (1 h; a devnet's 1 min): reports are
	// aggregated per epoch of their timestamps, and each finished epoch's
	// aggregate is committed on chain.
	Epoch time.Duration
	// Retention: reports of committed epochs older than this are deleted
	// (30 days); their aggregates stay on chain.
	Retention time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxSkew <= 0 {
		c.MaxSkew = time.Minute
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 10 * time.Second
	}
	if c.Epoch <= 0 {
		c.Epoch = time.Hour
	}
	if c.Retention <= 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// Submitter signs msg with the oracle's key and submits it, returning the
// transaction's hash.
type Submitter func(ctx context.Context, msg tx.Msg) (string, error)

// Oracle serves reports and commits epochs.
type Oracle struct {
	cfg    Config
	store  *Store
	node   module.Getter
	submit Submitter
}

// New returns an oracle over store, checking registrations on node and
// committing through submit (nil: the oracle only collects).
func New(cfg Config, store *Store, node module.Getter, submit Submitter) *Oracle {
	return &Oracle{cfg: cfg.withDefaults(), store: store, node: node, submit: submit}
}

// EpochOf is the epoch of a Unix-seconds timestamp.
func (o *Oracle) EpochOf(ts int64) int64 { return ts / int64(o.cfg.Epoch/time.Second) }

// Errors of a report, each with its code and status (one table: codes).
var (
	ErrUnregistered = errors.New("agent not registered on chain")
	ErrAgentKey     = errors.New("the payload's agent is not the signing key's address")
	ErrStale        = errors.New("timestamp too far from the oracle's clock")
)

type code struct {
	err    error
	status int
	code   string
}

var codes = []code{
	{report.ErrMalformed, http.StatusBadRequest, "malformed_report"},
	{report.ErrSignature, http.StatusUnauthorized, "bad_signature"},
	{ErrAgentKey, http.StatusUnauthorized, "agent_key_mismatch"},
	{ErrUnregistered, http.StatusForbidden, "agent_not_registered"},
	{ErrStale, http.StatusBadRequest, "stale_timestamp"},
	{ErrReplay, http.StatusConflict, "replayed_timestamp"},
	{ErrRate, http.StatusTooManyRequests, "rate_limited"},
	{httpx.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
	{agents.ErrAddress, http.StatusBadRequest, "invalid_agent_address"},
}

func writeErr(w http.ResponseWriter, err error) {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			httpx.WriteError(w, c.status, c.code, err.Error())
			return
		}
	}
	httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
}

// Accept checks and stores one report; the id of the stored report.
func (o *Oracle) Accept(ctx context.Context, r report.Request) (int64, error) {
	p, pub, err := report.Verify(o.cfg.ChainID, r)
	if err != nil {
		return 0, err
	}
	agent := address.FromPubKey(pub)
	if p.Agent != agent.String() {
		return 0, fmt.Errorf("%w: payload says %s, the key is %s's", ErrAgentKey, p.Agent, agent)
	}
	now := o.cfg.Now()
	if d := time.Duration(math.Abs(float64(now.Unix()-p.Timestamp))) * time.Second; d > o.cfg.MaxSkew {
		return 0, fmt.Errorf("%w: %d is %s from %d (at most %s)", ErrStale, p.Timestamp, d, now.Unix(), o.cfg.MaxSkew)
	}
	// The chain check is network I/O; it runs before the store's
	// transaction, never inside it.
	if _, err := agents.Query(ctx, o.node, agent); err != nil {
		if httpx.IsCode(err, "agent_not_found") {
			return 0, fmt.Errorf("%w: %s", ErrUnregistered, agent)
		}
		return 0, fmt.Errorf("checking %s on chain: %w", agent, err)
	}
	return o.store.Add(ctx, p, o.EpochOf(p.Timestamp), now.UnixMilli(), o.cfg.MinInterval.Milliseconds(), r.Payload, r.Signature)
}

// Routes are the oracle's routes (docs/api/oracle.openapi.yaml).
var Routes = []string{"POST /api/v1/report", "GET /api/v1/agents/{id}/metrics", "GET /api/v1/health"}

// Codes are the error codes the oracle answers, with their statuses.
func Codes() map[string]int {
	out := map[string]int{}
	for _, c := range codes {
		out[c.code] = c.status
	}
	return out
}

// MetricsView is GET /api/v1/agents/{id}/metrics.
type MetricsView struct {
	Total   Aggregate `json:"total"`
	Current Aggregate `json:"current_epoch"`
	Commits []Commit  `json:"commits"` // the last committed epochs, newest first
}

// Handler serves the oracle's API.
func (o *Oracle) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/report", func(w http.ResponseWriter, r *http.Request) {
		var req report.Request
		if err := httpx.DecodeJSONLimit(r, &req, report.MaxBody); err != nil {
			if errors.Is(err, httpx.ErrBodyTooLarge) {
				writeErr(w, err)
				return
			}
			writeErr(w, fmt.Errorf("%w: %v", report.ErrMalformed, err))
			return
		}
		id, err := o.Accept(r.Context(), req)
		if err != nil {
			writeErr(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, report.Ack{Status: "success", ID: id})
	})
	mux.HandleFunc("GET /api/v1/agents/{id}/metrics", func(w http.ResponseWriter, r *http.Request) {
		a, err := address.Parse(r.PathValue("id"))
		if err != nil {
			writeErr(w, fmt.Errorf("%w: %v", agents.ErrAddress, err))
			return
		}
		ctx := r.Context()
		var v MetricsView
		if v.Total, err = o.store.Aggregate(ctx, a.String(), -1); err == nil {
			if v.Current, err = o.store.Aggregate(ctx, a.String(), o.EpochOf(o.cfg.Now().Unix())); err == nil {
				v.Commits, err = o.store.Commits(ctx, a.String(), 20)
			}
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("GET /api/v1/health", func(w http.ResponseWriter, r *http.Request) {
		n, err := o.store.Count(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "chain_id": o.cfg.ChainID, "reports": n, "epoch_seconds": int64(o.cfg.Epoch / time.Second)})
	})
	mux.Handle("/", httpx.NotFound(Routes))
	return mux
}

// CommitFinished commits the aggregate of every (agent, epoch) whose epoch
// has ended and that has no commit yet, oldest first; it returns how many
// it committed. A refusal by the chain that retrying cannot fix (the agent
// deregistered, an epoch already committed, a key that is not an oracle)
// is recorded and not retried.
func (o *Oracle) CommitFinished(ctx context.Context) (int, error) {
	if o.submit == nil {
		return 0, nil
	}
	if _, err := o.store.Prune(ctx, o.EpochOf(o.cfg.Now().Add(-o.cfg.Retention).Unix())); err != nil {
		return 0, err
	}
	pending, err := o.store.Pending(ctx, o.EpochOf(o.cfg.Now().Unix()), 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pe := range pending {
		agent, epoch := pe[0].(string), pe[1].(int64)
		a, err := address.Parse(agent)
		if err != nil {
			return n, err
		}
		ag, err := o.store.Aggregate(ctx, agent, epoch)
		if err != nil {
			return n, err
		}
		h, err := o.submit(ctx, agents.NewMetricsMsg(a, agents.Metrics{Epoch: uint64(epoch), Reports: ag.Reports, ProcessedTokens: ag.ProcessedTokens,
			TasksCompleted: ag.TasksCompleted, AvgLatencyMs: uint64(math.Round(ag.AvgLatencyMs)), UptimeSeconds: ag.UptimeSeconds}))
		if err != nil {
			// Refusals that retrying cannot fix: the agent deregistered, the
			// epoch is committed already, or the chain's genesis does not
			// name this oracle (a devnet home older than its oracle).
			if httpx.IsCode(err, "agent_not_found") || httpx.IsCode(err, "stale_metrics_epoch") || httpx.IsCode(err, "not_an_oracle") {
				o.cfg.Log.Warn("oracle: epoch not committed", "agent", agent, "epoch", epoch, "err", err)
				if err := o.store.Committed(ctx, agent, epoch, "", err.Error()); err != nil {
					return n, err
				}
				continue
			}
			return n, fmt.Errorf("committing %s epoch %d: %w", agent, epoch, err)
		}
		if err := o.store.Committed(ctx, agent, epoch, h, ""); err != nil {
			return n, err
		}
		o.cfg.Log.Info("oracle: epoch committed", "agent", agent, "epoch", epoch, "reports", ag.Reports, "tx", h)
		n++
	}
	return n, nil
}

// RunCommitter commits finished epochs every interval until ctx ends.
func (o *Oracle) RunCommitter(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := o.CommitFinished(ctx); err != nil && ctx.Err() == nil {
				o.cfg.Log.Warn("oracle: commit", "err", err)
			}
		}
	}
}

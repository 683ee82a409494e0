package coordinator

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// Label caps: a label whose values come from users (a model name, a
// tenant) keeps apart at most this many values per process; later ones
// share the label LabelOther, so a flood of new tenants or made-up models
// cannot grow the exposition without bound. Models are counted only for
// settled jobs (a miner served them) and tenants only once authenticated,
// so in practice the caps are far above what is seen.
const (
	MaxModelLabels  = 64
	MaxTenantLabels = 200
	LabelOther      = "other"
)

type metrics struct {
	submitted      *prometheus.CounterVec
	finished       *prometheus.CounterVec
	dispatches     prometheus.Counter
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	firstToken     prometheus.Histogram
	jobDuration    *prometheus.HistogramVec
	queueWait      *prometheus.HistogramVec
	tokens         *prometheus.CounterVec
	settleFailures prometheus.Counter
	tenantRequests *prometheus.CounterVec

	// Shared stores (shared.go, relay.go).
	leases          *prometheus.CounterVec
	offersMade      prometheus.Counter
	offersTaken     *prometheus.CounterVec
	remoteFollowers prometheus.Gauge
	relaysStarted   prometheus.Counter
	relayedTokens   prometheus.Counter

	models, tenants *labelCap
}

func newMetrics(reg *prometheus.Registry, s *Service) *metrics {
	m := &metrics{
		submitted:  prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "jobs_submitted_total", Help: "Jobs accepted, by payment mode."}, []string{"payment"}),
		finished:   prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "jobs_finished_total", Help: "Jobs that reached a final status."}, []string{"status"}),
		dispatches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "dispatches_total", Help: "Jobs sent to miners (attempts)."}),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "http_requests_total", Help: "API requests by route and status."}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "http_request_seconds", Help: "API latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route"}),
		firstToken: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "first_token_seconds", Help: "From submission to the first streamed token.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "job_duration_seconds", Help: "From submission to a job's final status (settled on chain, failed, expired), by that status.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}}, []string{"status"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "queue_wait_seconds", Help: "How long a job waited for a miner: from submission (attempt first) or from its requeue (attempt retry) to its dispatch.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"attempt"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "tokens_total", Help: "Tokens of settled jobs by model and direction (in: prompt, out: generated); models beyond the cap are counted as other."}, []string{"model", "direction"}),
		settleFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "settlement_failures_total",
			Help: "Settlement transactions that failed (refused by the chain or not submitted); the coordinator retries them."}),
		tenantRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "tenant_requests_total", Help: "Authenticated API requests by tenant id; tenants beyond the cap are counted as other."}, []string{"tenant"}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "lease_events_total",
			Help: "Job leases on a shared store: taken_over (this coordinator took over jobs whose coordinator stopped renewing), expired (this coordinator's lease ran out and another took the job)."}, []string{"event"}),
		offersMade: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "offers_made_total",
			Help: "Queued jobs offered to the other coordinators of a shared store (no free miner here)."}),
		offersTaken: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "offers_taken_total",
			Help: "Offered jobs taken: here (from another coordinator's offer) or by_other (this coordinator's offer, taken by another)."}, []string{"by"}),
		remoteFollowers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "follower_streams",
			Help: "Customer streams here following a job another coordinator of a shared store drives."}),
		relaysStarted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "token_relays_total",
			Help: "Jobs driven here whose tokens were relayed through the shared store to followers on other coordinators."}),
		relayedTokens: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "relayed_tokens_total",
			Help: "Tokens written to the shared store for followers on other coordinators."}),
		models:  newLabelCap(MaxModelLabels),
		tenants: newLabelCap(MaxTenantLabels),
	}
	reg.MustRegister(m.submitted, m.finished, m.dispatches, m.requests, m.latency, m.firstToken,
		m.jobDuration, m.queueWait, m.tokens, m.settleFailures, m.tenantRequests,
		m.leases, m.offersMade, m.offersTaken, m.remoteFollowers, m.relaysStarted, m.relayedTokens,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "leases_held",
			Help: "Active jobs whose lease this coordinator holds on a shared store (0 on a store of its own)."},
			func() float64 {
				if _, ok := s.cfg.Store.(store.Shared); !ok {
					return 0
				}
				s.mu.Lock()
				defer s.mu.Unlock()
				return float64(len(s.live))
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "jobs_queued", Help: "Jobs waiting for a miner."},
			func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(s.queue.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "miners_connected", Help: "Miners with an open session."},
			func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(len(s.miners)) }),
	)
	for _, e := range []string{"taken_over", "expired"} {
		m.leases.WithLabelValues(e) // shown at 0 before the first
	}
	for _, b := range []string{"here", "by_other"} {
		m.offersTaken.WithLabelValues(b)
	}
	return m
}

// jobFinished records a job that reached its final status at now: its
// status, its duration and, once settled, its tokens.
func (m *metrics) jobFinished(j *store.Job, now time.Time) {
	m.finished.WithLabelValues(j.Status).Inc()
	if !j.Created.IsZero() && now.After(j.Created) {
		m.jobDuration.WithLabelValues(j.Status).Observe(now.Sub(j.Created).Seconds())
	}
	if j.Status == store.StatusSettled {
		model := m.models.label(j.Model)
		m.tokens.WithLabelValues(model, "in").Add(float64(max(j.TokensIn, 0)))
		m.tokens.WithLabelValues(model, "out").Add(float64(max(j.TokensOut, 0)))
	}
}

// dispatched records the dispatch at now of j (as it was while queued).
func (m *metrics) dispatched(j *store.Job, now time.Time) {
	m.dispatches.Inc()
	since, attempt := j.Created, "first"
	if j.Attempt > 0 {
		since, attempt = j.Updated, "retry" // Updated: when it went back to the queue
	}
	if !since.IsZero() && !now.Before(since) {
		m.queueWait.WithLabelValues(attempt).Observe(now.Sub(since).Seconds())
	}
}

// tenantRequest counts an authenticated request of tenant id.
func (m *metrics) tenantRequest(id string) {
	m.tenantRequests.WithLabelValues(m.tenants.label(id)).Inc()
}

// labelCap admits the first max distinct values of a label and maps the
// rest to LabelOther.
type labelCap struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func newLabelCap(n int) *labelCap { return &labelCap{max: n, seen: map[string]bool{}} }

func (c *labelCap) label(v string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[v] {
		return v
	}
	if v == "" || v == LabelOther || len(c.seen) >= c.max {
		return LabelOther
	}
	c.seen[v] = true
	return v
}

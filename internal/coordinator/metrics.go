package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	submitted  *prometheus.CounterVec
	finished   *prometheus.CounterVec
	dispatches prometheus.Counter
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	firstToken prometheus.Histogram
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
	}
	reg.MustRegister(m.submitted, m.finished, m.dispatches, m.requests, m.latency, m.firstToken,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "jobs_queued", Help: "Jobs waiting for a miner."},
			func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(s.queue.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "aitbc", Subsystem: "coordinator", Name: "miners_connected", Help: "Miners with an open session."},
			func() float64 { s.mu.Lock(); defer s.mu.Unlock(); return float64(len(s.miners)) }),
	)
	return m
}

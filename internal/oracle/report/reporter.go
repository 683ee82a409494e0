package report

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Ack is the oracle's answer to an accepted report.
type Ack struct {
	Status string `json:"status"` // "success"
	ID     int64  `json:"id"`
}

// OracleReporter sends the collector's figures to an oracle every Interval.
type OracleReporter struct {
	URL       string // the oracle's base URL
	ChainID   string
	Key       Signer
	Collector *MetricsCollector
	Interval  time.Duration // at least the oracle's min interval (10 s by default)
	Client    *http.Client
	Log       *slog.Logger
}

// Send signs and posts one snapshot. A refused or failed report puts the
// snapshot's counts back, so that the next report carries them.
func (r *OracleReporter) Send(ctx context.Context) (Ack, error) {
	agent := address.FromPubKey(r.Key.PublicKey()).String()
	p := r.Collector.Snapshot(agent)
	req, err := Sign(r.Key, r.ChainID, p)
	if err != nil {
		r.Collector.restore(p)
		return Ack{}, err
	}
	c := r.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	var ack Ack
	if err := httpx.Do(ctx, c, http.MethodPost, strings.TrimSuffix(r.URL, "/")+"/api/v1/report", nil, req, &ack); err != nil {
		r.Collector.restore(p)
		return Ack{}, err
	}
	return ack, nil
}

// Run reports every Interval until ctx ends.
func (r *OracleReporter) Run(ctx context.Context) {
	iv := r.Interval
	if iv <= 0 {
		iv = 30 * time.Second
	}
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := r.Send(ctx); err != nil && ctx.Err() == nil {
				log.Warn("oracle report refused", "oracle", r.URL, "err", err)
			}
		}
	}
}

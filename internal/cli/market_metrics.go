package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/market"
)

// Latency is a sample of one request's latency.
type Latency struct {
	What    string  `json:"what"`
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50_ms"`
	P95ms   float64 `json:"p95_ms"`
	Maxms   float64 `json:"max_ms"`
}

func latencyOf(what string, ds []time.Duration) Latency {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	l := Latency{What: what, Samples: len(ds)}
	if len(ds) > 0 {
		l.P50ms, l.P95ms, l.Maxms = ms(ds[len(ds)/2]), ms(ds[len(ds)*95/100]), ms(ds[len(ds)-1])
	}
	return l
}

// latencyMetrics measures now: 20 reads each of the marketplace's
// listings and of the node's health, and the intervals between the last
// blocks (a transaction waits up to one interval to be committed).
func (r *marketRun) latencyMetrics(ctx context.Context) error {
	var reads, health []time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		if _, err := market.QueryServices(ctx, r.node, market.ServiceFilter{}); err != nil {
			return err
		}
		reads = append(reads, time.Since(t0))
		t0 = time.Now()
		if _, err := r.node.Health(ctx); err != nil {
			return err
		}
		health = append(health, time.Since(t0))
	}
	intervals, err := r.blockIntervals(ctx, 50)
	if err != nil {
		return err
	}
	out := []Latency{latencyOf("GET /api/v1/market/services", reads), latencyOf("GET /api/v1/health", health), latencyOf("block interval (commit wait)", intervals)}
	return r.g.Print(out, func(w io.Writer) {
		for _, l := range out {
			fmt.Fprintf(w, "%-30s p50 %8.2f ms  p95 %8.2f ms  max %8.2f ms  (%d samples)\n", l.What, l.P50ms, l.P95ms, l.Maxms, l.Samples)
		}
	})
}

// blockIntervals reads the intervals between the last n blocks.
func (r *marketRun) blockIntervals(ctx context.Context, n int) ([]time.Duration, error) {
	last, err := r.node.Block(ctx, 0)
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	prev := last
	for h := last.Height - 1; h >= 1 && h > last.Height-int64(n); h-- {
		b, err := r.node.Block(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, prev.Time.Sub(b.Time))
		prev = b
	}
	return out, nil
}

// performanceMetrics reports the marketplace's activity in --period from
// the chain: records created, their rate, and the block cadence.
func (r *marketRun) performanceMetrics(ctx context.Context) error {
	recs, err := r.records(ctx)
	if err != nil {
		return err
	}
	d, err := parsePeriod(r.o.period)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	var first time.Time
	for _, x := range recs {
		counts[x.Kind]++
		if x.Time != nil && (first.IsZero() || x.Time.Before(first)) {
			first = *x.Time
		}
	}
	span := d
	if span == 0 && !first.IsZero() {
		span = time.Since(first)
	}
	intervals, err := r.blockIntervals(ctx, 50)
	if err != nil {
		return err
	}
	bl := latencyOf("block interval", intervals)
	perMin := func(n int) float64 {
		if span <= 0 {
			return 0
		}
		return float64(n) / span.Minutes()
	}
	out := map[string]any{"period": orAll(r.o.period), "bids": counts["bid"], "agreements": counts["agreement"], "payouts": counts["payout"],
		"records_per_minute": perMin(len(recs)), "block_interval": bl}
	return r.g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "period %s: %d bids, %d agreements, %d payouts: %.2f marketplace records per minute\n", orAll(r.o.period), counts["bid"], counts["agreement"], counts["payout"], perMin(len(recs)))
		fmt.Fprintf(w, "blocks: interval p50 %.0f ms, p95 %.0f ms over the last %d\n", bl.P50ms, bl.P95ms, bl.Samples)
	})
}

// privacyAudit shows what the chain holds of a service's jobs (hashes of
// prompts and results, never their text) and what the coordinator keeps.
func (r *marketRun) privacyAudit(ctx context.Context) error {
	if err := need("service-id", r.o.serviceID); err != nil {
		return err
	}
	s, err := market.QueryService(ctx, r.node, r.o.serviceID)
	if err != nil {
		return err
	}
	pl, err := market.QueryPayouts(ctx, r.node, market.Filter{Service: r.o.serviceID})
	if err != nil {
		return err
	}
	type jobFields struct {
		JobID  string   `json:"job_id"`
		Fields []string `json:"fields"`
		Text   []string `json:"text_fields"` // fields that could hold a prompt or result: must be none
	}
	var jobsSeen []jobFields
	problems := 0
	for _, p := range pl.Payouts {
		if p.JobID == "" {
			continue
		}
		var raw map[string]any
		if err := r.node.GetJSON(ctx, "/api/v1/jobs/"+p.JobID, &raw); err != nil {
			return err
		}
		jf := jobFields{JobID: p.JobID}
		for k := range raw {
			jf.Fields = append(jf.Fields, k)
			lk := strings.ToLower(k)
			if (strings.Contains(lk, "prompt") || strings.Contains(lk, "result") || strings.Contains(lk, "output") || strings.Contains(lk, "text")) &&
				!strings.HasSuffix(lk, "hash") {
				jf.Text = append(jf.Text, k)
				problems++
			}
		}
		sort.Strings(jf.Fields)
		jobsSeen = append(jobsSeen, jf)
	}
	retained := "the coordinator keeps each job's prompt and result text in its store (<home>/coordinator/coordinator.db) for the tenant to read back; this version has no expiry, so it is kept until the store is removed"
	out := map[string]any{"service_id": s.ID, "public_listing": []string{"name", "description", "parameters"}, "jobs": jobsSeen, "coordinator_retains": retained}
	if err := r.g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "service %s: its listing (name, description, parameters) is public on chain by design\n", s.ID)
		for _, j := range jobsSeen {
			st := "ok: hashes only"
			if len(j.Text) > 0 {
				st = "TEXT ON CHAIN: " + strings.Join(j.Text, ", ")
			}
			fmt.Fprintf(w, "  job %s on chain: %s — %s\n", j.JobID, strings.Join(j.Fields, " "), st)
		}
		fmt.Fprintf(w, "%d delivered jobs checked; %s\n", len(jobsSeen), retained)
	}); err != nil {
		return err
	}
	if problems > 0 {
		return fmt.Errorf("%d job records carry text fields on chain", problems)
	}
	return nil
}

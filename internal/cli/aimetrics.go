package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator"
)

// AIMetrics is the report of ai-metrics: one miner's (or one agent's
// miner's) jobs over a period, as the coordinator saw them.
type AIMetrics struct {
	AgentID   string         `json:"agent_id"`
	Miner     string         `json:"miner"`
	Period    string         `json:"period"`
	Since     time.Time      `json:"since"`
	Source    string         `json:"source"` // "all tenants" (operator key) or "your jobs"
	Jobs      int            `json:"jobs"`
	Status    map[string]int `json:"by_status"`
	TokensIn  int            `json:"tokens_in"`
	TokensOut int            `json:"tokens_out"`
	// Latency is from a job's start on the miner to its completion;
	// QueueWait from submission to start. Milliseconds; zero without jobs.
	LatencyAvgMs float64 `json:"latency_avg_ms"`
	LatencyP95Ms float64 `json:"latency_p95_ms"`
	QueueWaitMs  float64 `json:"queue_wait_avg_ms"`
	TokensPerSec float64 `json:"tokens_per_sec"`  // tokens out over the jobs' running time
	Slots        int     `json:"slots"`           // the miner's job slots now (1 when it is offline)
	Utilisation  float64 `json:"utilisation_pct"` // running time over slots × period
	Online       bool    `json:"online"`
}

// ComputeAIMetrics summarises miner's jobs that ran in [now-period, now].
func ComputeAIMetrics(jobs []coordinator.AdminJob, miner string, slots int, period time.Duration, now time.Time) AIMetrics {
	since := now.Add(-period)
	m := AIMetrics{Miner: miner, Period: period.String(), Since: since, Status: map[string]int{}, Slots: max(slots, 1)}
	var lat []float64
	var wait, busy time.Duration
	started := 0
	for _, j := range jobs {
		active := j.Status == "queued" || j.Status == "dispatched" || j.Status == "running"
		inPeriod := !j.Created.Before(since) || j.Completed != nil && !j.Completed.Before(since) || active && j.Started != nil
		if j.Miner != miner || !inPeriod {
			continue
		}
		m.Jobs++
		m.Status[j.Status]++
		m.TokensIn += j.TokensIn
		m.TokensOut += j.TokensOut
		if j.Started == nil {
			continue
		}
		started++
		wait += j.Started.Sub(j.Created)
		end := now // still running
		switch {
		case j.Completed != nil:
			end = *j.Completed
			lat = append(lat, float64(end.Sub(*j.Started).Microseconds())/1000)
		case !active:
			continue // ended without a completion time (failed, expired): its run time is unknown
		}
		// Only the part of the run inside the period counts as use.
		start := *j.Started
		if start.Before(since) {
			start = since
		}
		if end.After(start) {
			busy += end.Sub(start)
		}
	}
	if len(lat) > 0 {
		var sum float64
		for _, l := range lat {
			sum += l
		}
		m.LatencyAvgMs = sum / float64(len(lat))
		slices.Sort(lat)
		m.LatencyP95Ms = lat[(len(lat)*95+99)/100-1]
	}
	if started > 0 {
		m.QueueWaitMs = float64(wait.Microseconds()) / 1000 / float64(started)
	}
	if busy > 0 {
		m.TokensPerSec = float64(m.TokensOut) / busy.Seconds()
		m.Utilisation = 100 * busy.Seconds() / (period.Seconds() * float64(m.Slots))
	}
	return m
}

func newAIMetricsCmd(g *Globals) *cobra.Command {
	var agent, periodS, opFlag string
	cmd := &cobra.Command{
		Use:   "ai-metrics",
		Short: "A miner's or agent's jobs, tokens, latency and utilisation over a period",
		Long: `--agent-id is a miner's address, or the name of an agent holding a resource
allocation (aitbc resource allocate), whose miner is then measured. Jobs come
from the coordinator: every tenant's with its operator key (--operator-key,
AITBC_OPERATOR_KEY or <home>/coordinator/operator-key), otherwise only your
own (the API key); the newest 1,000 either way. Latency runs from a job's
start on the miner to its end; utilisation is the miner's running time over
its slots × the period.`,
		Example: `  aitbc ai-metrics --agent-id "gpu-worker-1" --period 1h
  aitbc ai-metrics --agent-id aitbc1q... --period 24h --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agent == "" {
				return usagef("--agent-id is required (a miner address or an allocated agent's name)")
			}
			period, err := parsePeriod(periodS)
			if err != nil {
				return err
			}
			if period == 0 || period > 30*24*time.Hour {
				return usagef("--period must be from 1m to 30d")
			}
			ctx := cmd.Context()
			pub := coordinator.NewClient(g.Coord, "")
			miner := agent
			if _, err := address.Parse(agent); err != nil { // an agent's name: find its allocation
				c, err := g.coordinator()
				if err != nil {
					return err
				}
				allocs, err := c.Allocations(ctx, agent)
				if err != nil {
					return err
				}
				if len(allocs) == 0 {
					return usagef("agent %q has no allocation and is not a miner address", agent)
				}
				miner = allocs[0].Miner
			}
			var jobs []coordinator.AdminJob
			source := "all tenants"
			if key := g.operatorKey(opFlag); key != "" {
				// The newest 1,000 jobs of all tenants: enough for a period
				// on a busy miner; the active ones are always among them.
				aj, err := pub.AdminJobs(ctx, key, 1000)
				if err != nil {
					return err
				}
				jobs = aj.Recent
			} else {
				source = "your jobs (no operator key)"
				c, err := g.coordinator()
				if err != nil {
					return err
				}
				list, err := c.Jobs(ctx, 1000)
				if err != nil {
					return err
				}
				for _, j := range list {
					jobs = append(jobs, coordinator.AdminJob{JobView: j})
				}
			}
			slots, online := 1, false
			if live, err := pub.Miners(ctx); err == nil {
				for _, m := range live {
					if m.Address == miner {
						slots, online = m.Slots, true
					}
				}
			}
			m := ComputeAIMetrics(jobs, miner, slots, period, time.Now())
			m.AgentID, m.Source, m.Online, m.Period = agent, source, online, periodS
			return g.Print(m, func(w io.Writer) {
				state := "offline"
				if m.Online {
					state = "online"
				}
				fmt.Fprintf(w, "%s (miner %s, %s) over %s, %s:\n", m.AgentID, m.Miner, state, m.Period, m.Source)
				var parts []string
				for _, st := range slices.Sorted(maps.Keys(m.Status)) {
					parts = append(parts, fmt.Sprintf("%s %d", st, m.Status[st]))
				}
				fmt.Fprintf(w, "  jobs        %d (%s)\n", m.Jobs, strings.Join(parts, ", "))
				fmt.Fprintf(w, "  tokens      %d in, %d out, %.1f tokens/s while running\n", m.TokensIn, m.TokensOut, m.TokensPerSec)
				fmt.Fprintf(w, "  latency     %.0f ms average, %.0f ms p95; queue wait %.0f ms average\n", m.LatencyAvgMs, m.LatencyP95Ms, m.QueueWaitMs)
				fmt.Fprintf(w, "  utilisation %.2f%% of %d slots\n", m.Utilisation, m.Slots)
			})
		},
	}
	cmd.Flags().StringVar(&agent, "agent-id", "", "a miner address, or an allocated agent's name (required)")
	cmd.Flags().StringVar(&periodS, "period", "1h", "window: 5m, 1h, 24h, 7d (up to 30d)")
	cmd.Flags().StringVar(&opFlag, "operator-key", "", "the coordinator's operator key (default: <home>/coordinator/operator-key)")
	return cmd
}

package cli_test

import (
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/coordinator"
)

// ComputeAIMetrics counts only the miner's jobs in the period, and only
// the part of a run inside it as use.
func TestAIMetricsCountsTheMinersJobsInThePeriod(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *time.Time { t := now.Add(-ago); return &t }
	job := func(miner, status string, created, started, done time.Duration, out int) coordinator.AdminJob {
		j := coordinator.AdminJob{JobView: coordinator.JobView{Miner: miner, Status: status, Created: now.Add(-created), TokensIn: 2, TokensOut: out}}
		if started > 0 {
			j.Started = at(started)
		}
		if done > 0 {
			j.Completed = at(done)
		}
		return j
	}
	jobs := []coordinator.AdminJob{
		job("m1", "settled", 30*time.Minute, 29*time.Minute, 28*time.Minute, 100), // 1 min run, 1 min wait
		job("m1", "settled", 10*time.Minute, 10*time.Minute, 7*time.Minute, 300),  // 3 min run
		job("m1", "settled", 3*time.Hour, 3*time.Hour, 2*time.Hour, 999),          // before the period
		job("m2", "settled", 5*time.Minute, 5*time.Minute, 4*time.Minute, 50),     // another miner
		job("m1", "queued", time.Minute, 0, 0, 0),
		job("m1", "running", 2*time.Hour, 2*time.Hour, 0, 7), // started before the period, still running: 60 min inside it
	}
	m := cli.ComputeAIMetrics(jobs, "m1", 2, time.Hour, now)
	if m.Jobs != 4 || m.Status["settled"] != 2 || m.Status["queued"] != 1 || m.Status["running"] != 1 || m.TokensOut != 407 || m.TokensIn != 8 {
		t.Fatalf("counts: %+v", m)
	}
	if m.LatencyAvgMs != 120_000 || m.LatencyP95Ms != 180_000 || m.QueueWaitMs != 20_000 {
		t.Fatalf("latency %v p95 %v wait %v", m.LatencyAvgMs, m.LatencyP95Ms, m.QueueWaitMs)
	}
	// 4 + 60 minutes of running over 2 slots × 60 minutes.
	if want := 100 * 64.0 / 120; m.Utilisation < want-1e-9 || m.Utilisation > want+1e-9 {
		t.Fatalf("utilisation %v, want %v", m.Utilisation, want)
	}
	if want := 407.0 / (64 * 60); m.TokensPerSec < want-1e-9 || m.TokensPerSec > want+1e-9 {
		t.Fatalf("tokens/s %v, want %v", m.TokensPerSec, want)
	}
	if none := cli.ComputeAIMetrics(jobs, "m9", 0, time.Hour, now); none.Jobs != 0 || none.Utilisation != 0 || none.Slots != 1 {
		t.Fatalf("unknown miner: %+v", none)
	}
}

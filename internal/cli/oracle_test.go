package cli

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/oracle/report"
	"github.com/aitbc/aitbc/internal/system"
)

type stubRunner struct{ err error }

func (stubRunner) Name() string                             { return "stub" }
func (stubRunner) Models(context.Context) ([]string, error) { return []string{"m"}, nil }
func (s stubRunner) Run(context.Context, *minerproto.Job, func(string) error) (miner.Output, error) {
	return miner.Output{TokensIn: 7, TokensOut: 5}, s.err
}

// TestReportingRunnerCounts: aitbc miner start --oracle counts each
// completed job's tokens (in and out) as a task; a failed job is not
// counted.
func TestReportingRunnerCounts(t *testing.T) {
	col := report.NewMetricsCollector(func() time.Time { return time.Unix(100, 0) })
	ok := system.ReportingRunner(stubRunner{}, col)
	bad := system.ReportingRunner(stubRunner{err: errors.New("backend down")}, col)
	for range 2 {
		if _, err := ok.Run(context.Background(), &minerproto.Job{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bad.Run(context.Background(), &minerproto.Job{}, nil); err == nil {
		t.Fatal("the failing runner succeeded")
	}
	if p := col.Snapshot("a"); p.ProcessedTokens != 24 || p.TasksCompleted != 2 {
		t.Fatalf("snapshot %+v", p)
	}
}

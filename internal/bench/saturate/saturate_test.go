package saturate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aitbc/aitbc/internal/bench/saturate"
)

// TestFindStopsAtTheFirstRateNotKeptUp: a system that commits at most 5,000
// tx/s is offered 1,000, 2,000, 4,000, 8,000: the search stops after 8,000
// and reports 4,000 sustained and 5,000 peak.
func TestFindStopsAtTheFirstRateNotKeptUp(t *testing.T) {
	var offered []float64
	r, err := saturate.Find(context.Background(), saturate.Options{Start: 1000, Factor: 2, MaxSteps: 10},
		func(_ context.Context, rate float64) (saturate.Step, error) {
			offered = append(offered, rate)
			return saturate.Step{Committed: min(rate*0.97, 5000), Admitted: rate}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(offered) != 4 || offered[3] != 8000 {
		t.Fatalf("offered %v, want 1000 2000 4000 8000", offered)
	}
	if r.Sustained != 4000 || r.Peak != 5000 || r.Steps[3].Kept || !r.Steps[2].Kept {
		t.Fatalf("result %+v", r)
	}
}

// TestFindCountsRejectionsAsNotKeptUp: a step whose offered load was
// partly refused did not keep up, whatever it committed.
func TestFindCountsRejectionsAsNotKeptUp(t *testing.T) {
	r, err := saturate.Find(context.Background(), saturate.Options{Start: 100, Factor: 1.5, MaxSteps: 5},
		func(_ context.Context, rate float64) (saturate.Step, error) {
			return saturate.Step{Committed: rate, Rejected: 1}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || r.Sustained != 0 {
		t.Fatalf("result %+v", r)
	}
}

// TestFindJudgesBySteadyRate: a step whose committed rate is low only
// because its last block waited (steady rate at the offered rate) kept up;
// one whose steady rate is low did not.
func TestFindJudgesBySteadyRate(t *testing.T) {
	r, err := saturate.Find(context.Background(), saturate.Options{Start: 1000, Factor: 2, MaxSteps: 3},
		func(_ context.Context, rate float64) (saturate.Step, error) {
			steady := rate
			if rate > 2000 {
				steady = rate * 0.8
			}
			return saturate.Step{Committed: rate * 0.8, Steady: steady}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sustained != 2000 || len(r.Steps) != 3 || r.Steps[2].Kept {
		t.Fatalf("result %+v", r)
	}
}

func TestFindRefusesBadOptionsAndReportsStepErrors(t *testing.T) {
	run := func(context.Context, float64) (saturate.Step, error) { return saturate.Step{Committed: 1e9}, nil }
	for _, o := range []saturate.Options{{Start: 0, Factor: 2, MaxSteps: 3}, {Start: 10, Factor: 1, MaxSteps: 3}, {Start: 10, Factor: 2}} {
		if _, err := saturate.Find(context.Background(), o, run); !errors.Is(err, saturate.ErrBadOptions) {
			t.Fatalf("%+v: %v", o, err)
		}
	}
	boom := errors.New("boom")
	r, err := saturate.Find(context.Background(), saturate.Options{Start: 10, Factor: 2, MaxSteps: 3},
		func(_ context.Context, rate float64) (saturate.Step, error) {
			if rate > 10 {
				return saturate.Step{}, boom
			}
			return saturate.Step{Committed: rate}, nil
		})
	if !errors.Is(err, boom) || len(r.Steps) != 1 {
		t.Fatalf("steps %d, err %v", len(r.Steps), err)
	}
	r, _ = saturate.Find(context.Background(), saturate.Options{Start: 10, Factor: 2, MaxSteps: 3}, run)
	if len(r.Steps) != 3 || r.Sustained != 40 {
		t.Fatalf("every step kept up: %+v", r)
	}
}

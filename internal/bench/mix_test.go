package bench_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/bench"
)

// TestMixSmall offers a few hundred transactions of every kind: each kind
// commits at least once, none commits more than was offered, every
// offered transaction is accounted for, and the chain's audit holds.
func TestMixSmall(t *testing.T) {
	r, err := bench.Mix(context.Background(), bench.MixOptions{Duration: 2 * time.Second, Rate: 150, Accounts: 10, BlockTime: 200 * time.Millisecond, Submitters: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kinds) != len(bench.MixKinds) {
		t.Fatalf("kinds reported %+v, want all of %v", r.Kinds, bench.MixKinds)
	}
	sum := 0
	for _, k := range r.Kinds {
		if k.Committed < 1 || k.Committed > k.Offered || k.Committed+k.Refused != k.Offered {
			t.Errorf("%s: offered %d, committed %d, refused %d %v", k.Kind, k.Offered, k.Committed, k.Refused, k.RefusedCodes)
		}
		sum += k.Offered
	}
	if sum != 300 || r.Total.Offered != 300 || r.Total.Committed > r.Total.Offered {
		t.Errorf("total %+v, kinds offered %d, want 300", r.Total, sum)
	}
	if !r.AuditOK || r.VerifyRate <= 0 {
		t.Errorf("audit ok %v, verify rate %.0f", r.AuditOK, r.VerifyRate)
	}
	t.Logf("%+v", r.Kinds)
}

// TestMixBadOptions: weights naming no kind, or all zero, are refused
// before anything starts.
func TestMixBadOptions(t *testing.T) {
	for _, w := range []map[string]int{{"swap": 10}, {"transfer": 0}, {"bid": -1, "transfer": 5}} {
		if _, err := bench.Mix(context.Background(), bench.MixOptions{Weights: w}); !errors.Is(err, bench.ErrBadMixOptions) {
			t.Errorf("weights %v: %v, want ErrBadMixOptions", w, err)
		}
	}
	if _, err := bench.Mix(context.Background(), bench.MixOptions{Rate: 1e6, Duration: time.Hour}); !errors.Is(err, bench.ErrBadMixOptions) {
		t.Errorf("3.6e9 transactions: %v", err)
	}
}

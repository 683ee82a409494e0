package rank_test

import (
	"slices"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/rank"
)

func TestOrderFastestAnsweringFirst(t *testing.T) {
	ms := time.Millisecond
	band := func(best time.Duration) time.Duration { return best + max(best, 25*ms) }
	for _, tc := range []struct {
		name string
		rtt  []time.Duration
		ok   []bool
		near func(time.Duration) time.Duration
		want []int
	}{
		{"strict: fastest first, the down last in order", []time.Duration{90 * ms, 0, 3 * ms, 2 * ms, 0}, []bool{true, false, true, true, false}, nil, []int{3, 2, 0, 1, 4}},
		{"strict: ties keep the given order", []time.Duration{5 * ms, 5 * ms}, []bool{true, true}, nil, []int{0, 1}},
		{"band: equally near keep the given order", []time.Duration{3 * ms, 2 * ms, 60 * ms, 90 * ms}, []bool{true, true, true, true}, band, []int{0, 1, 2, 3}},
		{"band: the farther still ranked by round trip", []time.Duration{90 * ms, 0, 2 * ms, 60 * ms}, []bool{true, false, true, true}, band, []int{2, 3, 0, 1}},
		{"none answers: the given order", []time.Duration{0, 0}, []bool{false, false}, band, []int{0, 1}},
		{"none", nil, nil, band, []int{}},
	} {
		if got := rank.Order(tc.rtt, tc.ok, tc.near); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

package coordinator_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator"
)

// TestPickerNearEnoughKeepsTheGivenOrderAmongEquallyNear: the one ranking
// clients and miners share. Plain, the picker puts the fastest first;
// with the miners' band (NearEnough), coordinators about as near as the
// fastest keep the given order, farther ones still come after by round
// trip, and the down ones last.
func TestPickerNearEnoughKeepsTheGivenOrderAmongEquallyNear(t *testing.T) {
	lat := map[string]time.Duration{"http://a": 3 * time.Millisecond, "http://b": 2 * time.Millisecond, "http://far": 90 * time.Millisecond, "http://mid": 60 * time.Millisecond}
	probe := func(_ context.Context, u string) (coordinator.Health, time.Duration, error) {
		if d, ok := lat[u]; ok {
			return coordinator.Health{Status: "ok"}, d, nil
		}
		return coordinator.Health{}, 0, errors.New("connection refused")
	}
	given := coordinator.Given([]string{"http://far", "http://dead", "http://a", "http://mid", "http://b"})
	plain := coordinator.URLs((&coordinator.Picker{Probe: probe}).Rank(t.Context(), given))
	if want := []string{"http://b", "http://a", "http://mid", "http://far", "http://dead"}; !slices.Equal(plain, want) {
		t.Errorf("plain: %v, want %v", plain, want)
	}
	band := func(best time.Duration) time.Duration { return best + max(best, 25*time.Millisecond) }
	near := coordinator.URLs((&coordinator.Picker{Probe: probe, NearEnough: band}).Rank(t.Context(), given))
	if want := []string{"http://a", "http://b", "http://mid", "http://far", "http://dead"}; !slices.Equal(near, want) {
		t.Errorf("near enough: %v, want %v", near, want)
	}
}

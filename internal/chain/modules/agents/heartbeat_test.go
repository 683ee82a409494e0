package agents_test

import (
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
)

// TestHeartbeatFollowsTheActiveWindow: an agent heartbeats three times
// per active window at the chain's block time, so a fast test devnet's
// agents never show inactive between heartbeats, yet no slower than once
// a minute and no faster than once a block.
func TestHeartbeatFollowsTheActiveWindow(t *testing.T) {
	for _, tc := range []struct {
		window int64
		block  time.Duration
		want   time.Duration
	}{
		{60, 200 * time.Millisecond, 4 * time.Second}, // a test devnet: a 12 s window
		{60, 150 * time.Millisecond, 3 * time.Second},
		{60, time.Second, 20 * time.Second},
		{60, 2 * time.Second, 40 * time.Second},
		{60, 5 * time.Second, time.Minute}, // a 5-minute window: capped
		{1, time.Second, time.Second},      // a one-block window: every block
		{60, 0, time.Minute},               // block time unknown
	} {
		got := agents.Params{ActiveWindow: tc.window}.HeartbeatEvery(tc.block)
		if got != tc.want {
			t.Errorf("window %d blocks of %s: heartbeat every %s, want %s", tc.window, tc.block, got, tc.want)
		}
		if span := time.Duration(tc.window) * tc.block; tc.block > 0 && got > span/2 && got > tc.block {
			t.Errorf("window %d blocks of %s: heartbeat every %s leaves no room for a missed one in %s", tc.window, tc.block, got, span)
		}
	}
}

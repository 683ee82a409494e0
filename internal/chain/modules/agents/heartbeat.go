package agents

import "time"

// MaxHeartbeatEvery bounds HeartbeatEvery: on slow chains an agent still
// heartbeats at least once a minute (what the devnet's agents did before
// the interval followed the window).
const MaxHeartbeatEvery = time.Minute

// HeartbeatEvery is how often an agent should send agents/heartbeat to
// stay active under p, on a chain whose blocks come about every block: a
// third of the active window (ActiveWindow blocks) at that block time, so
// that a heartbeat lost or late still leaves one in the window, at most
// MaxHeartbeatEvery and at least one block. Blocks slower than block only
// lengthen the window in time, so the interval stays safe. It is for the
// agents' own loops (the devnet's miners and span servers); the chain
// never calls it.
func (p Params) HeartbeatEvery(block time.Duration) time.Duration {
	if block <= 0 || p.ActiveWindow < 1 {
		return MaxHeartbeatEvery
	}
	every := time.Duration(p.ActiveWindow) * block / 3
	return max(block, min(every, MaxHeartbeatEvery))
}

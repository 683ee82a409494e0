package report

import (
	"sync"
	"time"
)

// MetricsCollector counts what a serving agent did: tokens processed,
// tasks completed and their latency, since the last Snapshot, and its
// uptime since it was made. Safe for concurrent use.
type MetricsCollector struct {
	mu      sync.Mutex
	started time.Time
	now     func() time.Time
	tokens  uint64
	tasks   uint64
	latency time.Duration // sum over the interval's tasks
}

// NewMetricsCollector starts counting; now is the clock (time.Now when nil).
func NewMetricsCollector(now func() time.Time) *MetricsCollector {
	if now == nil {
		now = time.Now
	}
	return &MetricsCollector{started: now(), now: now}
}

// Task records one completed task: the tokens it processed (input and
// output) and how long it took.
func (c *MetricsCollector) Task(tokens uint64, latency time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens += tokens
	c.tasks++
	c.latency += latency
}

// Snapshot returns the interval's figures as a payload for agent and
// starts a new interval.
func (c *MetricsCollector) Snapshot(agent string) Payload {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	p := Payload{Agent: agent, ProcessedTokens: c.tokens, TasksCompleted: c.tasks, UptimeSeconds: uint64(now.Sub(c.started) / time.Second), Timestamp: now.Unix()}
	if c.tasks > 0 {
		p.AvgLatencyMs = float64(c.latency.Microseconds()) / 1000 / float64(c.tasks)
	}
	c.tokens, c.tasks, c.latency = 0, 0, 0
	return p
}

// restore puts a snapshot back when its report failed, so that nothing
// counted is lost.
func (c *MetricsCollector) restore(p Payload) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens += p.ProcessedTokens
	c.tasks += p.TasksCompleted
	c.latency += time.Duration(p.AvgLatencyMs * float64(p.TasksCompleted) * float64(time.Millisecond))
}

package system

import (
	"context"
	"time"

	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
	"github.com/aitbc/aitbc/internal/oracle/report"
)

// MinerConfig configures a miner.
type MinerConfig struct {
	// Miner is the miner's configuration. An empty Coordinator is this
	// system's coordinator; a nil Chain is this system's node.
	Miner miner.Config
	// Key, when set, is wiped once the miner has stopped (it is usually
	// Miner.Key). It is wiped as well when the start fails.
	Key *keystore.Key
	// Register registers the miner on chain (or updates its models and
	// price) before StartMiner returns; otherwise its Run does it, and a
	// failure there is reported on the System's Errors.
	Register bool
}

// Miner is a running miner.
type Miner struct {
	*miner.Miner
	svc *service
}

// StartMiner builds the miner, registers it if asked, and runs it: it
// connects to the coordinator, heartbeats and takes jobs until stopped.
func (s *System) StartMiner(ctx context.Context, cfg MinerConfig) (*Miner, error) {
	sv, err := s.begin("miner")
	if err != nil {
		if cfg.Key != nil {
			cfg.Key.Wipe()
		}
		return nil, err
	}
	if cfg.Key != nil {
		sv.onClose(func() error { cfg.Key.Wipe(); return nil })
	}
	mc := cfg.Miner
	if mc.Coordinator == "" && s.Coordinator != nil {
		mc.Coordinator = s.Coordinator.URL()
	}
	if mc.Chain == nil && s.Node != nil && s.Node.Client() != nil {
		mc.Chain = s.Node.Client()
	}
	m, err := miner.New(mc)
	if err != nil {
		return nil, s.abort(sv, err)
	}
	if cfg.Register {
		models, err := m.Models(ctx)
		if err != nil {
			return nil, s.abort(sv, err)
		}
		if err := m.EnsureRegistered(ctx, models); err != nil {
			return nil, s.abort(sv, err)
		}
	}
	sv.goRun(m.Run)
	sv.goRun(m.RunPricing) // its provider's dynamic listings follow its utilization (internal/miner/pricing.go)
	mm := &Miner{Miner: m, svc: sv}
	s.Miners = append(s.Miners, mm)
	return mm, nil
}

// Stop stops the miner as if its process ended: its session closes, its
// running jobs are abandoned, and it returns once the miner has stopped.
// The rest of the system keeps running.
func (m *Miner) Stop() error { return m.svc.stop() }

// ReportingRunner counts every job r completes into c, the miner's
// MetricsCollector (docs/AGENTS.md): a task per job, its tokens in and
// out as processed tokens, its run time as latency. A failed job is not
// counted: the oracle's figures are work delivered.
func ReportingRunner(r miner.Runner, c *report.MetricsCollector) miner.Runner {
	if c == nil {
		return r
	}
	return reportingRunner{Runner: r, c: c}
}

type reportingRunner struct {
	miner.Runner
	c *report.MetricsCollector
}

func (r reportingRunner) Run(ctx context.Context, job *minerproto.Job, onToken func(string) error) (miner.Output, error) {
	start := time.Now()
	out, err := r.Runner.Run(ctx, job, onToken)
	if err == nil {
		r.c.Task(uint64(out.TokensIn+out.TokensOut), time.Since(start))
	}
	return out, err
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/miner/hw"
)

// minerObs is `miner start --metrics-listen`: the daemon's /metrics and
// /health endpoint, or nothing when the flag is empty or "off".
type minerObs struct {
	o    *miner.Observability
	addr string
	stop func() error
}

// startMinerObservability binds listen at once (a taken port is a startup
// failure) and serves until close.
func startMinerObservability(ctx context.Context, listen string) (*minerObs, error) {
	if listen == "" || listen == "off" {
		return &minerObs{}, nil
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	o := miner.NewObservability(hw.Options{}) // GPUs through nvidia-smi on PATH
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Serve(sctx, ln) }()
	return &minerObs{o: o, addr: ln.Addr().String(), stop: func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("miner metrics endpoint: %w", err)
		}
		return nil
	}}, nil
}

// instrument records r's jobs in the endpoint's metrics.
func (m *minerObs) instrument(r miner.Runner) miner.Runner {
	if m.o == nil {
		return r
	}
	return m.o.Metrics.Instrument(r)
}

// attach reports x on /health and the session gauges; it returns a line
// for the banner.
func (m *minerObs) attach(x *miner.Miner) string {
	if m.o == nil {
		return ""
	}
	m.o.Attach(x)
	return fmt.Sprintf("metrics on http://%s/metrics, health on http://%s/health\n", m.addr, m.addr)
}

func (m *minerObs) close() error {
	if m.stop == nil {
		return nil
	}
	return m.stop()
}

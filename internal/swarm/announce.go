package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/engine/gguf"
)

// TxSender submits transactions signed with the span server's key.
type TxSender interface {
	Send(ctx context.Context, msg tx.Msg) (string, error)
}

// ModelHash is the SHA-256 of the model's weights as served, written as
// an F32 GGUF file (deterministic, whatever file the model came from):
// the model hash of the span server's agent registration.
func ModelHash(m *engine.Model) (string, error) {
	h := sha256.New()
	if err := m.WriteGGUF(h, gguf.F32); err != nil {
		return "", fmt.Errorf("swarm: model hash: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AgentName is the agent name a span server registers: model and layers.
func AgentName(sp ServedSpan) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, strings.ToLower(sp.Name))
	return fmt.Sprintf("%.50s-%d-%d", name, sp.First, sp.Last-1)
}

// Announce registers the span server on chain as an agent serving spans
// (capabilities "inference" and "span"; one key serves every span of the
// server: the record's first span and the others after it) at endpoint,
// its span API's public base URL, by which coordinators find it; then it
// sends a heartbeat every interval until ctx ends. A failed heartbeat is
// logged and retried at the next tick: a node that is briefly away must
// not stop the serving.
func Announce(ctx context.Context, s TxSender, spans []ServedSpan, endpoint, modelHash string, every time.Duration, log *slog.Logger) error {
	if len(spans) == 0 {
		return fmt.Errorf("swarm: no span to announce")
	}
	var on []agents.Span
	for _, sp := range spans {
		on = append(on, agents.Span{Model: sp.Name, First: sp.First, Last: sp.Last - 1})
	}
	if _, err := s.Send(ctx, agents.NewRegisterSpansMsg(AgentName(spans[0]), modelHash, []string{"inference", "span"}, endpoint, on)); err != nil {
		return fmt.Errorf("swarm: register the span on chain: %w", err)
	}
	if every <= 0 {
		every = time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.Send(ctx, agents.NewHeartbeatMsg()); err != nil && ctx.Err() == nil {
				log.Warn("span server heartbeat", "err", err)
			}
		}
	}
}

package agents

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Exec implements module.Handler. A refused message changes nothing: every
// check comes before the one write.
func (k *Keeper) Exec(ctx *module.Context, msg tx.Msg) error {
	switch msg.Type {
	case TypeRegister:
		var m MsgRegister
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.register(ctx, m)
	case TypeHeartbeat:
		var m MsgHeartbeat
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.heartbeat(ctx)
	case TypeDeregister:
		var m MsgDeregister
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.deregister(ctx)
	case TypeMetrics:
		var m MsgMetrics
		if err := msg.DecodeBody(&m); err != nil {
			return err
		}
		return k.metrics(ctx, m)
	}
	return fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

func (k *Keeper) register(ctx *module.Context, m MsgRegister) error {
	if err := m.Check(); err != nil {
		return err
	}
	a, err := k.Get(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if a == nil {
		a = &Agent{Address: ctx.Signer[:], Created: ctx.Height}
	}
	a.Name, a.ModelHash, a.Caps, a.Span, a.Endpoint, a.More = m.Name, m.ModelHash, m.Caps, m.Span, m.Endpoint, m.More
	a.Updated, a.Heartbeat = ctx.Height, ctx.Height
	return k.put(ctx.KV, a)
}

func (k *Keeper) heartbeat(ctx *module.Context) error {
	a, err := k.Get(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if a == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, ctx.Signer)
	}
	a.Heartbeat = ctx.Height
	return k.put(ctx.KV, a)
}

func (k *Keeper) deregister(ctx *module.Context) error {
	a, err := k.Get(ctx.KV, ctx.Signer)
	if err != nil {
		return err
	}
	if a == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, ctx.Signer)
	}
	ctx.KV.Delete(keyAgent(ctx.Signer))
	return nil
}

// CheckMetrics bounds an aggregate: every figure JSON-safe, and at least
// one report behind it.
func CheckMetrics(m Metrics) error {
	for _, v := range []uint64{m.Epoch, m.Reports, m.ProcessedTokens, m.TasksCompleted, m.AvgLatencyMs, m.UptimeSeconds} {
		if v > maxMetricsVal {
			return fmt.Errorf("%w: %d above %d", ErrMetrics, v, uint64(maxMetricsVal))
		}
	}
	if m.Reports == 0 {
		return fmt.Errorf("%w: an aggregate of no reports", ErrMetrics)
	}
	return nil
}

func (k *Keeper) metrics(ctx *module.Context, m MsgMetrics) error {
	p, err := k.Params(ctx.KV)
	if err != nil {
		return err
	}
	if !p.IsOracle(ctx.Signer) {
		return fmt.Errorf("%w: %s", ErrNotOracle, ctx.Signer)
	}
	agent, err := address.FromBytes(m.Agent)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAddress, err)
	}
	met := Metrics{Epoch: m.Epoch, Reports: m.Reports, ProcessedTokens: m.ProcessedTokens, TasksCompleted: m.TasksCompleted,
		AvgLatencyMs: m.AvgLatencyMs, UptimeSeconds: m.UptimeSeconds}
	if err := CheckMetrics(met); err != nil {
		return err
	}
	a, err := k.Get(ctx.KV, agent)
	if err != nil {
		return err
	}
	if a == nil {
		return fmt.Errorf("%w: %s", ErrNotFound, agent)
	}
	if a.Metrics != nil && m.Epoch <= a.Metrics.Epoch {
		return fmt.Errorf("%w: epoch %d, last %d", ErrEpoch, m.Epoch, a.Metrics.Epoch)
	}
	a.Metrics = &met
	return k.put(ctx.KV, a)
}

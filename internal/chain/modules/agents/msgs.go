package agents

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types. The seed's precompiles 0x21 (register) and 0x22
// (heartbeat) are these module messages.
const (
	TypeRegister   = "agents/register"   // 0x21: the signer registers (or updates) itself as an agent
	TypeHeartbeat  = "agents/heartbeat"  // 0x22: the signer, a registered agent, is alive
	TypeDeregister = "agents/deregister" // the signer removes its registration
	TypeMetrics    = "agents/metrics"    // an oracle commits an agent's aggregate for an epoch
)

// Bounds on every field.
const (
	MaxName       = 64
	MaxCaps       = 16
	MaxCap        = 32
	MaxModel      = 64
	MaxLayer      = 4095
	ModelHashLen  = 64 // hex of a SHA-256
	MaxOracles    = 16
	maxMetricsVal = 1 << 53 // JSON-safe; far above any real figure
)

// Span is the layers of a model an agent serves, First to Last inclusive.
type Span struct {
	_     struct{} `cbor:",toarray"`
	Model string
	First int
	Last  int
}

// MsgRegister registers the signer as an agent, or replaces its record's
// fields (the registration height stays). Span is nil for an agent that
// serves no span.
type MsgRegister struct {
	_         struct{} `cbor:",toarray"`
	Name      string
	ModelHash string
	Caps      []string
	Span      *Span
	Endpoint  string // a span server's public base URL (endpoint.go)
	More      []Span // spans served besides Span
}

// MsgHeartbeat says the signer, a registered agent, is alive.
type MsgHeartbeat struct {
	_ struct{} `cbor:",toarray"`
}

// MsgDeregister removes the signer's registration.
type MsgDeregister struct {
	_ struct{} `cbor:",toarray"`
}

// MsgMetrics is an oracle's aggregate of Agent's reports in Epoch (the
// oracle's epoch number, strictly increasing per agent).
type MsgMetrics struct {
	_               struct{} `cbor:",toarray"`
	Agent           []byte
	Epoch           uint64
	Reports         uint64
	ProcessedTokens uint64
	TasksCompleted  uint64
	AvgLatencyMs    uint64
	UptimeSeconds   uint64
}

func mustMsg(typ string, body any) tx.Msg {
	m, err := tx.NewMsg(typ, body)
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewRegisterMsg builds an agents/register. span may be nil.
func NewRegisterMsg(name string, modelHash string, caps []string, span *Span) tx.Msg {
	return mustMsg(TypeRegister, MsgRegister{Name: name, ModelHash: modelHash, Caps: caps, Span: span})
}

// NewHeartbeatMsg builds an agents/heartbeat.
func NewHeartbeatMsg() tx.Msg { return mustMsg(TypeHeartbeat, MsgHeartbeat{}) }

// NewDeregisterMsg builds an agents/deregister.
func NewDeregisterMsg() tx.Msg { return mustMsg(TypeDeregister, MsgDeregister{}) }

// Metrics is one epoch's aggregate of an agent's reports.
type Metrics struct {
	_               struct{} `cbor:",toarray"`
	Epoch           uint64   `json:"epoch"`
	Reports         uint64   `json:"reports"`
	ProcessedTokens uint64   `json:"processed_tokens"`
	TasksCompleted  uint64   `json:"tasks_completed"`
	AvgLatencyMs    uint64   `json:"avg_latency_ms"`
	UptimeSeconds   uint64   `json:"uptime_seconds"`
}

// NewMetricsMsg builds an agents/metrics for agent.
func NewMetricsMsg(agent address.Address, m Metrics) tx.Msg {
	return mustMsg(TypeMetrics, MsgMetrics{Agent: agent[:], Epoch: m.Epoch, Reports: m.Reports, ProcessedTokens: m.ProcessedTokens,
		TasksCompleted: m.TasksCompleted, AvgLatencyMs: m.AvgLatencyMs, UptimeSeconds: m.UptimeSeconds})
}

// CheckName checks an agent name.
func CheckName(name string) error {
	if len(name) < 1 || len(name) > MaxName {
		return fmt.Errorf("%w: %d bytes", ErrName, len(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %q", ErrName, name)
		}
	}
	return nil
}

// CheckModelHash checks a model hash: the SHA-256 of the model's weights
// file, in lowercase hex.
func CheckModelHash(h string) error {
	if len(h) != ModelHashLen {
		return fmt.Errorf("%w: %d characters", ErrModelHash, len(h))
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: %q", ErrModelHash, h)
		}
	}
	return nil
}

func checkToken(s string, max int) bool {
	if len(s) < 1 || len(s) > max {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// CheckCapability checks one capability name ("inference", "span", …).
func CheckCapability(c string) error {
	if !checkToken(c, MaxCap) {
		return fmt.Errorf("%w: %q", ErrCapabilities, c)
	}
	return nil
}

// CheckCaps checks a capability list: 1-16 distinct valid names.
func CheckCaps(caps []string) error {
	if len(caps) < 1 || len(caps) > MaxCaps {
		return fmt.Errorf("%w: %d given", ErrCapabilities, len(caps))
	}
	seen := map[string]bool{}
	for _, c := range caps {
		if err := CheckCapability(c); err != nil {
			return err
		}
		if seen[c] {
			return fmt.Errorf("%w: %q twice", ErrCapabilities, c)
		}
		seen[c] = true
	}
	return nil
}

// CheckSpan checks a span (nil is no span).
func CheckSpan(s *Span) error {
	if s == nil {
		return nil
	}
	if !checkToken(s.Model, MaxModel) {
		return fmt.Errorf("%w: model %q", ErrSpan, s.Model)
	}
	if s.First < 0 || s.Last < s.First || s.Last > MaxLayer {
		return fmt.Errorf("%w: layers %d-%d", ErrSpan, s.First, s.Last)
	}
	return nil
}

// Check checks a registration.
func (m MsgRegister) Check() error {
	if err := CheckName(m.Name); err != nil {
		return err
	}
	if err := CheckModelHash(m.ModelHash); err != nil {
		return err
	}
	if err := CheckCaps(m.Caps); err != nil {
		return err
	}
	if err := CheckSpans(m.Span, m.More); err != nil {
		return err
	}
	return CheckEndpoint(m.Endpoint)
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeRegister:
		var m MsgRegister
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		out := map[string]any{"name": m.Name, "model_hash": m.ModelHash, "capabilities": m.Caps}
		if m.Span != nil {
			out["span"] = SpanView{Model: m.Span.Model, First: m.Span.First, Last: m.Span.Last}
		}
		if len(m.More) > 0 {
			out["spans"] = spanViews(append([]Span{*m.Span}, m.More...))
		}
		if m.Endpoint != "" {
			out["endpoint"] = m.Endpoint
		}
		return out, nil
	case TypeHeartbeat, TypeDeregister:
		return map[string]any{}, nil
	case TypeMetrics:
		var m MsgMetrics
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		a, err := address.FromBytes(m.Agent)
		if err != nil {
			return nil, err
		}
		return map[string]any{"agent": a, "epoch": m.Epoch, "reports": m.Reports, "processed_tokens": m.ProcessedTokens,
			"tasks_completed": m.TasksCompleted, "avg_latency_ms": m.AvgLatencyMs, "uptime_seconds": m.UptimeSeconds}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}

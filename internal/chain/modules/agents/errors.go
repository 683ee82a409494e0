package agents

import "github.com/aitbc/aitbc/internal/chain/errs"

// Errors of the "agents" codespace.
var (
	ErrName         = errs.Register("agents", 2, "invalid_agent_name", "agent name must be 1-64 characters of A-Z, a-z, 0-9, space, '.', '-' and '_'")
	ErrModelHash    = errs.Register("agents", 3, "invalid_model_hash", "model hash must be 64 lowercase hex characters (SHA-256)")
	ErrCapabilities = errs.Register("agents", 4, "invalid_agent_capabilities", "capabilities must be 1-16 distinct names of 1-32 characters of a-z, 0-9, '-', '_' and '.'")
	ErrSpan         = errs.Register("agents", 5, "invalid_agent_span", "a span names a model (1-64 characters) and layers 0 <= first <= last < 4096")
	ErrNotFound     = errs.RegisterNotFound("agents", 6, "agent_not_found", "agent not registered")
	ErrNotOracle    = errs.Register("agents", 7, "not_an_oracle", "only an oracle named in the agents module's parameters commits metrics")
	ErrEpoch        = errs.Register("agents", 8, "stale_metrics_epoch", "a metrics epoch must be later than the agent's last committed one")
	ErrMetrics      = errs.Register("agents", 9, "invalid_agent_metrics", "metrics out of bounds")
	ErrParams       = errs.Register("agents", 10, "invalid_agents_params", "invalid agents module parameters")
	ErrFilter       = errs.Register("agents", 11, "invalid_agents_filter", "invalid agent list filter")
	ErrAddress      = errs.Register("agents", 12, "invalid_agent_address", "invalid agent address")
	ErrEndpoint     = errs.Register("agents", 13, "invalid_agent_endpoint", "an agent endpoint must be an http(s) URL with a host, no credentials, query or fragment, at most 256 bytes")
)

// Package swarm runs one model's layers on several miners, as Petals does:
// span servers (Server) each hold layers [first, last) of a model and a KV
// cache per inference session; a router (Route) picks a chain of spans
// that covers every layer, by lowest latency (Dijkstra over a graph
// weighted by measured round trips and each server's speed) or by
// throughput (fewest hops), skipping servers under a temporary ban that
// doubles on every repeated failure; a Pipeline drives greedy generation
// through the route and, when a span server dies mid-generation, rebuilds
// the route around it and replays the session's past inputs into the
// replacement's cache, so the token stream continues without a gap or a
// duplicate.
//
// Transport: JSON over HTTP (keep-alive) between the driver (the
// coordinator or a customer) and each span server; hidden states are
// relayed through the driver, as in Petals' client. Why: the driver must
// keep every span's past inputs anyway to replay them on failover, miners
// need not reach each other (they may sit behind NAT; only their own
// listener must be reachable), and a dead server is detected by the one
// party that can repair the route. The price is one extra hop per span
// boundary; docs/DISTRIBUTED.md gives the figures. The wire format is
// described in wire.go and docs/DISTRIBUTED.md.
package swarm

package node

import (
	"strings"

	"github.com/aitbc/aitbc/internal/chain/module"
)

// Routes returns every module's REST queries, for the REST server to mount.
func (n *Node) Routes() []module.Route {
	var out []module.Route
	for _, m := range n.app.Modules() {
		if q, ok := m.(module.Querier); ok {
			out = append(out, q.Routes()...)
		}
	}
	return out
}

// Query runs fn against committed state (a module route's handler).
func (n *Node) Query(fn func(q module.Query) error) error { return n.app.Committed(fn) }

// Audit runs every module's invariants at the committed height.
func (n *Node) Audit() module.Audit { return n.app.Audit() }

// describersOf indexes the modules that can describe their messages.
func describersOf(mods []module.Module) map[string]module.Describer {
	out := map[string]module.Describer{}
	for _, m := range mods {
		if d, ok := m.(module.Describer); ok {
			out[m.Name()] = d
		}
	}
	return out
}

func moduleOf(typ string) string {
	m, _, _ := strings.Cut(typ, "/")
	return m
}

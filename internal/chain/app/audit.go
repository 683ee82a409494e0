package app

import (
	"github.com/aitbc/aitbc/internal/chain/module"
)

// Audit runs every module's invariants on the committed state (what
// `aitbc chain audit` and GET /api/v1/audit show). It reads a snapshot,
// so blocks keep committing while it walks the records.
func (a *App) Audit() module.Audit {
	a.mu.RLock()
	q := a.queryLocked()
	snap := a.store.Snapshot()
	a.mu.RUnlock()
	defer snap.Close()
	q.State = snap
	return audit(a.order, q)
}

// auditLocked audits the state just committed, under the lock Commit holds.
func auditLocked(a *App) module.Audit { return audit(a.order, a.queryLocked()) }

func audit(mods []module.Module, q module.Query) module.Audit {
	au := module.Audit{Height: q.Height, Time: q.Time, OK: true}
	for _, m := range mods {
		im, ok := m.(module.Invariants)
		if !ok {
			continue
		}
		for _, in := range im.Invariants() {
			f := in.Check(q)
			au.Invariants = append(au.Invariants, module.AuditInvariant{Name: in.Name, OK: !f.Broken, Detail: f.Detail, Figures: f.Figures})
			if f.Broken {
				au.OK = false
			}
		}
	}
	return au
}

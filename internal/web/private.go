package web

import (
	"context"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/rpc"
)

// privateJob fills a private job's page data (docs/VERIFICATION.md,
// "Private receipts"): the chain holds a commitment in place of its
// receipt's token counts and price, so the page shows that and the
// settlement's transaction, and there is no public receipt to check in
// the browser (the proof was checked by every validator instead). It
// reports whether the job is private.
func (s *Server) privateJob(ctx context.Context, d *jobData) (bool, error) {
	raw, err := jobs.ParseID(d.Job.ID)
	if err != nil {
		return false, err
	}
	pv, err := jobs.QueryPrivacy(ctx, s.cfg.Node, raw)
	if err != nil || !pv.Private {
		return false, err
	}
	d.Private, d.Commitment = true, pv.Commitment
	if d.Job.Settled == 0 {
		return true, nil
	}
	hash, err := s.privateSettlementOf(ctx, d.Job)
	d.SettleTx = hash
	return true, err
}

// privateSettlementOf finds the hash of a private job's settlement in the
// block that settled it ("" if it is not there).
func (s *Server) privateSettlementOf(ctx context.Context, j jobs.View) (string, error) {
	for off := 0; ; off += rpc.MaxBlockTxsPage {
		page, err := s.cfg.Node.BlockTransactions(ctx, j.Settled, off, rpc.MaxBlockTxsPage)
		if err != nil {
			return "", err
		}
		for _, t := range page.Transactions {
			if row := txRow(t); row.Type == jobs.TypeSettlePrivate && row.Status == "committed" && row.JobID == j.ID {
				return t.Hash, nil
			}
		}
		if len(page.Transactions) == 0 || off+len(page.Transactions) >= page.Total {
			return "", nil
		}
	}
}

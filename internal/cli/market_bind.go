package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
)

// agreementFor finds the customer's live agreement on a service that can
// take another job, for ai-submit --service-id: an unknown service, or one
// the customer has no agreement with, is refused before anything is
// locked.
func (g *Globals) agreementFor(ctx context.Context, customer address.Address, serviceID string) (string, error) {
	node := g.node()
	s, err := market.QueryService(ctx, node, serviceID)
	if err != nil {
		return "", fmt.Errorf("--service-id %s: %w", serviceID, err)
	}
	if !s.AvailableNow {
		at := func(t *time.Time) string {
			if t == nil {
				return "open"
			}
			return t.UTC().Format(time.RFC3339)
		}
		return "", fmt.Errorf("--service-id %s: %w: available from %s to %s, not now; no job runs under it outside that window",
			serviceID, market.ErrUnavailable, at(s.From), at(s.Until))
	}
	al, err := market.QueryAgreements(ctx, node, market.Filter{Customer: &customer, Service: serviceID})
	if err != nil {
		return "", err
	}
	var seen []string
	for _, a := range al.Agreements {
		seen = append(seen, a.ID+" "+a.Status)
		full := a.Unit == market.UnitJob && uint64(a.Jobs-a.Failed) >= a.Units
		if a.Status == "active" && !full && a.Remaining > 0 {
			// Only a miner serving the provider runs the jobs its
			// agreements pay for (its own, or one named both ways: the
			// chain refuses any other): a provider without one could
			// never deliver, so nothing is locked for it.
			if len(s.Serving) == 0 {
				return "", fmt.Errorf("--service-id %s: its provider %s runs no active miner and names none that consents (market add-miner, miner start --provider); a job under its agreements runs only there",
					serviceID, s.Provider)
			}
			return a.ID, nil
		}
	}
	if len(seen) == 0 {
		return "", fmt.Errorf("--service-id %s (%s, provider %s): %s has no agreement with it; bid and have the bid accepted first",
			serviceID, s.Name, s.Provider, customer)
	}
	return "", fmt.Errorf("--service-id %s: none of %s's agreements on it can take a job [%s]", serviceID, customer, strings.Join(seen, ", "))
}

// bindJob runs a job under an agreement (a market/bind transaction signed
// by the job's customer) and waits for its block.
func (g *Globals) bindJob(ctx context.Context, w *walletConn, wallet, password, agreement string, job []byte) error {
	sub, err := w.SignAndSubmit(ctx, wallet, password, market.NewBindMsg(agreement, job), 0)
	if err != nil {
		return w.explain(g, wallet, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := g.node().WaitTx(wctx, sub.TxHash, 100*time.Millisecond)
	if err != nil {
		return err
	}
	if res.Status != "committed" {
		return fmt.Errorf("binding the job to agreement %s failed: %s", agreement, res.Error)
	}
	return nil
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/walletd"
)

// Reconciliation is the marketplace's books checked to the unit: what
// agreements locked equals what was paid to providers, taken as protocol fees (to the fee split),
// refunded, and what is still held; the escrow account holds exactly the
// open bids' deposits, the agreements' remainders and the held payouts.
type Reconciliation struct {
	Scope        string       `json:"scope"`
	Agreements   int          `json:"agreements"`
	Payouts      int          `json:"payouts"`
	Locked       coin.Amount  `json:"locked"`
	Paid         coin.Amount  `json:"paid_to_providers"`
	Fees         coin.Amount  `json:"fees_burned"`
	Refunded     coin.Amount  `json:"refunded"`
	Held         coin.Amount  `json:"held_in_payouts"`
	Remaining    coin.Amount  `json:"remaining_in_agreements"`
	OpenDeposits coin.Amount  `json:"open_bid_deposits"`
	Escrow       *coin.Amount `json:"escrow_balance,omitempty"`
	Problems     []string     `json:"problems"`
	OK           bool         `json:"ok"`
}

// Reconcile checks agreements and their payouts: per agreement, locked =
// drawn + refunded + remaining and its payouts add up to drawn; per
// payout, paid + fee = amount with the fee the params say, or refund =
// amount; in all, locked = paid + fees + refunded + held + remaining.
// With escrow (the account's balance) and the open bids, it checks the
// escrow account too. Every mismatch names its record.
func Reconcile(p market.Params, agrs []market.AgreementView, pays []market.PayoutView, open []market.BidView, escrow *coin.Amount) Reconciliation {
	r := Reconciliation{Agreements: len(agrs), Payouts: len(pays), Problems: []string{}, Escrow: escrow}
	bad := func(format string, a ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, a...)) }
	drawn := map[string]coin.Amount{}
	var payRefunds coin.Amount
	for _, po := range pays {
		drawn[po.Agreement] += po.Amount
		switch po.Status {
		case "released":
			share, fee := p.Split(po.Amount)
			if po.Paid+po.Fee != po.Amount || po.Paid != share || po.Fee != fee {
				bad("payout %s: paid %s + fee %s, amount %s (the params split it %s + %s)", po.ID, po.Paid, po.Fee, po.Amount, share, fee)
			}
			r.Paid += po.Paid
			r.Fees += po.Fee
		case "refunded":
			if po.Refund != po.Amount || po.Paid != 0 || po.Fee != 0 {
				bad("payout %s: refunded %s of %s", po.ID, po.Refund, po.Amount)
			}
			payRefunds += po.Refund
		case "held", "disputed":
			if po.Paid != 0 || po.Fee != 0 || po.Refund != 0 {
				bad("payout %s is %s but paid %s, fee %s, refund %s", po.ID, po.Status, po.Paid, po.Fee, po.Refund)
			}
			r.Held += po.Amount
		default:
			bad("payout %s has status %q", po.ID, po.Status)
		}
	}
	for _, a := range agrs {
		if a.Drawn+a.Refunded+a.Remaining != a.Locked {
			bad("agreement %s: drawn %s + refunded %s + remaining %s != locked %s", a.ID, a.Drawn, a.Refunded, a.Remaining, a.Locked)
		}
		if drawn[a.ID] != a.Drawn {
			bad("agreement %s: its payouts add up to %s, it drew %s", a.ID, drawn[a.ID], a.Drawn)
		}
		if a.Status != "active" && a.Status != "closing" && a.Remaining != 0 {
			bad("agreement %s is %s yet holds %s", a.ID, a.Status, a.Remaining)
		}
		r.Locked += a.Locked
		r.Refunded += a.Refunded
		r.Remaining += a.Remaining
		delete(drawn, a.ID)
	}
	if len(drawn) > 0 && len(agrs) > 0 {
		for id := range drawn {
			bad("payouts of agreement %s, which is not among the agreements", id)
		}
	}
	r.Refunded += payRefunds
	if len(pays) > 0 && len(agrs) > 0 && r.Paid+r.Fees+r.Refunded+r.Held+r.Remaining != r.Locked {
		bad("locked %s != paid %s + fees %s + refunded %s + held %s + remaining %s", r.Locked, r.Paid, r.Fees, r.Refunded, r.Held, r.Remaining)
	}
	for _, b := range open {
		r.OpenDeposits += b.Deposit
	}
	if escrow != nil && *escrow != r.OpenDeposits+r.Remaining+r.Held {
		bad("escrow account %s holds %s; open deposits %s + remaining %s + held payouts %s = %s",
			address.Module(market.EscrowAccount), *escrow, r.OpenDeposits, r.Remaining, r.Held, r.OpenDeposits+r.Remaining+r.Held)
	}
	r.OK = len(r.Problems) == 0
	return r
}

// books fetches what Reconcile needs: everything, or the records of
// --service-id, or the payouts made in --period.
func (r *marketRun) books(ctx context.Context, paymentsOnly bool) (Reconciliation, error) {
	p, err := market.QueryParams(ctx, r.node)
	if err != nil {
		return Reconciliation{}, err
	}
	f := market.Filter{Service: r.o.serviceID}
	al, err := market.QueryAgreements(ctx, r.node, f)
	if err != nil {
		return Reconciliation{}, err
	}
	pl, err := market.QueryPayouts(ctx, r.node, f)
	if err != nil {
		return Reconciliation{}, err
	}
	scope := "the whole marketplace"
	var escrow *coin.Amount
	var open []market.BidView
	switch {
	case paymentsOnly:
		from, err := r.since()
		if err != nil {
			return Reconciliation{}, err
		}
		var in []market.PayoutView
		for _, po := range pl.Payouts {
			if inPeriod(po.At, from) {
				in = append(in, po)
			}
		}
		rec := Reconcile(p, nil, in, nil, nil)
		rec.Scope = "payouts made in --period " + orAll(r.o.period)
		return rec, nil
	case r.o.serviceID != "":
		scope = "service " + r.o.serviceID
	default:
		acct, err := r.node.Account(ctx, address.Module(market.EscrowAccount))
		if err != nil {
			return Reconciliation{}, err
		}
		escrow = &acct.Balance
		bl, err := market.QueryBids(ctx, r.node, market.Filter{Status: "open"})
		if err != nil {
			return Reconciliation{}, err
		}
		open = bl.Bids
	}
	rec := Reconcile(p, al.Agreements, pl.Payouts, open, escrow)
	rec.Scope = scope
	return rec, nil
}

func orAll(s string) string {
	if s == "" {
		return "all"
	}
	return s
}

// printBooks prints a reconciliation and fails naming the records that do
// not add up.
func (r *marketRun) printBooks(rec Reconciliation) error {
	if err := r.g.Print(rec, func(w io.Writer) {
		fmt.Fprintf(w, "reconciling %s: %d agreements, %d payouts\n", rec.Scope, rec.Agreements, rec.Payouts)
		fmt.Fprintf(w, "  locked %s = paid %s + fees %s + refunded %s + held %s + remaining %s AITBC\n",
			rec.Locked, rec.Paid, rec.Fees, rec.Refunded, rec.Held, rec.Remaining)
		if rec.Escrow != nil {
			fmt.Fprintf(w, "  escrow %s = open bid deposits %s + remaining %s + held %s AITBC\n", *rec.Escrow, rec.OpenDeposits, rec.Remaining, rec.Held)
		}
		for _, p := range rec.Problems {
			fmt.Fprintf(w, "  MISMATCH %s\n", p)
		}
		if rec.OK {
			fmt.Fprintln(w, "ok: the books reconcile to the unit")
		}
	}); err != nil {
		return err
	}
	if !rec.OK {
		return fmt.Errorf("%d records do not reconcile: %s", len(rec.Problems), rec.Problems[0])
	}
	return nil
}

func (r *marketRun) reconcileCmd(ctx context.Context) error {
	rec, err := r.books(ctx, false)
	if err != nil {
		return err
	}
	return r.printBooks(rec)
}

// payment-verify checks the payouts of --period alone.
func (r *marketRun) paymentVerify(ctx context.Context) error {
	rec, err := r.books(ctx, true)
	if err != nil {
		return err
	}
	return r.printBooks(rec)
}

// record is one marketplace record in a time line.
type record struct {
	Kind    string      `json:"kind"` // bid, agreement, payout
	ID      string      `json:"id"`
	Service string      `json:"service_id"`
	Amount  coin.Amount `json:"amount"`
	Status  string      `json:"status"`
	Time    *time.Time  `json:"time,omitempty"`
	Height  int64       `json:"height"`
	From    string      `json:"from"`
	To      string      `json:"to"`
}

// records lists bids, agreements and payouts of --service-id, or made in
// --period.
func (r *marketRun) records(ctx context.Context) ([]record, error) {
	from, err := r.since()
	if err != nil {
		return nil, err
	}
	f := market.Filter{Service: r.o.serviceID}
	bl, err := market.QueryBids(ctx, r.node, f)
	if err != nil {
		return nil, err
	}
	al, err := market.QueryAgreements(ctx, r.node, f)
	if err != nil {
		return nil, err
	}
	pl, err := market.QueryPayouts(ctx, r.node, f)
	if err != nil {
		return nil, err
	}
	p, err := market.QueryParams(ctx, r.node)
	if err != nil {
		return nil, err
	}
	var out []record
	for _, b := range bl.Bids {
		var t *time.Time
		if b.Expires != nil { // a bid is made BidTTL before it expires
			x := b.Expires.Add(-time.Duration(p.BidTTL) * time.Second)
			t = &x
		}
		if inPeriod(t, from) {
			out = append(out, record{"bid", b.ID, b.Service, b.Total, b.Status, t, b.Created, b.Customer.String(), b.Provider.String()})
		}
	}
	for _, a := range al.Agreements {
		if inPeriod(a.Start, from) {
			out = append(out, record{"agreement", a.ID, a.Service, a.Locked, a.Status, a.Start, a.Accepted, a.Customer.String(), a.Provider.String()})
		}
	}
	for _, po := range pl.Payouts {
		if inPeriod(po.At, from) {
			out = append(out, record{"payout", po.ID, po.Service, po.Amount, po.Status, po.At, po.Created, po.Customer.String(), po.Provider.String()})
		}
	}
	return out, nil
}

func (r *marketRun) transactions(ctx context.Context) error {
	recs, err := r.records(ctx)
	if err != nil {
		return err
	}
	return r.g.Print(recs, func(w io.Writer) {
		for _, x := range recs {
			fmt.Fprintf(w, "%-9s %-10s service %-12s %12s AITBC  %-9s height %d  %s -> %s\n", x.Kind, x.ID, x.Service, x.Amount, x.Status, x.Height, x.From, x.To)
		}
		fmt.Fprintf(w, "%d records (period %s)\n", len(recs), orAll(r.o.period))
	})
}

// Revenue is a provider's payouts in a period.
type Revenue struct {
	Provider address.Address `json:"provider"`
	Period   string          `json:"period"`
	Payouts  int             `json:"payouts"`
	Paid     coin.Amount     `json:"paid"`
	Fees     coin.Amount     `json:"fees_burned"`
	Held     coin.Amount     `json:"held"`
	Refunded coin.Amount     `json:"refunded_after_disputes"`
}

func (r *marketRun) revenue(ctx context.Context) error {
	if err := need("wallet", r.o.wallet); err != nil {
		return err
	}
	prov, err := r.addr(ctx, r.o.wallet)
	if err != nil {
		return err
	}
	from, err := r.since()
	if err != nil {
		return err
	}
	pl, err := market.QueryPayouts(ctx, r.node, market.Filter{Provider: &prov})
	if err != nil {
		return err
	}
	out := Revenue{Provider: prov, Period: orAll(r.o.period)}
	for _, po := range pl.Payouts {
		if !inPeriod(po.At, from) {
			continue
		}
		out.Payouts++
		out.Paid += po.Paid
		out.Fees += po.Fee
		out.Refunded += po.Refund
		if po.Status == "held" || po.Status == "disputed" {
			out.Held += po.Amount
		}
	}
	return r.g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "revenue of %s (%s) in %s: %s AITBC paid from %d payouts, %s AITBC fees, %s AITBC held, %s AITBC refunded\n",
			r.o.wallet, prov, out.Period, out.Paid, out.Payouts, out.Fees, out.Held, out.Refunded)
	})
}

func (r *marketRun) volume(ctx context.Context) error {
	from, err := r.since()
	if err != nil {
		return err
	}
	al, err := market.QueryAgreements(ctx, r.node, market.Filter{Service: r.o.serviceID})
	if err != nil {
		return err
	}
	var v coin.Amount
	n := 0
	for _, a := range al.Agreements {
		if inPeriod(a.Start, from) {
			v += a.Locked
			n++
		}
	}
	out := map[string]any{"period": orAll(r.o.period), "agreements": n, "volume": v}
	return r.g.Print(out, func(w io.Writer) { fmt.Fprintf(w, "%s AITBC\n", v) })
}

func (r *marketRun) audit(ctx context.Context) error {
	if err := r.transactions(ctx); err != nil {
		return err
	}
	return r.reconcileCmd(ctx)
}

// financialAudit reconciles and asks the node to run the chain's market
// invariants now.
func (r *marketRun) financialAudit(ctx context.Context) error {
	rec, err := r.books(ctx, false)
	if err != nil {
		return err
	}
	au, err := r.node.Audit(ctx)
	if err != nil {
		return err
	}
	var inv []string
	for _, i := range au.Invariants {
		if strings.HasPrefix(i.Name, "market/") || i.Name == "bank/supply" {
			st := "ok  "
			if !i.OK {
				st = "FAIL"
				rec.Problems = append(rec.Problems, i.Name+": "+i.Detail)
				rec.OK = false
			}
			inv = append(inv, fmt.Sprintf("%s %s: %s", st, i.Name, i.Detail))
		}
	}
	if !r.g.JSON() {
		fmt.Fprintf(r.g.Stdout(), "chain invariants at height %d:\n", au.Height)
		for _, l := range inv {
			fmt.Fprintln(r.g.Stdout(), "  "+l)
		}
	}
	return r.printBooks(rec)
}

// ProviderCheck is verify-provider's answer.
type ProviderCheck struct {
	market.ProviderView
	Checks []string `json:"checks"`
}

func (r *marketRun) verifyProvider(ctx context.Context) error {
	if err := need("wallet", r.o.wallet); err != nil {
		return err
	}
	a, err := r.addr(ctx, r.o.wallet)
	if err != nil {
		return err
	}
	pv, err := market.QueryProvider(ctx, r.node, a)
	if err != nil {
		return err
	}
	out := ProviderCheck{ProviderView: pv}
	check := func(ok bool, format string, args ...any) {
		mark := "ok  "
		if !ok {
			mark = "no  "
		}
		out.Checks = append(out.Checks, mark+fmt.Sprintf(format, args...))
	}
	if m := pv.Miner; m != nil {
		check(m.Status == "active", "registered miner (%s), stake %s AITBC", m.Status, m.Stake)
		age := time.Since(m.LastHeartbeat).Round(time.Second)
		check(age <= market.HeartbeatFresh*time.Second, "last heartbeat %s ago", age)
		check(true, "%d jobs settled with signed receipts, GPU %s, models %v", m.JobsSettled, m.GPU, m.Models)
	} else if len(pv.Serving) == 0 {
		check(false, "runs no miner and names none that consents: no stake, no heartbeats, and a job under its agreements could run nowhere")
	} else {
		check(true, "runs no miner of its own; served by %d miners it named that named it back", len(pv.Serving))
	}
	for _, l := range pv.Miners {
		check(l.Consented && l.Active, "names miner %s: %s, %s", l.Miner, yesNo(l.Consented, "named back", "not named back (miner start --provider)"), yesNo(l.Active, "active", "not an active miner"))
	}
	active := 0
	for _, s := range pv.Services {
		if s.Status == "active" {
			active++
		}
	}
	check(active > 0, "%d active listings of %d", active, len(pv.Services))
	f := pv.Facts
	check(f.DisputesLost == 0, "%d disputes, %d lost", f.Disputes, f.DisputesLost)
	check(true, "%d agreements, %d jobs delivered, %d failed, %d payouts released, revenue %s AITBC", f.Agreements, f.Delivered, f.Failed, f.Released, f.Revenue)
	return r.g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "provider %s (%s): reputation %d/100 — %s\n", r.o.wallet, a, pv.Reputation.Score, pv.Reputation.Why)
		for _, c := range out.Checks {
			fmt.Fprintln(w, "  "+c)
		}
	})
}

// Quality is a service's record.
type Quality struct {
	Service      string  `json:"service_id"`
	Agreements   int     `json:"agreements"`
	Jobs         uint32  `json:"jobs"`
	Delivered    uint32  `json:"delivered"`
	Failed       uint32  `json:"failed"`
	SuccessRate  float64 `json:"success_rate"`
	Payouts      int     `json:"payouts"`
	Disputed     int     `json:"disputed"`
	Refunded     int     `json:"refunded"`
	Ratings      int     `json:"ratings"`
	AverageStars float64 `json:"average_stars"`
	// Speed of the provider's miner (its own, or the first miner it named
	// that named it back: those alone run the service's jobs), as the
	// coordinator measures it (GET /v1/miners): a moving average from
	// dispatch to the first streamed token, and tokens per second. Absent
	// while unknown; Speed says why.
	Provider     string   `json:"provider"`
	Serving      []string `json:"serving_miners"`
	FirstTokenMs *float64 `json:"first_token_ms,omitempty"`
	TokensPerSec *float64 `json:"tokens_per_sec,omitempty"`
	Speed        string   `json:"speed"`
}

// minerSpeed reads the coordinator's measurements of the provider's
// miners (serving): time to first token and tokens/s of the first
// connected one that has run a job, or why there are none.
func (r *marketRun) minerSpeed(ctx context.Context, serving []string) (ttft, tps *float64, why string) {
	ms, err := coordinator.NewClient(r.g.Coord, "").Miners(ctx)
	if err != nil {
		return nil, nil, fmt.Sprintf("coordinator %s not reachable: %v", r.g.Coord, err)
	}
	connected := false
	for _, m := range ms {
		if !slices.Contains(serving, m.Address) {
			continue
		}
		connected = true
		if m.TokensPerSec <= 0 && m.FirstTokenMs == nil {
			continue
		}
		if m.TokensPerSec > 0 {
			v := m.TokensPerSec
			tps = &v
		}
		ttft = m.FirstTokenMs
		return ttft, tps, "measured by coordinator " + r.g.Coord
	}
	if connected {
		return nil, nil, "the provider's miner is connected but has run no job yet"
	}
	return nil, nil, "no miner of the provider is connected to coordinator " + r.g.Coord
}

func (r *marketRun) qualityMetrics(ctx context.Context) error {
	if err := need("service-id", r.o.serviceID); err != nil {
		return err
	}
	svc, err := market.QueryService(ctx, r.node, r.o.serviceID)
	if err != nil {
		return err
	}
	f := market.Filter{Service: r.o.serviceID}
	al, err := market.QueryAgreements(ctx, r.node, f)
	if err != nil {
		return err
	}
	pl, err := market.QueryPayouts(ctx, r.node, f)
	if err != nil {
		return err
	}
	rl, err := market.QueryRatings(ctx, r.node, f)
	if err != nil {
		return err
	}
	q := Quality{Service: r.o.serviceID, Agreements: len(al.Agreements), Payouts: len(pl.Payouts), Ratings: len(rl.Ratings),
		Provider: svc.Provider.String(), Serving: []string{}}
	for _, m := range svc.Serving {
		q.Serving = append(q.Serving, m.String())
	}
	q.FirstTokenMs, q.TokensPerSec, q.Speed = r.minerSpeed(ctx, q.Serving)
	for _, a := range al.Agreements {
		q.Jobs += a.Jobs
		q.Delivered += a.Delivered
		q.Failed += a.Failed
	}
	if q.Delivered+q.Failed > 0 {
		q.SuccessRate = float64(q.Delivered) / float64(q.Delivered+q.Failed)
	}
	for _, p := range pl.Payouts {
		if p.Reason != "" {
			q.Disputed++
		}
		if p.Status == "refunded" {
			q.Refunded++
		}
	}
	stars := 0
	for _, x := range rl.Ratings {
		stars += int(x.Stars)
	}
	if q.Ratings > 0 {
		q.AverageStars = float64(stars) / float64(q.Ratings)
	}
	return r.g.Print(q, func(w io.Writer) {
		fmt.Fprintf(w, "service %s: %d agreements, %d jobs (%d delivered, %d failed, success %.1f%%), %d payouts (%d disputed, %d refunded), %d ratings averaging %.2f stars\n",
			q.Service, q.Agreements, q.Jobs, q.Delivered, q.Failed, 100*q.SuccessRate, q.Payouts, q.Disputed, q.Refunded, q.Ratings, q.AverageStars)
		ttft, tps := "unknown", "unknown"
		if q.FirstTokenMs != nil {
			ttft = fmt.Sprintf("%.0f ms", *q.FirstTokenMs)
		}
		if q.TokensPerSec != nil {
			tps = fmt.Sprintf("%.1f", *q.TokensPerSec)
		}
		fmt.Fprintf(w, "provider %s's miner: time to first token %s, tokens/s %s (%s)\n", q.Provider, ttft, tps, q.Speed)
	})
}

func (r *marketRun) satisfaction(ctx context.Context) error {
	if err := need("wallet", r.o.wallet); err != nil {
		return err
	}
	a, err := r.addr(ctx, r.o.wallet)
	if err != nil {
		return err
	}
	var all []market.RatingView
	for _, f := range []market.Filter{{Provider: &a}, {Customer: &a}} {
		rl, err := market.QueryRatings(ctx, r.node, f)
		if err != nil {
			return err
		}
		all = append(all, rl.Ratings...)
	}
	var got, given, gotN, givenN int
	for _, x := range all {
		if x.Provider == a {
			got += int(x.Stars)
			gotN++
		} else {
			given += int(x.Stars)
			givenN++
		}
	}
	avg := func(s, n int) float64 {
		if n == 0 {
			return 0
		}
		return float64(s) / float64(n)
	}
	out := map[string]any{"wallet": a, "ratings_received": gotN, "average_received": avg(got, gotN), "ratings_given": givenN,
		"average_given": avg(given, givenN), "ratings": all}
	return r.g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %d ratings received (average %.2f stars), %d given (average %.2f stars)\n", r.o.wallet, gotN, avg(got, gotN), givenN, avg(given, givenN))
		for _, x := range all {
			fmt.Fprintf(w, "  %d stars  service %s  agreement %s  %q\n", x.Stars, x.Service, x.Agreement, x.Review)
		}
	})
}

func (r *marketRun) capacity(ctx context.Context) error {
	list, err := market.QueryServices(ctx, r.node, market.ServiceFilter{})
	if err != nil {
		return err
	}
	return r.g.Print(list, func(w io.Writer) {
		var live uint32
		for _, s := range list.Services {
			c := "unlimited"
			if s.Capacity > 0 {
				c = fmt.Sprint(s.Capacity)
			}
			fmt.Fprintf(w, "service_id %s | %s | live agreements %d of %s | available now %v\n", s.ID, s.Status, s.Live, c, s.AvailableNow)
			live += s.Live
		}
		fmt.Fprintf(w, "%d services, %d live agreements\n", len(list.Services), live)
	})
}

// Reach is one endpoint's answer.
type Reach struct {
	Service string  `json:"service"`
	URL     string  `json:"url"`
	OK      bool    `json:"ok"`
	Millis  float64 `json:"ms"`
	Detail  string  `json:"detail"`
}

// health reaches the node (required), the wallet daemon and the
// coordinator, timing each.
func (r *marketRun) health(ctx context.Context) error {
	var out []Reach
	try := func(name, url string, fn func(ctx context.Context) (string, error)) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		t0 := time.Now()
		d, err := fn(cctx)
		x := Reach{Service: name, URL: url, OK: err == nil, Millis: float64(time.Since(t0).Microseconds()) / 1000, Detail: d}
		if err != nil {
			x.Detail = err.Error()
		}
		out = append(out, x)
	}
	try("node", r.g.Node, func(ctx context.Context) (string, error) {
		h, err := r.node.Health(ctx)
		if err != nil {
			return "", err
		}
		p, err := market.QueryParams(ctx, r.node)
		if err != nil {
			return "", fmt.Errorf("the node answers but has no marketplace: %w", err)
		}
		return fmt.Sprintf("%s at height %d, chain %s, marketplace fee %d bps", h.Status, h.Height, h.ChainID, p.FeeBps), nil
	})
	try("wallet daemon", r.g.WalletURL, func(ctx context.Context) (string, error) {
		h, err := walletd.NewClient(r.g.WalletURL, r.g.daemonAPIKey()).Health(ctx)
		return fmt.Sprintf("%s, %d wallets", h.Status, h.Wallets), err
	})
	try("coordinator", r.g.Coord, func(ctx context.Context) (string, error) {
		h, err := coordinator.NewClient(r.g.Coord, "").Health(ctx)
		return fmt.Sprintf("%s, %d miners, %d queued, %d active", h.Status, h.Miners, h.Queued, h.Active), err
	})
	if err := r.g.Print(out, func(w io.Writer) {
		for _, x := range out {
			st := "ok  "
			if !x.OK {
				st = "FAIL"
			}
			fmt.Fprintf(w, "%s %-13s %-28s %7.1f ms  %s\n", st, x.Service, x.URL, x.Millis, x.Detail)
		}
	}); err != nil {
		return err
	}
	if !out[0].OK {
		return fmt.Errorf("the node at %s does not answer: %s", r.g.Node, out[0].Detail)
	}
	return nil
}

func (r *marketRun) debug(ctx context.Context) error {
	if err := need("transaction-id", r.o.txID); err != nil {
		return err
	}
	t, err := r.node.Tx(ctx, r.o.txID)
	if err != nil {
		return err
	}
	return r.g.Print(t, func(w io.Writer) {
		fmt.Fprintf(w, "tx %s: %s at height %d, type %s, from %s, nonce %d, fee %s AITBC\n", t.Hash, t.Status, t.Height, t.Type, t.From, t.Nonce, t.Fee)
		if t.Error != "" {
			fmt.Fprintf(w, "  refused (%s %d): %s\n", t.Codespace, t.Code, t.Error)
		}
		if t.Body != nil {
			b, _ := json.MarshalIndent(t.Body, "  ", "  ")
			fmt.Fprintf(w, "  message: %s\n", b)
		}
	})
}

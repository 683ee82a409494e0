package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/rpc"
)

// marketOpts are the flags of `marketplace --action` and `market <verb>`.
type marketOpts struct {
	name, typ, price, wallet, description, parameters, query string
	serviceID, bidID, amount, period, password, unit, model  string
	review, payoutID, minPrice, maxPrice, strategy, metric   string
	txID, jobID                                              string
	miner, provider                                          string
	units, maxTokens                                         uint64
	capacity, stars, minScore                                uint
	autoAccept, refund                                       bool
	flags                                                    map[string]*string // the load-test flags, by name
}

// marketRun runs marketplace actions for one command invocation.
type marketRun struct {
	g    *Globals
	o    *marketOpts
	node *rpc.Client
}

// marketAction is one verb: what it does (for help) and how.
type marketAction struct {
	help string
	run  func(r *marketRun, ctx context.Context) error
}

// marketActions are every verb, the seed's 35 and the module's own.
var marketActions = map[string]marketAction{
	// listings
	"create":      {"list a service: --name --type --price --wallet [--description --parameters k:v,... --unit --capacity --auto-accept --model]", (*marketRun).create},
	"list":        {"list the marketplace's services: one line `service_id <id> | <name> | ...` each", (*marketRun).list},
	"search":      {"services matching every word of --query", (*marketRun).list},
	"my-listings": {"the services of --wallet, closed ones included", (*marketRun).list},
	"pause":       {"pause a listing: --service-id --wallet", updater(market.OpPause)},
	"resume":      {"resume a paused listing: --service-id --wallet", updater(market.OpResume)},
	"close":       {"close a listing for good: --service-id --wallet", updater(market.OpClose)},
	"reprice":     {"set a listing's price: --service-id --price --wallet (refused under a live agreement)", (*marketRun).reprice},
	"pricing":     {"dynamic pricing bounds: --service-id --strategy dynamic [--min-price --max-price --price] --wallet", (*marketRun).pricing},
	// orders
	"bid":            {"bid --amount per unit for --units (1) of --service-id from --wallet; a deposit is held while it is open", (*marketRun).bid},
	"accept-bid":     {"accept --bid-id on --service-id as its provider --wallet: an agreement, the payment locked", (*marketRun).acceptBid},
	"reject-bid":     {"reject an open bid: --bid-id --wallet (its deposit returns)", endBid(market.NewRejectMsg)},
	"withdraw-bid":   {"withdraw your open bid: --bid-id --wallet (its deposit returns)", endBid(market.NewWithdrawMsg)},
	"pending-bids":   {"open bids, one line `bid_id <id> | ...` each [--service-id, --wallet: on its services]", (*marketRun).pendingBids},
	"settle-payment": {"pay --amount of your agreement on --service-id to its provider, from --wallet", (*marketRun).settle},
	"agreements":     {"agreements [--service-id, --wallet: as customer or provider]", (*marketRun).agreements},
	"close-agreement": {"close an agreement (--bid-id: its id) as customer or provider; the rest is refunded",
		refMsg(market.NewCloseMsg)},
	"claim": {"draw what a per-hour lease has earned: --bid-id (the agreement) --wallet", refMsg(market.NewClaimMsg)},
	"order": {"reverse auction: an agreement with the cheapest auto-accepting --type [--model] at most --amount per unit, --units, --min-score",
		(*marketRun).order},
	"quote": {"what a job would cost now: --type --model --max-tokens --units; why nobody qualifies when nobody does", (*marketRun).quote},
	// trust
	"rate":    {"rate a delivered job (--job-id) or a paid agreement (--bid-id): --stars 1-5 --review --wallet", (*marketRun).rate},
	"dispute": {"dispute a held payout: --payout-id --review <reason> --wallet", (*marketRun).dispute},
	"resolve": {"end a dispute: the provider refunds (--refund), the customer releases", (*marketRun).resolve},
	// money
	"transactions":      {"marketplace records (bids, agreements, payouts) in --period or of --service-id", (*marketRun).transactions},
	"revenue":           {"a provider's payouts in --period: paid, fees, held", (*marketRun).revenue},
	"volume":            {"AITBC locked by agreements started in --period (one figure)", (*marketRun).volume},
	"verify-settlement": {"reconcile every agreement of --service-id to the unit", (*marketRun).reconcileCmd},
	"audit":             {"records in --period, then reconcile the marketplace", (*marketRun).audit},
	"financial-audit":   {"reconcile the marketplace and run the chain's market invariants", (*marketRun).financialAudit},
	"payment-verify":    {"check every payout in --period: paid + fee = amount, fee as the params say", (*marketRun).paymentVerify},
	"reconcile":         {"escrow = open deposits + agreements' remainders + held payouts; locked = paid + refunded + fees", (*marketRun).reconcileCmd},
	// providers
	"verify-provider":  {"a provider's registration, stake, heartbeat, listings and record: --wallet", (*marketRun).verifyProvider},
	"quality-metrics":  {"a service's delivered and failed jobs, disputes and ratings: --service-id", (*marketRun).qualityMetrics},
	"satisfaction":     {"ratings given to or by --wallet", (*marketRun).satisfaction},
	"capacity-metrics": {"capacity and live agreements per service", (*marketRun).capacity},
	// operations
	"health-check":      {"node, wallet daemon and coordinator answer; the chain's invariants hold", (*marketRun).health},
	"connectivity-test": {"reach the node, wallet daemon and coordinator and time each", (*marketRun).health},
	"integrity-check":   {"the chain's market invariants and the reconciliation", (*marketRun).financialAudit},
	"debug":             {"a transaction's status, error and message: --transaction-id", (*marketRun).debug},
	// not yet
	"optimize":            {"advice from a provider's own figures: --wallet --metric utilization", (*marketRun).optimize},
	"compliance-check":    {"open listings against the rules: price bounds, expired availability, capacity, provider stake and heartbeat", (*marketRun).complianceCheck},
	"regulatory-audit":    {"volume per counterparty and per service type in --period (--output csv)", (*marketRun).regulatoryAudit},
	"privacy-audit":       {"what the chain holds of --service-id's jobs (hashes only) and what the coordinator keeps", (*marketRun).privacyAudit},
	"performance-metrics": {"marketplace records per minute in --period and the block cadence, from the chain", (*marketRun).performanceMetrics},
	"latency-metrics":     {"read latency of the marketplace and the node (p50, p95) and the block interval, measured now", (*marketRun).latencyMetrics},
	"throughput-test":     {"offer --transactions-per-second bids for --duration seconds on a temporary chain: committed rate and wait for the block", (*marketRun).throughputTest},
	"ai-throughput-test":  {"submit inference jobs to the coordinator at --jobs-per-minute for --duration seconds and follow each to settlement", (*marketRun).aiThroughputTest},
	"stress-test":         {"--transactions --concurrent on a temporary single-validator chain (bench market)", (*marketRun).stressTest},
	"cross-node-stats":    {"the same listings and agreements on every node of --node (comma-separated)", (*marketRun).crossNode},
}

// marketVerbs lists the verbs sorted, for help.
func marketVerbs() []string {
	out := make([]string, 0, len(marketActions))
	for k := range marketActions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func marketHelp() string {
	var b strings.Builder
	for _, v := range marketVerbs() {
		fmt.Fprintf(&b, "  %-18s %s\n", v, marketActions[v].help)
	}
	return b.String()
}

// runMarket runs one verb.
func runMarket(ctx context.Context, g *Globals, o *marketOpts, verb string) error {
	a, ok := marketActions[verb]
	if !ok {
		return usagef("unknown marketplace action %q; one of: %s", verb, strings.Join(marketVerbs(), ", "))
	}
	r := &marketRun{g: g, o: o, node: g.node()}
	if verb == "search" && strings.TrimSpace(o.query) == "" {
		return usagef("search needs --query")
	}
	if verb != "search" {
		o.query = ""
	}
	if verb == "my-listings" {
		if err := need("wallet", o.wallet); err != nil {
			return err
		}
	}
	return a.run(r, ctx)
}

func need(flag, v string) error {
	if strings.TrimSpace(v) == "" {
		return usagef("--%s is required", flag)
	}
	return nil
}

func amountFlag(flag, v string) (coin.Amount, error) {
	if err := need(flag, v); err != nil {
		return 0, err
	}
	a, err := coin.Parse(strings.TrimSpace(v))
	if err != nil {
		return 0, usagef("--%s: %v", flag, err)
	}
	if a == 0 {
		return 0, usagef("--%s must be positive", flag)
	}
	return a, nil
}

// parsePeriod reads the seeds' periods: 5m, 1h, 24h, 7d, 30d ("" or
// "all": everything).
func parsePeriod(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" || s == "all" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 {
			return 0, usagef("--period %q: a number of days (7d), hours (24h) or minutes (5m)", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, usagef("--period %q: a number of days (7d), hours (24h) or minutes (5m)", s)
	}
	return d, nil
}

// since is the start of --period ("zero": no bound).
func (r *marketRun) since() (time.Time, error) {
	d, err := parsePeriod(r.o.period)
	if err != nil || d == 0 {
		return time.Time{}, err
	}
	return time.Now().Add(-d), nil
}

func inPeriod(t *time.Time, from time.Time) bool { return from.IsZero() || t != nil && !t.Before(from) }

func (r *marketRun) addr(ctx context.Context, wallet string) (address.Address, error) {
	if a, err := address.Parse(wallet); err == nil {
		return a, nil
	}
	return r.g.walletAddress(ctx, wallet)
}

// submit signs msg with --wallet, submits it and waits for its block: a
// refused message is an error naming the chain's reason.
func (r *marketRun) submit(ctx context.Context, msg tx.Msg) (rpc.Transaction, address.Address, error) {
	var zero address.Address
	if err := need("wallet", r.o.wallet); err != nil {
		return rpc.Transaction{}, zero, err
	}
	w, err := r.g.wallets(ctx)
	if err != nil {
		return rpc.Transaction{}, zero, err
	}
	info, err := w.Get(ctx, r.o.wallet)
	if err != nil {
		return rpc.Transaction{}, zero, err
	}
	pw, err := r.g.signingPassword(ctx, w, r.o.wallet, r.o.password)
	if err != nil {
		return rpc.Transaction{}, zero, w.explain(r.g, r.o.wallet, err)
	}
	sub, err := w.SignAndSubmit(ctx, r.o.wallet, pw, msg, 0)
	if err != nil {
		return rpc.Transaction{}, zero, w.explain(r.g, r.o.wallet, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := r.node.WaitTx(wctx, sub.TxHash, 100*time.Millisecond)
	if err != nil {
		return rpc.Transaction{}, zero, fmt.Errorf("transaction %s submitted, but: %w", sub.TxHash, err)
	}
	if res.Status != "committed" {
		return res, zero, fmt.Errorf("%s refused (%s): %s", msg.Type, res.Codespace, res.Error)
	}
	return res, info.Address, nil
}

// txLine is what every signing verb prints after its own lines.
func txLine(w io.Writer, t rpc.Transaction) {
	fmt.Fprintf(w, "tx %s committed in block %d\n", t.Hash, t.Height)
}

func serviceLine(w io.Writer, s market.ServiceView) {
	fmt.Fprintf(w, "service_id %s | %s | %s | %s AITBC per %s | %s | provider %s", s.ID, s.Name, s.Type, s.Price, s.Unit, s.Status, s.Provider)
	if s.GPU != "" {
		fmt.Fprintf(w, " | %s", s.GPU)
	}
	fmt.Fprintln(w)
}

func (r *marketRun) create(ctx context.Context) error {
	o := r.o
	if err := need("name", o.name); err != nil {
		return err
	}
	typ := market.NormalizeType(o.typ)
	if typ == "" {
		return usagef("--type %q: one of %s", o.typ, strings.Join(market.Types, ", "))
	}
	price, err := amountFlag("price", o.price)
	if err != nil {
		return err
	}
	params, err := market.ParseParams(o.parameters)
	if err != nil {
		return usagef("--parameters: %v", err)
	}
	unit := ""
	if o.unit != "" {
		if unit = market.NormalizeUnit(o.unit); unit == "" {
			return usagef("--unit %q: one of %s", o.unit, strings.Join(market.Units, ", "))
		}
	}
	spec := market.ListingSpec{ID: o.serviceID, Name: o.name, Type: typ, Unit: unit, Price: price, Description: o.description,
		Params: params, Model: o.model, Capacity: uint32(o.capacity), AutoAccept: o.autoAccept}
	res, prov, err := r.submit(ctx, market.NewCreateMsg(spec))
	if err != nil {
		return err
	}
	list, err := market.QueryServices(ctx, r.node, market.ServiceFilter{Provider: &prov, All: true})
	if err != nil {
		return err
	}
	var found *market.ServiceView
	for i, s := range list.Services {
		if s.Created == res.Height && s.Name == o.name && (o.serviceID == "" || s.ID == o.serviceID) {
			found = &list.Services[i]
		}
	}
	if found == nil {
		return fmt.Errorf("listing committed in block %d (tx %s) but not found among %s's services", res.Height, res.Hash, prov)
	}
	return r.g.Print(found, func(w io.Writer) {
		serviceLine(w, *found)
		txLine(w, res)
	})
}

func (r *marketRun) list(ctx context.Context) error {
	f := market.ServiceFilter{Query: r.o.query}
	if r.o.wallet != "" {
		a, err := r.addr(ctx, r.o.wallet)
		if err != nil {
			return err
		}
		f.Provider, f.All = &a, true
	}
	if r.o.typ != "" {
		f.Type = r.o.typ
	}
	list, err := market.QueryServices(ctx, r.node, f)
	if err != nil {
		return err
	}
	return r.g.Print(list, func(w io.Writer) {
		for _, s := range list.Services {
			serviceLine(w, s)
		}
		fmt.Fprintf(w, "%d services at height %d\n", len(list.Services), list.Height)
	})
}

func updater(op string) func(*marketRun, context.Context) error {
	return func(r *marketRun, ctx context.Context) error {
		if err := need("service-id", r.o.serviceID); err != nil {
			return err
		}
		return r.listingMsg(ctx, market.NewUpdateMsg(r.o.serviceID, op))
	}
}

func (r *marketRun) listingMsg(ctx context.Context, msg tx.Msg) error {
	res, _, err := r.submit(ctx, msg)
	if err != nil {
		return err
	}
	s, err := market.QueryService(ctx, r.node, r.o.serviceID)
	if err != nil {
		return err
	}
	return r.g.Print(s, func(w io.Writer) {
		serviceLine(w, s.ServiceView)
		txLine(w, res)
	})
}

func (r *marketRun) reprice(ctx context.Context) error {
	if err := need("service-id", r.o.serviceID); err != nil {
		return err
	}
	p, err := amountFlag("price", r.o.price)
	if err != nil {
		return err
	}
	return r.listingMsg(ctx, market.NewRepriceMsg(r.o.serviceID, p))
}

// pricing sets a listing's dynamic price bounds: by default half and
// twice its price now.
func (r *marketRun) pricing(ctx context.Context) error {
	if err := need("service-id", r.o.serviceID); err != nil {
		return err
	}
	if r.o.strategy != "dynamic" {
		return usagef("--strategy %q: dynamic (a fixed price is set with reprice)", r.o.strategy)
	}
	s, err := market.QueryService(ctx, r.node, r.o.serviceID)
	if err != nil {
		return err
	}
	price, lo, hi := s.Price, s.Price/2, s.Price*2
	if lo == 0 {
		lo = 1
	}
	for _, x := range []struct {
		flag string
		dst  *coin.Amount
	}{{"price", &price}, {"min-price", &lo}, {"max-price", &hi}} {
		v := map[string]string{"price": r.o.price, "min-price": r.o.minPrice, "max-price": r.o.maxPrice}[x.flag]
		if v != "" {
			if *x.dst, err = amountFlag(x.flag, v); err != nil {
				return err
			}
		}
	}
	return r.listingMsg(ctx, market.NewPricingMsg(r.o.serviceID, price, lo, hi))
}

func bidLine(w io.Writer, b market.BidView) {
	fmt.Fprintf(w, "bid_id %s | service %s | %s AITBC x %d = %s AITBC | deposit %s | %s | customer %s\n",
		b.ID, b.Service, b.Price, b.Units, b.Total, b.Deposit, b.Status, b.Customer)
}

func agreementLine(w io.Writer, a market.AgreementView) {
	fmt.Fprintf(w, "agreement_id %s | service %s | %s AITBC per %s x %d | locked %s, paid out %s, refunded %s, remaining %s | %s\n",
		a.ID, a.Service, a.Price, a.Unit, a.Units, a.Locked, a.Drawn, a.Refunded, a.Remaining, a.Status)
}

func (r *marketRun) bid(ctx context.Context) error {
	if err := need("service-id", r.o.serviceID); err != nil {
		return err
	}
	amt, err := amountFlag("amount", r.o.amount)
	if err != nil {
		return err
	}
	units := max(r.o.units, 1)
	res, cust, err := r.submit(ctx, market.NewBidMsg(r.o.serviceID, amt, units, r.o.autoAccept))
	if err != nil {
		return err
	}
	bids, err := market.QueryBids(ctx, r.node, market.Filter{Customer: &cust, Service: r.o.serviceID})
	if err != nil {
		return err
	}
	var found *market.BidView
	for i, b := range bids.Bids {
		if b.Created == res.Height {
			found = &bids.Bids[i]
		}
	}
	if found == nil {
		return fmt.Errorf("bid committed in block %d (tx %s) but not found", res.Height, res.Hash)
	}
	return r.g.Print(found, func(w io.Writer) {
		bidLine(w, *found)
		if found.Status == "accepted" {
			fmt.Fprintf(w, "agreement_id %s: the listing accepted it at once\n", found.ID)
		}
		txLine(w, res)
	})
}

// acceptBid accepts --bid-id. The seed names bids it cannot know
// ("bid_123"): when --bid-id is no bid and the service has exactly one
// open bid, that one is accepted, and stderr says so.
func (r *marketRun) acceptBid(ctx context.Context) error {
	if err := need("service-id", r.o.serviceID); err != nil {
		return err
	}
	if err := need("bid-id", r.o.bidID); err != nil {
		return err
	}
	id := r.o.bidID
	b, err := market.QueryBid(ctx, r.node, id)
	switch {
	case err == nil && b.Service != r.o.serviceID:
		return fmt.Errorf("bid %s is on service %s, not %s", id, b.Service, r.o.serviceID)
	case err != nil:
		s, serr := market.QueryService(ctx, r.node, r.o.serviceID)
		if serr != nil {
			return serr
		}
		if len(s.OpenBids) != 1 {
			ids := make([]string, 0, len(s.OpenBids))
			for _, ob := range s.OpenBids {
				ids = append(ids, ob.ID)
			}
			return fmt.Errorf("bid %q: %w; open bids on %s: [%s]", id, err, r.o.serviceID, strings.Join(ids, " "))
		}
		id = s.OpenBids[0].ID
		fmt.Fprintf(r.g.Stderr(), "note: %q is not a bid id; accepting the only open bid on %s, %s\n", r.o.bidID, r.o.serviceID, id)
	}
	res, _, err := r.submit(ctx, market.NewAcceptMsg(id))
	if err != nil {
		return err
	}
	a, err := market.QueryAgreement(ctx, r.node, id)
	if err != nil {
		return err
	}
	return r.g.Print(a, func(w io.Writer) {
		agreementLine(w, a)
		txLine(w, res)
	})
}

func endBid(mk func(string) tx.Msg) func(*marketRun, context.Context) error {
	return func(r *marketRun, ctx context.Context) error {
		if err := need("bid-id", r.o.bidID); err != nil {
			return err
		}
		res, _, err := r.submit(ctx, mk(r.o.bidID))
		if err != nil {
			return err
		}
		b, err := market.QueryBid(ctx, r.node, r.o.bidID)
		if err != nil {
			return err
		}
		return r.g.Print(b, func(w io.Writer) {
			bidLine(w, b)
			txLine(w, res)
		})
	}
}

func refMsg(mk func(string) tx.Msg) func(*marketRun, context.Context) error {
	return func(r *marketRun, ctx context.Context) error {
		if err := need("bid-id", r.o.bidID); err != nil {
			return err
		}
		res, _, err := r.submit(ctx, mk(r.o.bidID))
		if err != nil {
			return err
		}
		a, err := market.QueryAgreement(ctx, r.node, r.o.bidID)
		if err != nil {
			return err
		}
		return r.g.Print(a, func(w io.Writer) {
			agreementLine(w, a)
			txLine(w, res)
		})
	}
}

func (r *marketRun) pendingBids(ctx context.Context) error {
	f := market.Filter{Status: "open", Service: r.o.serviceID}
	if r.o.wallet != "" {
		a, err := r.addr(ctx, r.o.wallet)
		if err != nil {
			return err
		}
		f.Provider = &a
	}
	bids, err := market.QueryBids(ctx, r.node, f)
	if err != nil {
		return err
	}
	return r.g.Print(bids, func(w io.Writer) {
		for _, b := range bids.Bids {
			bidLine(w, b)
		}
		fmt.Fprintf(w, "%d open bids at height %d\n", len(bids.Bids), bids.Height)
	})
}

// settle pays --amount from the customer's oldest live agreement on
// --service-id that still holds that much (--bid-id picks one).
func (r *marketRun) settle(ctx context.Context) error {
	amt, err := amountFlag("amount", r.o.amount)
	if err != nil {
		return err
	}
	id := r.o.bidID
	if id == "" {
		if err := need("service-id", r.o.serviceID); err != nil {
			return err
		}
		if err := need("wallet", r.o.wallet); err != nil {
			return err
		}
		cust, err := r.addr(ctx, r.o.wallet)
		if err != nil {
			return err
		}
		al, err := market.QueryAgreements(ctx, r.node, market.Filter{Customer: &cust, Service: r.o.serviceID})
		if err != nil {
			return err
		}
		var live []string
		for _, a := range al.Agreements {
			if a.Status == "active" || a.Status == "closing" {
				live = append(live, fmt.Sprintf("%s (holds %s)", a.ID, a.Remaining))
				if id == "" && a.Remaining >= amt {
					id = a.ID
				}
			}
		}
		if id == "" {
			return fmt.Errorf("%s has no live agreement on %s holding %s AITBC (live: [%s]); a bid must be accepted first",
				r.o.wallet, r.o.serviceID, amt, strings.Join(live, ", "))
		}
	}
	res, _, err := r.submit(ctx, market.NewSettleMsg(id, amt))
	if err != nil {
		return err
	}
	a, err := market.QueryAgreement(ctx, r.node, id)
	if err != nil {
		return err
	}
	return r.g.Print(a, func(w io.Writer) {
		agreementLine(w, a)
		if n := len(a.Payouts); n > 0 {
			p := a.Payouts[n-1]
			fmt.Fprintf(w, "payout_id %s | %s AITBC | %s until %s (disputable until then)\n", p.ID, p.Amount, p.Status, fmtTime(p.ReleaseAt))
		}
		txLine(w, res)
	})
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (r *marketRun) agreements(ctx context.Context) error {
	all, err := r.agreementsOf(ctx)
	if err != nil {
		return err
	}
	return r.g.Print(all, func(w io.Writer) {
		for _, a := range all {
			agreementLine(w, a)
		}
		fmt.Fprintf(w, "%d agreements\n", len(all))
	})
}

// agreementsOf lists the agreements of --service-id and of --wallet (as
// customer or provider).
func (r *marketRun) agreementsOf(ctx context.Context) ([]market.AgreementView, error) {
	f := market.Filter{Service: r.o.serviceID}
	if r.o.wallet == "" {
		al, err := market.QueryAgreements(ctx, r.node, f)
		return al.Agreements, err
	}
	a, err := r.addr(ctx, r.o.wallet)
	if err != nil {
		return nil, err
	}
	var out []market.AgreementView
	for _, side := range []func(*market.Filter){func(f *market.Filter) { f.Customer = &a }, func(f *market.Filter) { f.Provider = &a }} {
		ff := f
		side(&ff)
		al, err := market.QueryAgreements(ctx, r.node, ff)
		if err != nil {
			return nil, err
		}
		out = append(out, al.Agreements...)
	}
	return out, nil
}

func (r *marketRun) order(ctx context.Context) error {
	typ := market.NormalizeType(r.o.typ)
	if typ == "" {
		return usagef("--type %q: one of %s", r.o.typ, strings.Join(market.Types, ", "))
	}
	maxPrice, err := amountFlag("amount", r.o.amount)
	if err != nil {
		return err
	}
	if r.o.minScore > 100 {
		return usagef("--min-score: 0-100")
	}
	res, cust, err := r.submit(ctx, market.NewOrderMsg(market.MsgOrder{Type: typ, Model: r.o.model, MaxPrice: maxPrice,
		Units: max(r.o.units, 1), MinScore: uint32(r.o.minScore)}))
	if err != nil {
		return err
	}
	al, err := market.QueryAgreements(ctx, r.node, market.Filter{Customer: &cust})
	if err != nil {
		return err
	}
	for _, a := range al.Agreements {
		if a.Accepted == res.Height {
			return r.g.Print(a, func(w io.Writer) {
				agreementLine(w, a)
				txLine(w, res)
			})
		}
	}
	return fmt.Errorf("order committed in block %d but its agreement was not found", res.Height)
}

func (r *marketRun) quote(ctx context.Context) error {
	typ := ""
	if r.o.typ != "" {
		if typ = market.NormalizeType(r.o.typ); typ == "" {
			return usagef("--type %q: one of %s", r.o.typ, strings.Join(market.Types, ", "))
		}
	}
	var maxPrice coin.Amount
	if r.o.amount != "" {
		var err error
		if maxPrice, err = amountFlag("amount", r.o.amount); err != nil {
			return err
		}
	}
	q, err := market.QueryQuote(ctx, r.node, market.QuoteRequest{Type: typ, Model: r.o.model, MaxTokens: r.o.maxTokens, Units: r.o.units, MaxPrice: maxPrice})
	if err != nil {
		return err
	}
	return r.g.Print(q, func(w io.Writer) {
		fmt.Fprintln(w, q.Answer)
		if q.Cheapest != nil {
			fmt.Fprintf(w, "cheapest %s AITBC, median %s AITBC, %d qualifying\n", q.Cheapest.Cost, q.Median, q.Qualifying)
		}
		for _, o := range q.Offers {
			why := "qualifies"
			if !o.Qualifies {
				why = "no: " + o.Why
			}
			fmt.Fprintf(w, "  %-7s %s %s %s AITBC per %s, %s AITBC in all, reputation %d: %s\n", o.Kind, o.Provider, o.Service, o.Price, o.Unit, o.Cost, o.Reputation, why)
		}
	})
}

func (r *marketRun) rate(ctx context.Context) error {
	if r.o.stars < 1 || r.o.stars > 5 {
		return usagef("--stars must be 1-5")
	}
	var msg tx.Msg
	switch {
	case r.o.jobID != "":
		id, err := parseJobID(r.o.jobID)
		if err != nil {
			return err
		}
		msg = market.NewRateMsg(id, uint8(r.o.stars), r.o.review)
	case r.o.bidID != "":
		msg = market.NewRateAgreementMsg(r.o.bidID, uint8(r.o.stars), r.o.review)
	default:
		return usagef("rate needs --job-id or --bid-id (the agreement)")
	}
	res, _, err := r.submit(ctx, msg)
	if err != nil {
		return err
	}
	out := map[string]any{"tx_hash": res.Hash, "height": res.Height, "stars": r.o.stars}
	return r.g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "rated %d stars\n", r.o.stars)
		txLine(w, res)
	})
}

func parseJobID(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "0x")
	b := make([]byte, len(s)/2)
	if _, err := fmt.Sscanf(s, "%x", &b); err != nil || len(s) != 32 {
		return nil, usagef("--job-id %q: 32 hex digits", s)
	}
	return b, nil
}

func (r *marketRun) payoutMsg(ctx context.Context, msg tx.Msg) error {
	res, _, err := r.submit(ctx, msg)
	if err != nil {
		return err
	}
	p, err := market.QueryPayout(ctx, r.node, r.o.payoutID)
	if err != nil {
		return err
	}
	return r.g.Print(p, func(w io.Writer) {
		fmt.Fprintf(w, "payout_id %s | %s AITBC | %s | paid %s, fee %s, refund %s %s\n", p.ID, p.Amount, p.Status, p.Paid, p.Fee, p.Refund, p.Ruling)
		txLine(w, res)
	})
}

func (r *marketRun) dispute(ctx context.Context) error {
	if err := need("payout-id", r.o.payoutID); err != nil {
		return err
	}
	if err := need("review", r.o.review); err != nil {
		return err
	}
	return r.payoutMsg(ctx, market.NewDisputeMsg(r.o.payoutID, r.o.review))
}

func (r *marketRun) resolve(ctx context.Context) error {
	if err := need("payout-id", r.o.payoutID); err != nil {
		return err
	}
	return r.payoutMsg(ctx, market.NewResolveMsg(r.o.payoutID, r.o.refund))
}

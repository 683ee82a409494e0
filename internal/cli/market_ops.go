package cli

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/bench"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/market"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/rpc"
)

// NodeMarket is one node's view of the marketplace.
type NodeMarket struct {
	Node       string      `json:"node"`
	Height     int64       `json:"height"`
	Services   int         `json:"services"`
	Agreements int         `json:"agreements"`
	Locked     coin.Amount `json:"locked"`
	Escrow     coin.Amount `json:"escrow"`
	Digest     string      `json:"digest"` // listing and agreement ids with their status
	Error      string      `json:"error,omitempty"`
}

func nodeMarket(ctx context.Context, url string) NodeMarket {
	out := NodeMarket{Node: url}
	c := rpc.NewClient(url)
	sl, err := market.QueryServices(ctx, c, market.ServiceFilter{All: true})
	if err == nil {
		var al market.AgreementList
		if al, err = market.QueryAgreements(ctx, c, market.Filter{}); err == nil {
			var acct rpc.Account
			if acct, err = c.Account(ctx, address.Module(market.EscrowAccount)); err == nil {
				var ids []string
				for _, s := range sl.Services {
					ids = append(ids, s.ID+"="+s.Status)
				}
				for _, a := range al.Agreements {
					ids = append(ids, a.ID+"="+a.Status+"/"+a.Remaining.String())
					out.Locked += a.Locked
				}
				sort.Strings(ids)
				out.Height, out.Services, out.Agreements, out.Escrow = sl.Height, len(sl.Services), len(al.Agreements), acct.Balance
				out.Digest = strings.Join(ids, ",")
			}
		}
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// crossNode compares the marketplace on every node of --node (a comma-
// separated list): the same listings and agreements everywhere. Nodes a
// block apart may differ for a moment: a mismatch is read again after two
// seconds before it is reported.
func (r *marketRun) crossNode(ctx context.Context) error {
	urls := strings.Split(r.g.Node, ",")
	var views []NodeMarket
	for attempt := 0; attempt < 2; attempt++ {
		views = views[:0]
		for _, u := range urls {
			views = append(views, nodeMarket(ctx, strings.TrimSpace(u)))
		}
		if agree(views) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	same := agree(views)
	if err := r.g.Print(map[string]any{"nodes": views, "consistent": same}, func(w io.Writer) {
		for _, v := range views {
			if v.Error != "" {
				fmt.Fprintf(w, "%-28s unreachable: %s\n", v.Node, v.Error)
				continue
			}
			fmt.Fprintf(w, "%-28s height %d: %d services, %d agreements, %s AITBC locked, escrow %s AITBC\n", v.Node, v.Height, v.Services, v.Agreements, v.Locked, v.Escrow)
		}
		if same {
			fmt.Fprintf(w, "ok: the same marketplace on %d nodes\n", len(views))
		}
	}); err != nil {
		return err
	}
	if !same {
		return fmt.Errorf("the nodes disagree on the marketplace's listings or agreements")
	}
	return nil
}

func agree(vs []NodeMarket) bool {
	for _, v := range vs {
		if v.Error != "" || v.Digest != vs[0].Digest || v.Escrow != vs[0].Escrow {
			return false
		}
	}
	return true
}

// Finding is one compliance finding.
type Finding struct {
	Service  string `json:"service_id"`
	Severity string `json:"severity"` // violation or warning
	Rule     string `json:"rule"`
	Detail   string `json:"detail"`
}

// complianceCheck checks every open listing against the marketplace's
// rules: price within the bounds (and a dynamic price within its own),
// availability not expired while active, live agreements within capacity,
// and for compute services a provider that runs a staked miner with
// recent heartbeats (a warning: a provider may serve by hand).
func (r *marketRun) complianceCheck(ctx context.Context) error {
	p, err := market.QueryParams(ctx, r.node)
	if err != nil {
		return err
	}
	sl, err := market.QueryServices(ctx, r.node, market.ServiceFilter{})
	if err != nil {
		return err
	}
	now := time.Now()
	var out []Finding
	add := func(s, sev, rule, format string, a ...any) {
		out = append(out, Finding{s, sev, rule, fmt.Sprintf(format, a...)})
	}
	providers := map[address.Address]*market.ProviderView{}
	for _, s := range sl.Services {
		if s.Price == 0 || s.Price > p.MaxPrice {
			add(s.ID, "violation", "price bounds", "price %s outside 0-%s", s.Price, p.MaxPrice)
		}
		if s.Strategy == "dynamic" && (s.Price < s.PriceMin || s.Price > s.PriceMax) {
			add(s.ID, "violation", "dynamic bounds", "price %s outside its bounds %s-%s", s.Price, s.PriceMin, s.PriceMax)
		}
		if s.Status == "active" && s.Until != nil && s.Until.Before(now) {
			add(s.ID, "violation", "expired availability", "active, but its availability ended %s", s.Until.UTC().Format(time.RFC3339))
		}
		if s.Capacity > 0 && s.Live > s.Capacity {
			add(s.ID, "violation", "capacity", "%d live agreements over a capacity of %d", s.Live, s.Capacity)
		}
		if s.Type == market.TypeAIInference || s.Type == market.TypeGPURental || s.Type == market.TypeGPUCompute {
			pv := providers[s.Provider]
			if pv == nil {
				v, err := market.QueryProvider(ctx, r.node, s.Provider)
				if err != nil {
					return err
				}
				pv = &v
				providers[s.Provider] = pv
			}
			switch m := pv.Miner; {
			case m == nil && len(pv.Serving) > 0:
				// Served by miners it named that named it back.
			case m == nil:
				add(s.ID, "warning", "provider stake", "provider %s runs no staked miner and names none that consents", s.Provider)
			case m.Status != "active":
				add(s.ID, "warning", "provider stake", "provider %s's miner is %s", s.Provider, m.Status)
			case now.Sub(m.LastHeartbeat) > market.HeartbeatFresh*time.Second:
				add(s.ID, "warning", "heartbeat", "provider %s's miner silent since %s", s.Provider, m.LastHeartbeat.UTC().Format(time.RFC3339))
			}
		}
	}
	violations := 0
	for _, f := range out {
		if f.Severity == "violation" {
			violations++
		}
	}
	if err := r.g.Print(map[string]any{"services": len(sl.Services), "findings": out, "violations": violations}, func(w io.Writer) {
		for _, f := range out {
			fmt.Fprintf(w, "%-9s %-12s %-20s %s\n", f.Severity, f.Service, f.Rule, f.Detail)
		}
		fmt.Fprintf(w, "%d listings checked: %d violations, %d warnings\n", len(sl.Services), violations, len(out)-violations)
	}); err != nil {
		return err
	}
	if violations > 0 {
		return fmt.Errorf("%d listings break the marketplace's rules (first: %s %s)", violations, out[0].Service, out[0].Rule)
	}
	return nil
}

// VolumeRow is one counterparty's or service type's volume in a period.
type VolumeRow struct {
	Kind       string      `json:"kind"` // customer, provider, type
	Key        string      `json:"key"`
	Agreements int         `json:"agreements"`
	Locked     coin.Amount `json:"locked"`
	Paid       coin.Amount `json:"paid_out"`
	Refunded   coin.Amount `json:"refunded"`
}

// regulatoryAudit sums the agreements started in --period per customer,
// per provider and per service type; --output csv writes them as CSV.
func (r *marketRun) regulatoryAudit(ctx context.Context) error {
	from, err := r.since()
	if err != nil {
		return err
	}
	sl, err := market.QueryServices(ctx, r.node, market.ServiceFilter{All: true})
	if err != nil {
		return err
	}
	typ := map[string]string{}
	for _, s := range sl.Services {
		typ[s.ID] = s.Type
	}
	al, err := market.QueryAgreements(ctx, r.node, market.Filter{})
	if err != nil {
		return err
	}
	rows := map[string]*VolumeRow{}
	add := func(kind, key string, a market.AgreementView) {
		k := kind + "\x00" + key
		row := rows[k]
		if row == nil {
			row = &VolumeRow{Kind: kind, Key: key}
			rows[k] = row
		}
		row.Agreements++
		row.Locked += a.Locked
		row.Paid += a.Drawn
		row.Refunded += a.Refunded
	}
	for _, a := range al.Agreements {
		if !inPeriod(a.Start, from) {
			continue
		}
		add("customer", a.Customer.String(), a)
		add("provider", a.Provider.String(), a)
		add("type", typ[a.Service], a)
	}
	var out []VolumeRow
	for _, v := range rows {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Locked > out[j].Locked
	})
	if r.g.Output == "csv" {
		cw := csv.NewWriter(r.g.Stdout())
		_ = cw.Write([]string{"kind", "key", "agreements", "locked", "paid_out", "refunded"})
		for _, v := range out {
			_ = cw.Write([]string{v.Kind, v.Key, strconv.Itoa(v.Agreements), v.Locked.String(), v.Paid.String(), v.Refunded.String()})
		}
		cw.Flush()
		return cw.Error()
	}
	return r.g.Print(out, func(w io.Writer) {
		for _, v := range out {
			fmt.Fprintf(w, "%-8s %-46s %4d agreements, %s AITBC locked, %s paid out, %s refunded\n", v.Kind, v.Key, v.Agreements, v.Locked, v.Paid, v.Refunded)
		}
		fmt.Fprintf(w, "period %s; --output csv for a spreadsheet\n", orAll(r.o.period))
	})
}

// optimize gives a provider advice from its own figures: open bids
// waiting, utilization against capacity, and its price against the median
// of active listings of the same type.
func (r *marketRun) optimize(ctx context.Context) error {
	if err := need("wallet", r.o.wallet); err != nil {
		return err
	}
	if r.o.metric != "" && r.o.metric != "utilization" {
		return usagef("--metric %q: utilization", r.o.metric)
	}
	prov, err := r.addr(ctx, r.o.wallet)
	if err != nil {
		return err
	}
	all, err := market.QueryServices(ctx, r.node, market.ServiceFilter{Status: "active"})
	if err != nil {
		return err
	}
	prices := map[string][]coin.Amount{}
	for _, s := range all.Services {
		prices[s.Type] = append(prices[s.Type], s.Price)
	}
	mine, err := market.QueryServices(ctx, r.node, market.ServiceFilter{Provider: &prov})
	if err != nil {
		return err
	}
	bids, err := market.QueryBids(ctx, r.node, market.Filter{Provider: &prov, Status: "open"})
	if err != nil {
		return err
	}
	open := map[string]int{}
	for _, b := range bids.Bids {
		open[b.Service]++
	}
	type advice struct {
		Service     string   `json:"service_id"`
		Utilization float64  `json:"utilization"` // live / capacity; -1 unlimited
		OpenBids    int      `json:"open_bids"`
		Price       string   `json:"price"`
		Median      string   `json:"median_price_of_type"`
		Advice      []string `json:"advice"`
	}
	var out []advice
	for _, s := range mine.Services {
		ps := prices[s.Type]
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		var med coin.Amount
		if len(ps) > 0 {
			med = ps[len(ps)/2]
		}
		a := advice{Service: s.ID, Utilization: -1, OpenBids: open[s.ID], Price: s.Price.String(), Median: med.String()}
		if s.Capacity > 0 {
			a.Utilization = float64(s.Live) / float64(s.Capacity)
		}
		switch {
		case s.Status == "paused":
			a.Advice = append(a.Advice, "paused: resume it to take agreements")
		case a.Utilization >= 1 && a.OpenBids > 0:
			a.Advice = append(a.Advice, fmt.Sprintf("full with %d bids waiting: raise the price or the capacity", a.OpenBids))
		case a.OpenBids > 0:
			a.Advice = append(a.Advice, fmt.Sprintf("%d open bids: accept or reject them (bidders' deposits are held meanwhile)", a.OpenBids))
		case s.Live == 0 && med > 0 && s.Price > med:
			a.Advice = append(a.Advice, fmt.Sprintf("idle at %s AITBC, above the median %s of %s listings: reprice or use pricing --strategy dynamic", s.Price, med, s.Type))
		case a.Utilization >= 0 && a.Utilization < 0.5 && s.Live > 0:
			a.Advice = append(a.Advice, fmt.Sprintf("%.0f%% used: auto-accept or a lower price would fill it", 100*a.Utilization))
		default:
			a.Advice = append(a.Advice, "no change suggested")
		}
		out = append(out, a)
	}
	return r.g.Print(out, func(w io.Writer) {
		for _, a := range out {
			u := "unlimited capacity"
			if a.Utilization >= 0 {
				u = fmt.Sprintf("%.0f%% used", 100*a.Utilization)
			}
			fmt.Fprintf(w, "service_id %s | %s | %d open bids | price %s, median %s | %s\n", a.Service, u, a.OpenBids, a.Price, a.Median, strings.Join(a.Advice, "; "))
		}
		fmt.Fprintf(w, "%d listings of %s\n", len(out), r.o.wallet)
	})
}

// stressTest measures marketplace throughput on a temporary
// single-validator chain (bench.Market): --transactions bids, accepts and
// settlements in all, --concurrent submitters. It never loads the chain
// at --node.
func (r *marketRun) stressTest(ctx context.Context) error {
	n, err := intFlag(r.o.flags, "transactions", 1000)
	if err != nil {
		return err
	}
	c, err := intFlag(r.o.flags, "concurrent", 10)
	if err != nil {
		return err
	}
	if n < 3 || n > 300_000 || c < 1 || c > 1000 {
		return usagef("--transactions 3-300000, --concurrent 1-1000")
	}
	fmt.Fprintln(r.g.Stderr(), "stress test on a temporary single-validator chain (the chain at --node is not loaded)...")
	res, err := bench.Market(ctx, bench.MarketOptions{Providers: max(1, min(50, n/30)), Customers: n / 3, Submitters: c, BlockTime: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	return r.g.Print(res, func(w io.Writer) {
		for _, p := range res.Phases {
			fmt.Fprintf(w, "%-7s %6d committed in %6.2fs: %6.0f tx/s\n", p.Kind, p.Committed, p.Elapsed.Seconds(), p.TPS)
		}
		fmt.Fprintf(w, "market  %6d committed in %6.2fs: %6.0f tx/s; %d concurrent bids in %.2fs\n", res.Committed, res.Elapsed.Seconds(), res.TPS, res.Burst.Committed, res.Burst.Elapsed.Seconds())
	})
}

func intFlag(flags map[string]*string, name string, def int) (int, error) {
	v := flags[name]
	if v == nil || *v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(*v)
	if err != nil {
		return 0, usagef("--%s %q: a number", name, *v)
	}
	return n, nil
}

// throughputTest offers --transactions-per-second bids for --duration
// seconds on a temporary single-validator chain and reports what was
// committed and each bid's wait for its block (the chain at --node is not
// loaded).
func (r *marketRun) throughputTest(ctx context.Context) error {
	secs, err := intFlag(r.o.flags, "duration", 60)
	if err != nil {
		return err
	}
	tps, err := intFlag(r.o.flags, "transactions-per-second", 10)
	if err != nil {
		return err
	}
	if secs < 1 || secs > 3600 || tps < 1 || tps > 5000 {
		return usagef("--duration 1-3600 seconds, --transactions-per-second 1-5000")
	}
	fmt.Fprintf(r.g.Stderr(), "offering %d bids/s for %ds on a temporary single-validator chain (the chain at --node is not loaded)...\n", tps, secs)
	res, err := bench.MarketPaced(ctx, bench.PacedOptions{Duration: time.Duration(secs) * time.Second, Rate: tps})
	if err != nil {
		return err
	}
	return r.g.Print(res, func(w io.Writer) {
		fmt.Fprintf(w, "%d of %d bids committed in %.1fs: %.1f tx/s; wait for the block p50 %s, p95 %s, max %s\n", res.Committed, res.Offered,
			res.Elapsed.Seconds(), res.TPS, res.LatencyP50.Round(time.Millisecond), res.LatencyP95.Round(time.Millisecond), res.LatencyMax.Round(time.Millisecond))
	})
}

// AIThroughput is what ai-throughput-test measured.
type AIThroughput struct {
	Offered      int           `json:"offered"`
	Accepted     int           `json:"accepted"`
	Settled      int           `json:"settled"`
	Failed       int           `json:"failed"` // expired, failed or refused
	Elapsed      time.Duration `json:"elapsed_ns"`
	PerMinute    float64       `json:"settled_per_minute"`
	SubmitP50    time.Duration `json:"submit_p50_ns"`
	ToSettledP50 time.Duration `json:"to_settled_p50_ns"`
	ToSettledP95 time.Duration `json:"to_settled_p95_ns"`
}

// aiThroughputTest submits inference jobs to the coordinator at
// --jobs-per-minute for --duration seconds (paid from the API key's
// tenant deposit, as `submit` does) and follows each to settlement.
func (r *marketRun) aiThroughputTest(ctx context.Context) error {
	secs, err := intFlag(r.o.flags, "duration", 60)
	if err != nil {
		return err
	}
	jpm, err := intFlag(r.o.flags, "jobs-per-minute", 5)
	if err != nil {
		return err
	}
	if secs < 1 || secs > 3600 || jpm < 1 || jpm > 6000 {
		return usagef("--duration 1-3600 seconds, --jobs-per-minute 1-6000")
	}
	c, err := r.g.coordinator()
	if err != nil {
		return err
	}
	model := r.o.model
	if model == "" {
		model = "tolstoy-1m"
	}
	n := max(1, secs*jpm/60)
	every := time.Minute / time.Duration(jpm)
	out := AIThroughput{Offered: n}
	type sub struct {
		id string
		at time.Time
	}
	var subs []sub
	var submitLat []time.Duration
	t0 := time.Now()
	fmt.Fprintf(r.g.Stderr(), "submitting %d %s jobs, one every %s, to %s...\n", n, model, every, r.g.Coord)
	for i := 0; i < n; i++ {
		if d := time.Until(t0.Add(time.Duration(i) * every)); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		at := time.Now()
		temp := float32(0)
		j, err := c.Submit(ctx, coordinator.JobRequest{Model: model, Prompt: fmt.Sprintf("throughput test %d", i), MaxTokens: 16, Temperature: &temp})
		if err != nil {
			out.Failed++
			fmt.Fprintf(r.g.Stderr(), "job %d refused: %v\n", i, err)
			continue
		}
		submitLat = append(submitLat, time.Since(at))
		subs = append(subs, sub{j.JobID, at})
	}
	out.Accepted = len(subs)
	var settle []time.Duration
	deadline := time.Now().Add(5 * time.Minute)
	pending := subs
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []sub
		for _, s := range pending {
			v, err := c.Status(ctx, s.id)
			switch {
			case err != nil:
				return err
			case v.Status == store.StatusSettled:
				settle = append(settle, time.Since(s.at))
			case v.Status == store.StatusFailed || v.Status == store.StatusExpired:
				out.Failed++
			default:
				still = append(still, s)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	out.Failed += len(pending)
	out.Settled = len(settle)
	out.Elapsed = time.Since(t0)
	out.PerMinute = float64(out.Settled) / out.Elapsed.Minutes()
	pct := func(ds []time.Duration, q int) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)*q/100]
	}
	out.SubmitP50, out.ToSettledP50, out.ToSettledP95 = pct(submitLat, 50), pct(settle, 50), pct(settle, 95)
	if err := r.g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "%d of %d jobs settled in %.1fs: %.1f jobs/minute; submit p50 %s; to settled p50 %s, p95 %s; %d failed\n",
			out.Settled, out.Offered, out.Elapsed.Seconds(), out.PerMinute, out.SubmitP50.Round(time.Millisecond),
			out.ToSettledP50.Round(time.Millisecond), out.ToSettledP95.Round(time.Millisecond), out.Failed)
	}); err != nil {
		return err
	}
	if out.Settled < out.Offered {
		return fmt.Errorf("%d of %d jobs did not settle", out.Offered-out.Settled, out.Offered)
	}
	return nil
}

package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/miners"
	"github.com/aitbc/aitbc/internal/coordinator"
)

type minerIndexData struct {
	Rows  []MinerRow
	Query string
	Error string
}

func (s *Server) minerIndex(w http.ResponseWriter, r *http.Request) error {
	if q := strings.TrimSpace(r.URL.Query().Get("address")); q != "" {
		if a, err := address.Parse(strings.ToLower(q)); err == nil {
			http.Redirect(w, r, "/miner/"+url.PathEscape(a.String()), http.StatusSeeOther)
			return nil
		}
		lb, err := s.leaderboard(r.Context())
		if err != nil {
			return err
		}
		return s.page(w, r, http.StatusOK, "minerindex.html", "Miner dashboard", "miner",
			minerIndexData{Rows: lb.Rows, Query: q, Error: "That is not an AITBC address (aitbc1…)."})
	}
	lb, err := s.leaderboard(r.Context())
	if err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "minerindex.html", "Miner dashboard", "miner", minerIndexData{Rows: lb.Rows})
}

// minerDash is one miner's dashboard: the registry's record, the
// coordinator's live view, and its work from its chain history.
type minerDash struct {
	Miner    miners.View
	Row      MinerRow
	Live     *coordinator.MinerView
	CoordErr string
	Done     []TxRow // its settlements, newest first
	Earned   coin.Amount
	Earnings chart
	Window   string
	History  int             // transactions of its history read
	Rep      *ProviderRecord // the market module's reputation and ratings
	RepErr   string
	Stake    stakeView // the staking module's: its bonded stake, commission and stakers
	Pools    poolsView // the pools module's: the pool it belongs to or operates
}

// minerHistory is how many of a miner's newest transactions the dashboard
// reads for its jobs and earnings.
const minerHistory = 1000

func (s *Server) minerDash(ctx context.Context, a address.Address) (minerDash, error) {
	_, _, height := s.feed.latest(0, 0)
	return s.minerDashs.get(ctx, a.String(), height, func(ctx context.Context) (minerDash, error) { return s.readMinerDash(ctx, a) })
}

func (s *Server) readMinerDash(ctx context.Context, a address.Address) (minerDash, error) {
	m, err := miners.Query(ctx, s.cfg.Node, a)
	if err != nil {
		return minerDash{}, err
	}
	d := minerDash{Miner: m}
	lb, err := s.leaderboard(ctx)
	if err != nil {
		return d, err
	}
	d.Window, d.CoordErr = lb.Window, lb.CoordErr
	for _, row := range lb.Rows {
		if row.Address == a.String() {
			d.Row = row
		}
	}
	if reg, err := s.minerRegistry(ctx); err == nil {
		if live, ok := reg.Connected[a]; ok {
			d.Live = &live
		}
	}
	d.Rep, d.RepErr = s.providerRecord(ctx, a)
	list, err := s.cfg.Node.Transactions(ctx, a, minerHistory)
	if err != nil {
		return d, err
	}
	d.History = len(list.Transactions)
	d.Stake = s.readStake(ctx, a, list.Transactions)
	d.Pools = s.readPools(ctx, a, list.Transactions)
	perDay := map[string]float64{}
	var days []string
	for _, t := range list.Transactions {
		row := txRow(t)
		if row.job == nil || !row.job.Settle || row.job.Miner != a.String() {
			continue
		}
		d.Done = append(d.Done, row)
		d.Earned += row.job.Price
		day := row.Time.UTC().Format("2006-01-02")
		if _, ok := perDay[day]; !ok {
			days = append(days, day)
		}
		perDay[day] += row.job.Price.Float()
	}
	// History comes newest first; the chart runs oldest to newest, with
	// the days between that earned nothing.
	var pts []point
	if n := len(days); n > 0 {
		first, _ := time.Parse("2006-01-02", days[n-1])
		last, _ := time.Parse("2006-01-02", days[0])
		for t := first; !t.After(last); t = t.AddDate(0, 0, 1) {
			k := t.Format("2006-01-02")
			pts = append(pts, point{k, perDay[k]})
		}
	}
	d.Earnings = chart{ID: "c-earn", Title: "Earnings per day", Unit: "AITBC",
		Desc: "from its settlements among its newest transactions (UTC days)", Points: pts}
	return d, nil
}

// providerRecord is the market module's word on a provider: nil when this
// server reads no market; a failure is a note, not a failed page.
func (s *Server) providerRecord(ctx context.Context, a address.Address) (*ProviderRecord, string) {
	if s.cfg.Market == nil {
		return nil, ""
	}
	pr, err := s.cfg.Market.Provider(ctx, a)
	if err != nil {
		_, _, msg := classify(err)
		return nil, msg
	}
	return &pr, ""
}

func (s *Server) minerPage(w http.ResponseWriter, r *http.Request) error {
	a, err := parseAddress(r.PathValue("address"))
	if err != nil {
		return err
	}
	d, err := s.minerDash(r.Context(), a)
	if err != nil {
		return err
	}
	return s.page(w, r, http.StatusOK, "miner.html", "Miner "+short(a.String()), "miner", d)
}

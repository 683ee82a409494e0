package web

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

// point is one value of a chart.
type point struct {
	Label string
	Value float64
}

// chart is a bar chart drawn on the server as SVG: no script, readable
// without colour (every bar's value is in its title, the whole series in
// a table for screen readers), and scaled to its box at any width.
type chart struct {
	ID     string
	Title  string
	Desc   string // what is measured and over which window
	Unit   string
	Points []point
}

const (
	chartW, chartH   = 600, 200
	padL, padB, padT = 48, 28, 10
)

// render draws the chart. Every text that reaches the SVG is escaped.
func (c chart) render() template.HTML {
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="chart" aria-labelledby="%s-t">`, esc(c.ID))
	fmt.Fprintf(&b, `<figcaption id="%s-t"><strong>%s</strong> <span class="muted">%s</span></figcaption>`, esc(c.ID), esc(c.Title), esc(c.Desc))
	if len(c.Points) == 0 {
		b.WriteString(`<p class="muted">No data in this window yet.</p></figure>`)
		return template.HTML(b.String())
	}
	top := 0.0
	for _, p := range c.Points {
		top = math.Max(top, p.Value)
	}
	if top == 0 {
		top = 1
	}
	top = niceCeil(top)
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t" preserveAspectRatio="none" class="chart-svg">`, chartW, chartH, esc(c.ID))
	plotW, plotH := float64(chartW-padL-4), float64(chartH-padB-padT)
	// Axis and three grid lines, labelled.
	for i := 0; i <= 2; i++ {
		v := top * float64(i) / 2
		y := float64(padT) + plotH - plotH*float64(i)/2
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>`, padL, y, chartW-4, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>`, padL-4, y+4, esc(fmtValue(v)))
	}
	n := len(c.Points)
	bw := plotW / float64(n)
	for i, p := range c.Points {
		h := plotH * p.Value / top
		x := float64(padL) + float64(i)*bw
		fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" class="bar"><title>%s: %s %s</title></rect>`,
			x+bw*0.1, float64(padT)+plotH-h, math.Max(bw*0.8, 0.5), h, esc(p.Label), esc(fmtValue(p.Value)), esc(c.Unit))
	}
	// First and last labels under the axis.
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">%s</text>`, padL, chartH-8, esc(c.Points[0].Label))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`, chartW-4, chartH-8, esc(c.Points[n-1].Label))
	b.WriteString(`</svg>`)
	// The same figures as a table, for screen readers and copying.
	fmt.Fprintf(&b, `<details><summary>Figures</summary><table><thead><tr><th scope="col">%s</th><th scope="col">%s</th></tr></thead><tbody>`,
		"When", esc(strings.TrimSpace(c.Title+" ("+c.Unit+")")))
	for _, p := range c.Points {
		fmt.Fprintf(&b, `<tr><td>%s</td><td>%s</td></tr>`, esc(p.Label), esc(fmtValue(p.Value)))
	}
	b.WriteString(`</tbody></table></details></figure>`)
	return template.HTML(b.String())
}

func fmtValue(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// chainStats are the figures the explorer derives from the feed's window
// of blocks: computed once per new block, shared by every viewer.
type chainStats struct {
	Height        int64
	Window        string // which blocks the figures cover
	AvgBlockTime  time.Duration
	BlockTimes    []point
	TxsPerBlock   []point
	JobsPerHour   []point
	TokensPerHour []point
	MedianPrice   []point        // per 1k output tokens, per hour
	Assigned      map[string]int // jobs assigned per miner in the window
	SettledBy     map[string]int // jobs settled per miner in the window
	EarnedBy      map[string]coin.Amount
	Rendered      []template.HTML // the charts as SVG, drawn once per height
}

type statsCache struct {
	mu sync.Mutex
	st chainStats
	ok bool
}

// recentBlocks is how many of the newest blocks the per-block charts show.
const recentBlocks = 60

func (s *Server) stats() chainStats {
	_, _, height := s.feed.latest(0, 0)
	s.statsCache.mu.Lock()
	defer s.statsCache.mu.Unlock()
	if s.statsCache.ok && s.statsCache.st.Height == height {
		return s.statsCache.st
	}
	blocks, evs := s.feed.window()
	st := computeStats(blocks, evs)
	st.Height = height
	for _, c := range st.charts() {
		st.Rendered = append(st.Rendered, c.render())
	}
	s.statsCache.st, s.statsCache.ok = st, true
	return st
}

func computeStats(blocks []BlockRow, evs []jobEvent) chainStats {
	st := chainStats{Assigned: map[string]int{}, SettledBy: map[string]int{}, EarnedBy: map[string]coin.Amount{}}
	if len(blocks) == 0 {
		st.Window = "no blocks seen yet"
		return st
	}
	first, last := blocks[0], blocks[len(blocks)-1]
	st.Window = fmt.Sprintf("blocks %d–%d (%s to %s)", first.Height, last.Height,
		first.Time.UTC().Format("Jan 2 15:04"), last.Time.UTC().Format("15:04 UTC"))
	var sum time.Duration
	var n int
	for _, b := range blocks {
		if b.Interval > 0 {
			sum += b.Interval
			n++
		}
	}
	if n > 0 {
		st.AvgBlockTime = sum / time.Duration(n)
	}
	for _, b := range blocks[max(len(blocks)-recentBlocks, 0):] {
		label := fmt.Sprintf("#%d", b.Height)
		if b.Interval > 0 {
			st.BlockTimes = append(st.BlockTimes, point{label, b.Interval.Seconds()})
		}
		st.TxsPerBlock = append(st.TxsPerBlock, point{label, float64(b.NumTxs)})
	}
	type hour struct {
		jobs, tokens uint64
		prices       []float64
	}
	byHour := map[time.Time]*hour{}
	var hours []time.Time
	for t := first.Time.UTC().Truncate(time.Hour); !t.After(last.Time.UTC()); t = t.Add(time.Hour) {
		byHour[t] = &hour{}
		hours = append(hours, t)
	}
	for _, e := range evs {
		if !e.Settle {
			st.Assigned[e.Miner]++
			continue
		}
		st.SettledBy[e.Miner]++
		st.EarnedBy[e.Miner] += e.Price
		h := byHour[e.Time.UTC().Truncate(time.Hour)]
		if h == nil {
			continue
		}
		h.jobs++
		h.tokens += e.TokensOut
		if e.TokensOut > 0 {
			h.prices = append(h.prices, e.Price.Float()*1000/float64(e.TokensOut))
		}
	}
	for _, t := range hours {
		h, label := byHour[t], t.Format("Jan 2 15:00")
		st.JobsPerHour = append(st.JobsPerHour, point{label, float64(h.jobs)})
		st.TokensPerHour = append(st.TokensPerHour, point{label, float64(h.tokens)})
		if len(h.prices) > 0 {
			sort.Float64s(h.prices)
			m := h.prices[len(h.prices)/2]
			if len(h.prices)%2 == 0 {
				m = (h.prices[len(h.prices)/2-1] + m) / 2
			}
			st.MedianPrice = append(st.MedianPrice, point{label, m})
		}
	}
	return st
}

// charts are the explorer's four figures.
func (st chainStats) charts() []chart {
	return []chart{
		{ID: "c-blocktime", Title: "Block time", Unit: "s", Desc: fmt.Sprintf("the last %d blocks", len(st.BlockTimes)), Points: st.BlockTimes},
		{ID: "c-txs", Title: "Transactions per block", Unit: "txs", Desc: fmt.Sprintf("the last %d blocks", len(st.TxsPerBlock)), Points: st.TxsPerBlock},
		{ID: "c-jobs", Title: "Jobs settled per hour", Unit: "jobs", Desc: st.Window, Points: st.JobsPerHour},
		{ID: "c-tokens", Title: "Output tokens per hour", Unit: "tokens", Desc: st.Window, Points: st.TokensPerHour},
		{ID: "c-price", Title: "Median price per 1k tokens", Unit: "AITBC", Desc: "of the jobs settled each hour, " + st.Window, Points: st.MedianPrice},
	}
}

package node

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// lintRegisterer registers CometBFT's collectors, giving each counter
// whose name lacks the _total suffix a name with it, and each camelCase
// label a snake_case name. CometBFT names a dozen counters without the
// suffix (some ending in _count, which Prometheus reserves for
// histograms: proposal_receive_count) and labels its P2P byte counters
// chID, and `promtool check metrics` refuses the whole exposition for any
// of them. The new name is the old one with _count dropped and _total
// added (cometbft_mempool_failed_txs_total,
// cometbft_consensus_proposal_receive_total), the label ch_id; every other
// CometBFT metric keeps its name.
type lintRegisterer struct{ prometheus.Registerer }

func (l lintRegisterer) Register(c prometheus.Collector) error {
	if cv, ok := c.(*prometheus.CounterVec); ok {
		if r := renameCounter(cv); r != nil {
			c = r
		}
	}
	return l.Registerer.Register(c)
}

func (l lintRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := l.Register(c); err != nil {
			panic(err)
		}
	}
}

// descRE reads a Desc's name, help and label names back from its String
// (client_golang offers no accessors).
var descRE = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), constLabels: \{\}, variableLabels: \{([^}]*)\}\}$`)

// renameCounter returns cv under a _total name with snake_case labels, or
// nil when it has both already (or its description cannot be read,
// leaving it as CometBFT named it).
func renameCounter(cv *prometheus.CounterVec) *renamedCounter {
	ch := make(chan *prometheus.Desc, 1)
	cv.Describe(ch) // a vector has exactly one
	m := descRE.FindStringSubmatch((<-ch).String())
	if m == nil {
		return nil
	}
	name, err1 := strconv.Unquote(m[1])
	help, err2 := strconv.Unquote(m[2])
	if err1 != nil || err2 != nil {
		return nil
	}
	var labels, snake []string
	if m[3] != "" {
		labels = strings.Split(m[3], ",")
	}
	for _, l := range labels {
		snake = append(snake, snakeCase(l))
	}
	to := name
	if !strings.HasSuffix(to, "_total") {
		to = strings.TrimSuffix(to, "_count") + "_total"
	}
	if to == name && slices.Equal(labels, snake) {
		return nil
	}
	if to != name {
		help += " (CometBFT's " + name + ")"
	}
	return &renamedCounter{c: cv, labels: labels, desc: prometheus.NewDesc(to, help, snake, nil)}
}

// snakeCase turns chID into ch_id.
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 && !unicode.IsUpper(rune(s[i-1])) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// renamedCounter exposes a counter collector's series under desc.
type renamedCounter struct {
	c      prometheus.Collector
	desc   *prometheus.Desc
	labels []string // the collector's label names, in the order of desc's
}

func (r *renamedCounter) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r *renamedCounter) Collect(ch chan<- prometheus.Metric) {
	in := make(chan prometheus.Metric, 16)
	go func() { r.c.Collect(in); close(in) }()
	for m := range in {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil || pb.Counter == nil {
			ch <- prometheus.NewInvalidMetric(r.desc, fmt.Errorf("node: renaming a CometBFT counter: not a counter (%v)", err))
			continue
		}
		byName := map[string]string{}
		for _, lp := range pb.GetLabel() {
			byName[lp.GetName()] = lp.GetValue()
		}
		values := make([]string, len(r.labels))
		for i, n := range r.labels {
			values[i] = byName[n]
		}
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, pb.GetCounter().GetValue(), values...)
	}
}

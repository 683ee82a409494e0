package node

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// describedMetric is one metric as its Desc describes it.
type describedMetric struct {
	Name, Help string
	Labels     []string
}

// describer is a Registerer that records what is registered with it:
// every metric a node can expose, including those that have seen no
// event yet (which a scrape does not show).
type describer struct {
	prometheus.Registerer
	got map[string]describedMetric
}

var testDescRE = regexp.MustCompile(`fqName: "([^"]*)", help: "((?:[^"\\]|\\.)*)", constLabels: \{[^}]*\}, variableLabels: \{([^}]*)\}`)

func (d *describer) Register(c prometheus.Collector) error {
	if err := d.Registerer.Register(c); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		m := testDescRE.FindStringSubmatch(desc.String())
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		d.got[m[1]] = describedMetric{Name: m[1], Help: m[2], Labels: labels}
	}
	return nil
}

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

// nodeMetrics lists every metric a node registers.
func nodeMetrics(t *testing.T) map[string]describedMetric {
	t.Helper()
	d := &describer{Registerer: prometheus.NewRegistry(), got: map[string]describedMetric{}}
	if err := newAppMetrics().register(d); err != nil {
		t.Fatal(err)
	}
	if _, err := cometMetrics(d, "aitbc-docs"); err != nil {
		t.Fatal(err)
	}
	return d.got
}

// TestEveryNodeMetricIsDocumented: docs/METRICS.md names every metric a
// node registers, CometBFT's included, whether or not it has a value yet.
func TestEveryNodeMetricIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	ms := nodeMetrics(t)
	if len(ms) < 50 {
		t.Fatalf("only %d node metrics described: CometBFT's are missing", len(ms))
	}
	var names []string
	for n := range ms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.Contains(string(doc), "| `"+n+"` |") {
			t.Errorf("docs/METRICS.md does not list %s", n)
		}
	}
	// ...and lists no node metric that does not exist.
	for _, m := range regexp.MustCompile("(?m)^\\| `((?:cometbft|aitbc_chain)_[a-z0-9_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		if _, ok := ms[m[1]]; !ok {
			t.Errorf("docs/METRICS.md lists %s, which a node does not register", m[1])
		}
	}
}

// exercising is a Registerer that gives every vector registered with it
// a series (label values "x"), so that a scrape shows every metric.
type exercising struct{ prometheus.Registerer }

func (e exercising) Register(c prometheus.Collector) error {
	if err := e.Registerer.Register(c); err != nil {
		return err
	}
	if r, ok := c.(*renamedCounter); ok {
		c = r.c
	}
	ch := make(chan *prometheus.Desc, 1)
	go func() { c.Describe(ch); close(ch) }()
	var n int
	for d := range ch {
		if m := testDescRE.FindStringSubmatch(d.String()); m != nil && m[3] != "" {
			n = len(strings.Split(m[3], ","))
		}
	}
	vals := make([]string, n)
	for i := range vals {
		vals[i] = "x"
	}
	switch v := c.(type) {
	case *prometheus.CounterVec:
		v.WithLabelValues(vals...).Inc()
	case *prometheus.GaugeVec:
		v.WithLabelValues(vals...).Set(1)
	case *prometheus.HistogramVec:
		v.WithLabelValues(vals...).Observe(1)
	}
	return nil
}

func (e exercising) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := e.Register(c); err != nil {
			panic(err)
		}
	}
}

// TestEveryNodeMetricPassesTheLinter: with a series for every metric a
// node registers (most appear only at their first event), the exposition
// passes Prometheus' linter, the one `promtool check metrics` runs.
func TestEveryNodeMetricPassesTheLinter(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := newAppMetrics().register(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := cometMetrics(exercising{reg}, "aitbc-lint"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 50 {
		t.Fatalf("%d families: CometBFT's are missing", len(mfs))
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

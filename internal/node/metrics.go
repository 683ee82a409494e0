package node

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cometbft/cometbft/blocksync"
	cs "github.com/cometbft/cometbft/consensus"
	mempl "github.com/cometbft/cometbft/mempool"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/proxy"
	sm "github.com/cometbft/cometbft/state"
	"github.com/cometbft/cometbft/statesync"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/app"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/chain/module"
)

// CometNamespace prefixes CometBFT's own metrics (cometbft_consensus_height,
// cometbft_mempool_size, ...): CometBFT's default, so that its published
// dashboards and alerts apply unchanged.
const CometNamespace = "cometbft"

// Result labels of aitbc_chain_txs_total besides the chain's error names.
const (
	ResultOK           = "ok"           // the transaction executed
	ResultUnregistered = "unregistered" // failed with a code no module registered
	TypeOther          = "other"        // a message type never seen to succeed here
	TypeUndecodable    = "undecodable"  // the bytes were not a transaction
)

// maxTxTypes bounds the message types aitbc_chain_txs_total keeps apart: far
// more than the chain has, so it only matters if something goes wrong.
const maxTxTypes = 256

// ErrMetricsRegistered means the registry given to a node already holds a
// node's metrics: each node needs its own (two nodes in one process, as a
// testnet runs them, would otherwise overwrite each other's figures).
var ErrMetricsRegistered = errors.New("node: registry already holds a node's metrics")

// defaultRegistererMu serialises the swap in cometMetrics. CometBFT builds
// its metrics with go-kit, which registers every metric on client_golang's
// process-wide DefaultRegisterer and offers no other: a second node in the
// process would panic on duplicate registration, and a scrape of one node
// would show another's figures. Pointing DefaultRegisterer at this node's
// registry for the duration of the build, under this lock, gives each node
// its own; nothing else in AITBC uses the default registry.
var defaultRegistererMu sync.Mutex

// cometMetrics builds CometBFT's metrics of every subsystem into reg, with
// a chain_id label as CometBFT's own provider sets it.
func cometMetrics(reg prometheus.Registerer, chainID string) (p cmtnode.MetricsProvider, err error) {
	defaultRegistererMu.Lock()
	saved := prometheus.DefaultRegisterer
	prometheus.DefaultRegisterer = lintRegisterer{reg}
	defer func() {
		prometheus.DefaultRegisterer = saved
		defaultRegistererMu.Unlock()
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: %v", ErrMetricsRegistered, r)
		}
	}()
	c := cs.PrometheusMetrics(CometNamespace, "chain_id", chainID)
	pp := p2p.PrometheusMetrics(CometNamespace, "chain_id", chainID)
	mp := mempl.PrometheusMetrics(CometNamespace, "chain_id", chainID)
	st := sm.PrometheusMetrics(CometNamespace, "chain_id", chainID)
	ab := proxy.PrometheusMetrics(CometNamespace, "chain_id", chainID)
	bs := blocksync.PrometheusMetrics(CometNamespace, "chain_id", chainID)
	ss := statesync.PrometheusMetrics(CometNamespace, "chain_id", chainID)
	return func(string) (*cs.Metrics, *p2p.Metrics, *mempl.Metrics, *sm.Metrics, *proxy.Metrics, *blocksync.Metrics, *statesync.Metrics) {
		return c, pp, mp, st, ab, bs, ss
	}, nil
}

// appMetrics are the application's metrics: transactions by type and
// result (counted as blocks commit) and, read from committed state at
// scrape time, the supply ledger and every module account's balance.
type appMetrics struct {
	txs *prometheus.CounterVec

	mu    sync.Mutex
	known map[string]bool // message types that have executed successfully here

	app                           *app.App // set once the app exists (newAppMetrics precedes it)
	supply, moduleBalance, height *prometheus.Desc
	rechecks                      *prometheus.Desc
}

func newAppMetrics() *appMetrics {
	return &appMetrics{
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "aitbc", Subsystem: "chain", Name: "txs_total",
			Help: "Transactions in committed blocks, by message type and result (ok, or the chain error's name).",
		}, []string{"type", "result"}),
		known:         map[string]bool{},
		supply:        prometheus.NewDesc("aitbc_chain_supply_coins", "The token supply ledger in AITBC, by kind: genesis, minted (genesis included), burned, circulating (every balance).", []string{"kind"}, nil),
		moduleBalance: prometheus.NewDesc("aitbc_chain_module_account_balance_coins", "Balance in AITBC of each module account (escrow, stake, deposits, treasury, ...).", []string{"account"}, nil),
		height:        prometheus.NewDesc("aitbc_chain_app_height", "Last height the application committed (the block store may be one ahead).", nil, nil),
		rechecks:      prometheus.NewDesc("aitbc_chain_rechecks_total", "Mempool rechecks after blocks, by outcome: kept (nothing the transaction's check depends on changed, so it did not run again) or run.", []string{"outcome"}, nil),
	}
}

// register adds the metrics to reg.
func (m *appMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.txs, m} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("%w: %v", ErrMetricsRegistered, err)
		}
	}
	return nil
}

// BlockCommitted implements app.BlockObserver.
func (m *appMetrics) BlockCommitted(_ int64, txs []app.TxOutcome) {
	type key struct{ typ, result string }
	counts := map[key]int{}
	m.mu.Lock()
	for _, o := range txs {
		typ := o.Type
		switch {
		case typ == "":
			typ = TypeUndecodable
		case o.Code == 0 && !m.known[typ] && len(m.known) < maxTxTypes:
			// A success proves the type is one of the chain's: the label
			// set stays bounded by the chain's messages however many junk
			// types failing transactions carry.
			m.known[typ] = true
		case !m.known[typ]:
			typ = TypeOther
		}
		counts[key{typ, resultName(o)}]++
	}
	m.mu.Unlock()
	for k, n := range counts {
		m.txs.WithLabelValues(k.typ, k.result).Add(float64(n))
	}
}

// resultName is a transaction's result as a label: ok, or the registered
// error's stable name (a bounded set).
func resultName(o app.TxOutcome) string {
	if o.Code == 0 {
		return ResultOK
	}
	if e := errs.Lookup(o.Codespace, o.Code); e != nil {
		return e.Name
	}
	return ResultUnregistered
}

// Describe implements prometheus.Collector (the state gauges).
func (m *appMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.supply
	ch <- m.moduleBalance
	ch <- m.height
	ch <- m.rechecks
}

// Collect implements prometheus.Collector: it reads the supply and the
// module accounts from committed state, as `aitbc chain audit` does.
func (m *appMetrics) Collect(ch chan<- prometheus.Metric) {
	a := m.app
	if a == nil {
		return
	}
	rc := a.RecheckStats()
	ch <- prometheus.MustNewConstMetric(m.rechecks, prometheus.CounterValue, float64(rc.Kept), "kept")
	ch <- prometheus.MustNewConstMetric(m.rechecks, prometheus.CounterValue, float64(rc.Executed), "run")
	bank := a.Bank()
	err := a.Committed(func(q module.Query) error {
		s, err := bank.Supply(q.State)
		if err != nil {
			return err
		}
		for _, k := range []struct {
			kind string
			v    float64
		}{{"genesis", s.Genesis.Float()}, {"minted", s.Minted.Float()}, {"burned", s.Burned.Float()}, {"circulating", s.Circulating.Float()}} {
			ch <- prometheus.MustNewConstMetric(m.supply, prometheus.GaugeValue, k.v, k.kind)
		}
		for _, name := range bank.ModuleAccountNames() {
			b, err := bank.Balance(q.State, address.Module(name))
			if err != nil {
				return err
			}
			ch <- prometheus.MustNewConstMetric(m.moduleBalance, prometheus.GaugeValue, b.Float(), name)
		}
		ch <- prometheus.MustNewConstMetric(m.height, prometheus.GaugeValue, float64(q.Height))
		return nil
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(m.supply, fmt.Errorf("node: reading state for metrics: %w", err))
	}
}

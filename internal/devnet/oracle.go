package devnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/oracle"
	"github.com/aitbc/aitbc/internal/oracle/report"
	"github.com/aitbc/aitbc/internal/swarm"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// OracleWallet signs the oracle's epoch commits; the devnet's genesis
// names it the agents module's oracle.
const OracleWallet = "oracle"

// DevnetOracleEpoch is the oracle's epoch on a devnet: a minute, so that
// a commit shows up while one watches.
const DevnetOracleEpoch = time.Minute

// oracleOn reports whether the devnet runs the oracle.
func (d *Devnet) oracleOn() bool { return d.cfg.OracleListen != "" && d.cfg.OracleListen != "off" }

// oracleGenesis names the oracle wallet the agents module's oracle.
func (d *Devnet) oracleGenesis(spec *system.ChainSpec, oracleAddr address.Address) error {
	p := agents.DefaultParams()
	p.Oracles = []string{oracleAddr.String()}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if spec.Modules == nil {
		spec.Modules = map[string]json.RawMessage{}
	}
	spec.Modules[agents.Name] = raw
	return nil
}

// startOracle serves the oracle over the devnet's node, committing epochs
// with the oracle wallet through the devnet's wallet daemon.
func (d *Devnet) startOracle(ctx context.Context) error {
	if !d.oracleOn() {
		return nil
	}
	ln, err := net.Listen("tcp", d.cfg.OracleListen)
	if err != nil {
		return fmt.Errorf("devnet: oracle on %s: %w", d.cfg.OracleListen, err)
	}
	dir := filepath.Join(d.cfg.Home, "oracle")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		ln.Close()
		return err
	}
	st, err := oracle.OpenStore(filepath.Join(dir, "oracle.db"))
	if err != nil {
		ln.Close()
		return err
	}
	svc, pw := d.Wallets.Service(), d.cfg.GenesisPassword
	submit := func(ctx context.Context, msg tx.Msg) (string, error) {
		s, err := svc.SignAndSubmit(ctx, OracleWallet, pw, msg, 0)
		return s.TxHash, err
	}
	epoch := d.cfg.OracleEpoch
	if epoch <= 0 {
		epoch = DevnetOracleEpoch
	}
	o := oracle.New(oracle.Config{ChainID: d.Node.ChainID(), Epoch: epoch, Log: d.cfg.Log.With("service", "oracle")}, st, d.Node.Client(), submit)
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := o.Serve(octx, ln, d.cfg.OracleHTTP, min(epoch/4, 15*time.Second)); err != nil {
			d.cfg.Log.Warn("devnet: oracle", "err", err)
		}
		_ = st.Close()
	}()
	every := d.heartbeatEvery(ctx)
	d.reportersMu.Lock()
	defer d.reportersMu.Unlock()
	d.oracle = &oracleRun{addr: ln.Addr(), cancel: cancel, done: done, ctx: octx, url: "http://" + ln.Addr().String(), heartbeat: every}
	for _, a := range d.reporters {
		d.startReporterLocked(a)
	}
	return nil
}

// heartbeatEvery is how often the devnet's agents heartbeat: a third of
// the agents module's active window at the devnet's block time
// (agents.Params.HeartbeatEvery), so that on a 200 ms test devnet (a 12 s
// window) an agent never shows inactive between two heartbeats. The
// window is read from the chain: a home keeps the params of its genesis.
func (d *Devnet) heartbeatEvery(ctx context.Context) time.Duration {
	p, err := agents.QueryParams(ctx, d.Node.Client())
	if err != nil {
		d.cfg.Log.Warn("devnet: agents params (heartbeats once a minute)", "err", err)
		return agents.MaxHeartbeatEvery
	}
	return p.HeartbeatEvery(d.cfg.BlockTime)
}

// oracleRun is the devnet's running oracle and its agents' reporters.
type oracleRun struct {
	addr      net.Addr
	cancel    context.CancelFunc
	done      chan struct{}
	reporters sync.WaitGroup
	// ctx, url and heartbeat start a reporter that joins later (a hosted
	// provider's miner: addReporter).
	ctx       context.Context
	url       string
	heartbeat time.Duration
}

// DevnetReportEvery is how often the devnet's serving agents report to
// its oracle: above the oracle's 10 s minimum interval, with room for a
// ticker's jitter (a report sooner than the minimum is refused and its
// counts wait for the next one).
const DevnetReportEvery = 15 * time.Second

// agentReporter is one serving agent of the devnet (a miner or a span
// server): its key, the MetricsCollector its work is counted into, and,
// for a miner, the registration that makes it an agent on chain (a span
// server registers itself: swarm.Announce).
type agentReporter struct {
	key      *keystore.Key
	col      *report.MetricsCollector
	register *tx.Msg // nil: the agent registers itself
	sender   walletd.WalletSender
	log      *slog.Logger
}

// minerAgent makes devnet miner i a reporting agent when the devnet runs
// its oracle: the miner's jobs are counted into a MetricsCollector, and
// once the oracle listens the miner registers on chain as an agent (name,
// the default model's hash, capability "inference"), heartbeats, and
// reports signed figures (startReporters). Without the oracle, runner
// is returned as is and the miner sends no agent transactions.
func (d *Devnet) minerAgent(minerKey *keystore.Key, i int, runner miner.Runner) (miner.Runner, error) {
	return d.walletAgent(minerKey, MinerWallet(i), runner, d.cfg.Log.With("service", "miner", "miner", i))
}

// walletAgent is minerAgent for the miner whose wallet (in the devnet's
// wallet daemon) is wallet: the devnet's own miners and the miners it
// hosts for its providers (hosting.go) alike. The agent is named after
// the wallet. A miner that starts after the oracle (a hosted one) starts
// reporting at once.
func (d *Devnet) walletAgent(minerKey *keystore.Key, wallet string, runner miner.Runner, log *slog.Logger) (miner.Runner, error) {
	if !d.oracleOn() {
		return runner, nil
	}
	hash, err := d.defaultModelHash()
	if err != nil {
		return nil, err
	}
	// A copy of its own: the miner's key is wiped when the miner stops,
	// and a stopped miner's last counts are still reported.
	key, err := minerKey.Clone()
	if err != nil {
		return nil, err
	}
	col := report.NewMetricsCollector(nil)
	reg := agents.NewRegisterMsg(wallet, hash, []string{"inference"}, nil)
	d.addReporter(agentReporter{
		key: key, col: col,
		register: &reg,
		sender:   walletd.WalletSender{S: d.Wallets.Service(), Name: wallet, Password: d.cfg.GenesisPassword},
		log:      log,
	})
	return system.ReportingRunner(runner, col), nil
}

// addReporter adds a serving agent, and starts its reports and
// heartbeats if the oracle already runs (else startOracle does).
func (d *Devnet) addReporter(a agentReporter) {
	d.reportersMu.Lock()
	defer d.reportersMu.Unlock()
	d.reporters = append(d.reporters, a)
	if d.oracle != nil {
		d.startReporterLocked(a)
	}
}

// spanAgent gives span server i a MetricsCollector when the devnet runs
// its oracle: the returned observer (swarm.ServerConfig.Observe) counts
// each forward request it served as a task, its rows as processed
// tokens, and the server reports them signed with its wallet's key.
// Without the oracle, or without the key (a home made before
// --span-miners), it returns nil.
func (d *Devnet) spanAgent(i int, key *keystore.Key) func(rows int, took time.Duration) {
	if !d.oracleOn() || key == nil {
		return nil
	}
	col := report.NewMetricsCollector(nil)
	d.addReporter(agentReporter{key: key, col: col, log: d.cfg.Log.With("service", "span", "span", i)})
	return func(rows int, took time.Duration) { col.Task(uint64(rows), took) }
}

// defaultModelHash is the model hash a devnet miner registers: the
// default model's, as span servers compute it (swarm.ModelHash).
func (d *Devnet) defaultModelHash() (string, error) {
	if d.modelHash != "" {
		return d.modelHash, nil
	}
	m, err := engine.LoadDefault()
	if err != nil {
		return "", err
	}
	h, err := swarm.ModelHash(m)
	if err != nil {
		return "", err
	}
	d.modelHash = h
	return h, nil
}

// startReporterLocked runs, for a serving agent, its registration and
// heartbeats (miners) and its OracleReporter, until the oracle stops.
// Until the registration is committed the agent's reports are refused as
// agent_not_registered and their counts wait: nothing is lost.
func (d *Devnet) startReporterLocked(a agentReporter) {
	o := d.oracle
	rep := &report.OracleReporter{URL: o.url, ChainID: d.Node.ChainID(), Key: a.key, Collector: a.col, Interval: DevnetReportEvery, Log: a.log}
	o.reporters.Add(1)
	go func() {
		defer o.reporters.Done()
		rep.Run(o.ctx)
	}()
	if a.register == nil {
		return
	}
	o.reporters.Add(1)
	go func() {
		defer o.reporters.Done()
		keepRegistered(o.ctx, a.sender, *a.register, o.heartbeat, a.log)
	}()
}

// keepRegistered registers an agent on chain with msg, then heartbeats
// every interval until ctx ends. A registration that fails (the node
// briefly away) is tried again at each tick, a failed heartbeat at the
// next one: a serving agent must not stop being one over a hiccup.
func keepRegistered(ctx context.Context, s walletd.WalletSender, msg tx.Msg, every time.Duration, log *slog.Logger) {
	registered := false
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		next := agents.NewHeartbeatMsg()
		if !registered {
			next = msg
		}
		if _, err := s.Send(ctx, next); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("agent on chain", "registered", registered, "err", err)
		} else {
			registered = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// OracleURL is the oracle's base URL ("" when it is off).
func (d *Devnet) OracleURL() string {
	d.reportersMu.Lock()
	defer d.reportersMu.Unlock()
	if d.oracle == nil {
		return ""
	}
	return "http://" + d.oracle.addr.String()
}

func (d *Devnet) closeOracle() {
	d.reportersMu.Lock()
	o, reps := d.oracle, d.reporters
	d.oracle, d.reporters = nil, nil
	d.reportersMu.Unlock()
	if o != nil { // (waited for outside the lock)
		o.cancel()
		<-o.done
		o.reporters.Wait()
	}
	for _, a := range reps {
		a.key.Wipe()
	}
}

// bannerOracle adds the oracle's line to the banner.
func (d *Devnet) bannerOracle(w io.Writer) {
	if u := d.OracleURL(); u != "" {
		fmt.Fprintf(w, "Metrics oracle %s (the devnet's miners and span servers report to it; others with aitbc miner start --oracle %s; epoch aggregates on chain from wallet %s)\n", u, u, OracleWallet)
	}
}

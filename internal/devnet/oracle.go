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
	d.oracle = &oracleRun{addr: ln.Addr(), cancel: cancel, done: done}
	d.startReporters(octx, "http://"+ln.Addr().String())
	return nil
}

// oracleRun is the devnet's running oracle and its agents' reporters.
type oracleRun struct {
	addr      net.Addr
	cancel    context.CancelFunc
	done      chan struct{}
	reporters sync.WaitGroup
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
	reg := agents.NewRegisterMsg(MinerWallet(i), hash, []string{"inference"}, nil)
	d.reporters = append(d.reporters, agentReporter{
		key: key, col: col,
		register: &reg,
		sender:   walletd.WalletSender{S: d.Wallets.Service(), Name: MinerWallet(i), Password: d.cfg.GenesisPassword},
		log:      d.cfg.Log.With("service", "miner", "miner", i),
	})
	return system.ReportingRunner(runner, col), nil
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
	d.reporters = append(d.reporters, agentReporter{key: key, col: col, log: d.cfg.Log.With("service", "span", "span", i)})
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

// startReporters runs, for every serving agent, its registration and
// heartbeats (miners) and its OracleReporter, until ctx ends. Until the
// registration is committed the agent's reports are refused as
// agent_not_registered and their counts wait: nothing is lost.
func (d *Devnet) startReporters(ctx context.Context, url string) {
	for _, a := range d.reporters {
		rep := &report.OracleReporter{URL: url, ChainID: d.Node.ChainID(), Key: a.key, Collector: a.col, Interval: DevnetReportEvery, Log: a.log}
		d.oracle.reporters.Add(1)
		go func() {
			defer d.oracle.reporters.Done()
			rep.Run(ctx)
		}()
		if a.register == nil {
			continue
		}
		d.oracle.reporters.Add(1)
		go func() {
			defer d.oracle.reporters.Done()
			keepRegistered(ctx, a.sender, *a.register, time.Minute, a.log)
		}()
	}
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
	if d.oracle == nil {
		return ""
	}
	return "http://" + d.oracle.addr.String()
}

func (d *Devnet) closeOracle() {
	if d.oracle != nil {
		d.oracle.cancel()
		<-d.oracle.done
		d.oracle.reporters.Wait()
		d.oracle = nil
	}
	for _, a := range d.reporters {
		a.key.Wipe()
	}
	d.reporters = nil
}

// bannerOracle adds the oracle's line to the banner.
func (d *Devnet) bannerOracle(w io.Writer) {
	if u := d.OracleURL(); u != "" {
		fmt.Fprintf(w, "Metrics oracle %s (the devnet's miners and span servers report to it; others with aitbc miner start --oracle %s; epoch aggregates on chain from wallet %s)\n", u, u, OracleWallet)
	}
}

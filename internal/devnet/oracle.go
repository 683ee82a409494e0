package devnet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/modules/agents"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/oracle"
	"github.com/aitbc/aitbc/internal/system"
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
	return nil
}

// oracleRun is the devnet's running oracle.
type oracleRun struct {
	addr   net.Addr
	cancel context.CancelFunc
	done   chan struct{}
}

// OracleURL is the oracle's base URL ("" when it is off).
func (d *Devnet) OracleURL() string {
	if d.oracle == nil {
		return ""
	}
	return "http://" + d.oracle.addr.String()
}

func (d *Devnet) closeOracle() {
	if d.oracle == nil {
		return
	}
	d.oracle.cancel()
	<-d.oracle.done
	d.oracle = nil
}

// bannerOracle adds the oracle's line to the banner.
func (d *Devnet) bannerOracle(w io.Writer) {
	if u := d.OracleURL(); u != "" {
		fmt.Fprintf(w, "Metrics oracle %s (agents report with aitbc miner start --oracle %s; epoch aggregates on chain from wallet %s)\n", u, u, OracleWallet)
	}
}

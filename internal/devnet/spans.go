package devnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/engine"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/swarm"
	"github.com/aitbc/aitbc/internal/walletd"
)

// SpanWallet is the wallet of span server i: it registers the span on
// chain as an agent and sends its heartbeats.
func SpanWallet(i int) string { return fmt.Sprintf("devnet-span-%d", i) }

// spanMiners are the devnet's span servers and their announcers.
type spanMiners struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startSpanMiners starts Config.SpanMiners span servers, each holding an
// even share of the default model's layers, so that a split job runs out
// of the box (aitbc swarm generate --peers <SpanURLs>).
func (d *Devnet) startSpanMiners(ctx context.Context, ks *keystore.Store) error {
	n := d.cfg.SpanMiners
	if n <= 0 {
		return nil
	}
	m, err := engine.LoadDefault()
	if err != nil {
		return err
	}
	layers := m.Config().Layers
	if n > layers {
		return fmt.Errorf("devnet: %d span miners for a %d-layer model", n, layers)
	}
	hash, err := swarm.ModelHash(m)
	if err != nil {
		return err
	}
	listen := d.cfg.SpanListen
	if listen == "" {
		listen = "127.0.0.1:8031"
	}
	// Bind every port first: a taken one stops the devnet before any serves.
	var lns []net.Listener
	for i := range n {
		addr, err := nthListen(listen, i)
		if err == nil {
			var ln net.Listener
			if ln, err = net.Listen("tcp", addr); err == nil {
				lns = append(lns, ln)
				continue
			}
		}
		for _, ln := range lns {
			_ = ln.Close()
		}
		return fmt.Errorf("devnet: span server %d: %w", i, err)
	}
	every := d.heartbeatEvery(ctx) // their agents' heartbeats follow the active window (oracle.go)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.spans = &spanMiners{cancel: cancel}
	svc := d.Wallets.Service()
	for i, ln := range lns {
		sp := swarm.ServedSpan{Name: engine.DefaultModel, Model: m, First: i * layers / n, Last: (i + 1) * layers / n}
		// The span wallet's key signs the stage receipts the split jobs
		// pay it by (a home made before --span-miners has none: it serves
		// unpaid, by URL only).
		var signer swarm.Signer
		key, err := ks.Unlock(SpanWallet(i), d.cfg.GenesisPassword)
		if err == nil {
			signer = key
		} else {
			key = nil
		}
		// With the oracle, every forward it serves is counted for its
		// signed reports (oracle.go).
		srv, err := swarm.NewServer([]swarm.ServedSpan{sp}, swarm.ServerConfig{Threads: 1, Signer: signer, Observe: d.spanAgent(i, key)}, d.cfg.Log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		d.SpanURLs = append(d.SpanURLs, "http://"+ln.Addr().String())
		log := d.cfg.Log.With("service", "span", "span", i)
		sender := walletd.WalletSender{S: svc, Name: SpanWallet(i), Password: d.cfg.GenesisPassword}
		d.spans.wg.Add(2)
		go func() {
			defer d.spans.wg.Done()
			h := srv.Handler()
			if d.cfg.WrapSpan != nil {
				h = d.cfg.WrapSpan(i, h)
			}
			if err := swarm.ServeHandler(sctx, ln, h); err != nil {
				log.Error("span server", "err", err)
			}
		}()
		go func() {
			defer d.spans.wg.Done()
			if err := swarm.Announce(sctx, sender, []swarm.ServedSpan{sp}, "http://"+ln.Addr().String(), hash, every, log); err != nil {
				// A devnet home made before --span-miners has no funded
				// span wallet: the servers still serve by URL.
				log.Warn("span announcement", "err", err)
			}
		}()
	}
	return nil
}

func (d *Devnet) closeSpans() {
	if d.spans != nil {
		d.spans.cancel()
		d.spans.wg.Wait()
		d.spans = nil
	}
}

// spanBanner adds the span servers' line to the banner.
func (d *Devnet) spanBanner(w io.Writer) {
	if len(d.SpanURLs) > 0 {
		fmt.Fprintf(w, "  span servers     %s  (tolstoy-1m's layers, split evenly)\nTry:  aitbc swarm generate --peers %s --prompt \"It was\"\n",
			strings.Join(d.SpanURLs, " "), strings.Join(d.SpanURLs, ","))
		fmt.Fprintf(w, "      aitbc ai-submit --wallet %s --prompt \"It was\" --payment 5 --split   (routed and paid per stage by the coordinator)\n", GenesisWallet)
	}
}

// splitConfig lets the devnet's first coordinator route split jobs through
// the span servers registered on chain (only with --span-miners: without
// them a model no miner serves is refused as before).
func splitConfig(cfg Config, node module.Getter) coordinator.SplitConfig {
	if cfg.SpanMiners <= 0 {
		return coordinator.SplitConfig{}
	}
	return coordinator.SplitConfig{
		Dir:  swarm.ChainPeers{Node: node, HTTP: &http.Client{Timeout: 30 * time.Second}, Log: cfg.Log},
		HTTP: &http.Client{Timeout: 30 * time.Second},
		Bans: swarm.NewBans(0, 0),
		Model: func(name string) (coordinator.SplitModel, bool) {
			if name != engine.DefaultModel {
				return coordinator.SplitModel{}, false
			}
			m, err := engine.LoadDefault()
			if err != nil {
				return coordinator.SplitModel{}, false
			}
			tok := m.Tokenizer()
			return coordinator.SplitModel{Layers: m.Config().Layers, Encode: m.EncodePrompt, Piece: tok.Piece, Stop: m.StopTokens()}, true
		},
	}
}

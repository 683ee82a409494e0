package devnet

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/walletd"
)

// DevnetRegion is the region the devnet announces its coordinators in.
const DevnetRegion = "devnet"

// announceRun is the devnet's running announcement of its coordinators.
type announceRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// announceCoordinators announces every coordinator of the devnet on chain
// (coordinators/announce, signed by the coordinators' wallet: their key),
// as `aitbc coordinator start --public-url --region` does, so that `aitbc
// coordinator list`, `--coordinator chain` and a verifier looking for a
// job's coordinator find them on a devnet too. It runs in the background
// (coordinator.AnnounceLoop: retried until committed, no transaction when
// the chain already holds the record, as after a restart on fixed ports)
// and does not hold up the start.
func (d *Devnet) announceCoordinators(ctx context.Context) {
	if len(d.CoordinatorURLs) == 0 {
		return
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &announceRun{cancel: cancel, done: make(chan struct{})}
	d.announce = a
	s := walletd.WalletSender{S: d.Wallets.Service(), Name: CoordinatorWallet, Password: d.cfg.GenesisPassword}
	urls := append([]string(nil), d.CoordinatorURLs...)
	log := d.cfg.Log.With("service", "coordinator")
	go func() {
		defer close(a.done)
		self, err := d.Wallets.Service().Address(actx, CoordinatorWallet)
		if err != nil {
			log.Warn("devnet: coordinators not announced", "err", err)
			return
		}
		// A devnet restarted on other ports (":0") would leave the URLs of
		// its earlier runs listed, dead, until the key's 16 were used up:
		// the key's records in the devnet's region that are not this
		// run's are retired first.
		if have, err := coordinators.Of(actx, d.Node.Client(), self); err == nil {
			for _, v := range have.Coordinators {
				if v.Region == DevnetRegion && !slices.Contains(urls, v.URL) {
					if _, err := s.Send(actx, coordinators.NewRetireMsg(v.URL)); err != nil {
						log.Warn("devnet: retiring an earlier run's coordinator URL", "url", v.URL, "err", err)
					}
				}
			}
		}
		// One after the other: they share the key, and each announcement
		// reads the key's record before it sends.
		for i, u := range urls {
			an := coordinator.Announcement{PublicURL: u, Region: DevnetRegion, Name: fmt.Sprintf("devnet coordinator %d", i+1)}
			if err := coordinator.AnnounceLoop(actx, d.Node.Client(), s, self, an, time.Second, log); err != nil {
				log.Warn("devnet: coordinator not announced", "url", u, "err", err)
			}
		}
	}()
}

func (d *Devnet) closeAnnounce() {
	if d.announce == nil {
		return
	}
	d.announce.cancel()
	<-d.announce.done
	d.announce = nil
}

package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/httpx"
)

// Announcement is what a coordinator says of itself on chain (the
// coordinators module): the URL customers and miners reach it at and the
// region it runs in, so that a client given no coordinator can find the
// nearest (Picker).
type Announcement struct {
	PublicURL string
	Region    string
	Name      string
}

// Check checks a as the chain will, so that a bad --public-url is refused
// at start rather than by every transaction that announces it.
func (a Announcement) Check() error {
	return coordinators.MsgAnnounce{URL: a.PublicURL, Region: a.Region, Name: a.Name}.Check()
}

// Announce makes the chain's record of self's a.PublicURL say a. It reads
// the record first and sends coordinators/announce only when the record
// is missing or differs, so that a coordinator restarting every day pays
// no fee for it. It reports whether it sent a transaction.
func Announce(ctx context.Context, g module.Getter, s Sender, self address.Address, a Announcement) (bool, error) {
	if err := a.Check(); err != nil {
		return false, err
	}
	if ok, err := onChain(ctx, g, self, a); err != nil || ok {
		return false, err
	}
	if _, err := s.Send(ctx, coordinators.NewAnnounceMsg(a.PublicURL, a.Region, a.Name)); err != nil {
		return false, fmt.Errorf("coordinator: announcing %s: %w", a.PublicURL, err)
	}
	return true, nil
}

// onChain reports whether the chain's record of self's a.PublicURL says a.
func onChain(ctx context.Context, g module.Getter, self address.Address, a Announcement) (bool, error) {
	have, err := coordinators.Of(ctx, g, self)
	if err != nil && !httpx.IsCode(err, "coordinator_not_found") {
		return false, fmt.Errorf("coordinator: reading its announcement: %w", err)
	}
	for _, v := range have.Coordinators {
		if v.URL == a.PublicURL && v.Region == a.Region && v.Name == a.Name {
			return true, nil
		}
	}
	return false, nil
}

// commitWaits is how many retry periods AnnounceLoop looks for a sent
// announcement before it sends it again.
const commitWaits = 10

// maxAnnounceSends bounds the transactions AnnounceLoop sends: one the
// chain takes but its block refuses (a 17th URL of the key) still costs
// its fee, and must not cost it every few seconds for ever.
const maxAnnounceSends = 5

// AnnounceLoop announces a until the chain holds it: at start the node may
// not answer yet, or the wallet lack the fee; it tries again every retry
// (and logs why) rather than fail the coordinator, which serves its
// customers whether or not the chain lists it. It returns when the record
// is there, after maxAnnounceSends transactions that did not make it, or
// when ctx ends; only an announcement no retry can mend is an error.
func AnnounceLoop(ctx context.Context, g module.Getter, s Sender, self address.Address, a Announcement, retry time.Duration, log *slog.Logger) error {
	sends := 0
	for {
		if sends == maxAnnounceSends {
			if ok, _ := onChain(ctx, g, self, a); !ok {
				log.Error("coordinator not announced on chain: giving up", "url", a.PublicURL, "sent", sends)
				return nil
			}
		}
		sent, err := Announce(ctx, g, s, self, a)
		switch {
		case err == nil && !sent:
			log.Info("coordinator announced on chain", "url", a.PublicURL, "region", a.Region)
			return nil
		case errors.Is(err, coordinators.ErrURL) || errors.Is(err, coordinators.ErrRegion) || errors.Is(err, coordinators.ErrName):
			return err // no retry mends it
		case httpx.IsCode(err, "too_many_coordinator_endpoints"):
			log.Error("coordinator not announced on chain: giving up", "url", a.PublicURL, "err", err)
			return nil
		case err != nil:
			// The node did not answer, or refused the transaction (no fee
			// yet): again after a pause.
			log.Warn("coordinator announcement not on chain yet", "url", a.PublicURL, "err", err)
		}
		waits := 1
		if sent {
			// Look for it for a while before sending another: a
			// transaction still in the mempool is not a reason to pay for
			// a second one.
			sends++
			waits = commitWaits
		}
		for range waits {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retry):
			}
			if ok, _ := onChain(ctx, g, self, a); ok {
				break
			}
		}
	}
}

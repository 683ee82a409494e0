package devnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
)

// TestDevnetAnnouncesItsCoordinatorsOnChain: a devnet's coordinator is
// announced on chain by its key, in region "devnet", so that `aitbc
// coordinator list` (the chain's) and `--coordinator chain` find it, and
// the picker finds it healthy, answering as the key that announced it.
// Restarted on the same home on another port, the devnet announces the
// new URL and retires the old one: the chain lists only what runs.
func TestDevnetAnnouncesItsCoordinatorsOnChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	home := t.TempDir()
	e := start(t, devnet.Config{Home: home, Miners: -1, NoHosting: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	coord, err := e.d.Wallets.Service().Address(ctx, devnet.CoordinatorWallet)
	if err != nil {
		t.Fatal(err)
	}
	var l coordinators.ListView
	for {
		l, err = coordinators.List(ctx, e.node, coordinators.Filter{})
		if err == nil && len(l.Coordinators) > 0 {
			break
		}
		wait(t, ctx, "the devnet's coordinator announced on chain")
	}
	if len(l.Coordinators) != 1 {
		t.Fatalf("announced: %+v, want the devnet's one coordinator", l.Coordinators)
	}
	c := l.Coordinators[0]
	if c.URL != e.d.CoordinatorURL() || c.Region != devnet.DevnetRegion || c.Address != coord || c.Name != "devnet coordinator 1" {
		t.Fatalf("announced %+v, want %s in region %s by %s", c, e.d.CoordinatorURL(), devnet.DevnetRegion, coord)
	}
	// What `aitbc coordinator list` and `--coordinator chain` do with it.
	cands, err := coordinator.Announced(ctx, e.node, "")
	if err != nil {
		t.Fatal(err)
	}
	ranked, _, err := (&coordinator.Picker{}).Pick(ctx, cands)
	if err != nil || len(ranked) != 1 || !ranked[0].Healthy || ranked[0].URL != e.d.CoordinatorURL() {
		t.Fatalf("picked %+v %v", ranked, err)
	}

	first := e.d.CoordinatorURL()
	e.stop()

	e = start(t, devnet.Config{Home: home, Miners: -1, NoHosting: true})
	// (Were the free port the same again, the one record would stand.)
	if e.d.CoordinatorURL() != first {
		t.Logf("restarted on %s, was %s", e.d.CoordinatorURL(), first)
	}
	for {
		l, err = coordinators.List(ctx, e.node, coordinators.Filter{})
		if err == nil && len(l.Coordinators) == 1 && l.Coordinators[0].URL == e.d.CoordinatorURL() {
			break
		}
		wait(t, ctx, "only the restarted devnet's coordinator listed")
	}
}

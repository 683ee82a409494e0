package system_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
	"github.com/aitbc/aitbc/internal/walletd"
)

// freeAddr is a loopback host:port nobody listens on (below the
// ephemeral range, never handed out twice in this process).
func freeAddr(t *testing.T) string {
	t.Helper()
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// hold binds a free address, as another program would.
func hold(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// assertFree fails unless every address can be bound again.
func assertFree(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		a = strings.TrimPrefix(a, "tcp://")
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s still bound: %v", a, err)
			continue
		}
		ln.Close()
	}
}

// chainHome makes a single-validator chain in a temporary home, funding
// the given accounts.
func chainHome(t *testing.T, accounts ...system.GenesisAccount) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "chain")
	created, err := system.InitChain(home, system.ChainSpec{ChainID: "aitbc-system-test", Accounts: accounts})
	if err != nil || !created {
		t.Fatalf("InitChain: %v %v", created, err)
	}
	if again, err := system.InitChain(home, system.ChainSpec{ChainID: "other"}); err != nil || again {
		t.Fatalf("InitChain on an initialised home: %v %v", again, err)
	}
	return home
}

type nodeAddrs struct{ p2p, comet, rest string }

func newAddrs(t *testing.T) nodeAddrs {
	return nodeAddrs{p2p: "tcp://" + freeAddr(t), comet: "tcp://" + freeAddr(t), rest: freeAddr(t)}
}

func (a nodeAddrs) config(home string) system.NodeConfig {
	return system.NodeConfig{
		Home: home, BlockTime: 150 * time.Millisecond, P2PListen: a.p2p, CometRPCListen: a.comet,
		RESTListen: a.rest, DisablePEX: true,
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startNode starts a node in its own system and returns it with the
// system's Close.
func startNode(t *testing.T, cfg system.NodeConfig) (*system.System, error) {
	t.Helper()
	s, err := system.Start(ctxT(t), system.Config{Node: &cfg})
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// TestNodeStartFailsOnABusyPortAndReleasesEverything: the REST port or
// the P2P port is taken. Start fails with the operating system's words,
// every other port is free again (CometBFT's RPC had already bound when
// its P2P port failed), and the same home starts at once afterwards, so
// its lock and its stores were released too.
func TestNodeStartFailsOnABusyPortAndReleasesEverything(t *testing.T) {
	home := chainHome(t)
	for _, tc := range []struct {
		name string
		busy func(*nodeAddrs, string)
	}{
		{"rest", func(a *nodeAddrs, b string) { a.rest = b }},
		{"p2p", func(a *nodeAddrs, b string) { a.p2p = "tcp://" + b }},
		{"comet-rpc", func(a *nodeAddrs, b string) { a.comet = "tcp://" + b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAddrs(t)
			busy := hold(t)
			tc.busy(&a, busy)
			_, err := startNode(t, a.config(home))
			if err == nil || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("start with %s busy: %v", tc.name, err)
			}
			for _, addr := range []string{a.p2p, a.comet, a.rest} {
				if strings.TrimPrefix(addr, "tcp://") != busy {
					assertFree(t, addr)
				}
			}
		})
	}
	a := newAddrs(t)
	s, err := startNode(t, a.config(home))
	if err != nil {
		t.Fatalf("start after the failures: %v", err)
	}
	if err := s.Node.WaitHeight(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	if h, err := s.Node.Client().Health(ctxT(t)); err != nil || h.ChainID != "aitbc-system-test" {
		t.Fatalf("health %+v %v", h, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertFree(t, a.p2p, a.comet, a.rest)
}

// TestSecondNodeOnAHomeIsRefusedBeforeItBindsAnything: the home's lock
// stops a second node (of this process or another) before it opens the
// stores or binds a port; the first keeps running.
func TestSecondNodeOnAHomeIsRefusedBeforeItBindsAnything(t *testing.T) {
	home := chainHome(t)
	first, err := startNode(t, newAddrs(t).config(home))
	if err != nil {
		t.Fatal(err)
	}
	a := newAddrs(t)
	_, err = startNode(t, a.config(home))
	if !errors.Is(err, system.ErrInUse) || !strings.Contains(err.Error(), home) {
		t.Fatalf("second node: %v", err)
	}
	assertFree(t, a.p2p, a.comet, a.rest)
	h := first.Node.Height()
	if err := first.Node.WaitHeight(ctxT(t), h+1); err != nil {
		t.Fatalf("first node after the refusal: %v", err)
	}
}

// TestNodeWalletAndCoordinatorFromOneConfig builds the three from one
// Config, wired to each other (the daemon and the coordinator use the
// node started with them); a second coordinator on the same store is
// refused; Close leaves nothing bound.
func TestNodeWalletAndCoordinatorFromOneConfig(t *testing.T) {
	dir := t.TempDir()
	kdf := keystore.WithKDF(keystore.InsecureTestKDF())
	ks, err := keystore.ForHome(dir, kdf)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := ks.EnsureWallet("coord", "pw")
	if err != nil {
		t.Fatal(err)
	}
	home := chainHome(t, system.GenesisAccount{Name: "coord", Address: coord, Balance: 1000 * coin.Unit})
	a := newAddrs(t)
	nc := a.config(home)
	walletAddr, coordAddr := freeAddr(t), freeAddr(t)
	store := filepath.Join(dir, "coordinator", "coordinator.db")
	wcfg := system.WalletConfig{Config: walletd.Config{Home: dir, Listen: walletAddr, Keystore: []keystore.Option{kdf}}}
	ctx := ctxT(t)
	s := system.New(nil)
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.StartNode(ctx, nc); err != nil {
		t.Fatal(err)
	}
	w, err := s.StartWallet(ctx, wcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Node.WaitHeight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c, err := s.StartCoordinator(ctx, system.CoordinatorConfig{
		Listen: coordAddr, Store: store,
		Wallet: walletd.WalletSender{S: w.Service(), Name: "coord", Password: "pw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Service.Address(); got != coord {
		t.Fatalf("coordinator address %s, want its wallet's %s", got, coord)
	}
	bal, err := w.Service().Balance(ctx, "coord")
	if err != nil || bal.Amount != 1000*coin.Unit {
		t.Fatalf("the daemon reads the node started with it: %+v %v", bal, err)
	}

	other := system.New(nil)
	_, err = other.StartCoordinator(ctx, system.CoordinatorConfig{
		Listen: freeAddr(t), Store: store, Chain: s.Node.Client(),
		Wallet: walletd.WalletSender{S: w.Service(), Name: "coord", Password: "pw"},
	})
	if !errors.Is(err, system.ErrInUse) {
		t.Fatalf("second coordinator on the store: %v", err)
	}
	_ = other.Close()

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertFree(t, a.p2p, a.comet, a.rest, walletAddr, coordAddr)
}

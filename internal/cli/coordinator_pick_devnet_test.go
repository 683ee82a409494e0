package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/testnet"
)

// TestCoordinatorsAnnouncedOnChainArePickedByHealth: three coordinators
// started with `aitbc coordinator start --public-url --region` on a real
// devnet announce themselves on chain; one is then stopped. `aitbc
// coordinator list` (no --coordinator: the chain's) shows all three with
// their regions, the two that run healthy first and the stopped one down;
// a command given `--coordinator chain -v` prints that ranking and talks
// to a running one.
func TestCoordinatorsAnnouncedOnChainArePickedByHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	t.Setenv("AITBC_COORDINATOR", "")
	os.Unsetenv("AITBC_COORDINATOR")
	p2p, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p2pAddr := p2p.Addr().String()
	p2p.Close()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1, CheckInvariants: true, NoHosting: true,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: "off",
		CometRPCListen: "off", P2PListen: "tcp://" + p2pAddr,
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	run := func(ctx context.Context, args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		root := cli.NewRoot("aitbc", strings.NewReader(""), &out, &errb)
		root.SetArgs(append([]string{"--home", home, "--node", d.RPCURL(), "--wallet-url", d.WalletURL()}, args...))
		err := root.ExecuteContext(ctx)
		return out.String(), errb.String(), err
	}
	type started struct {
		url    string
		region string
		stop   context.CancelFunc
		done   chan struct{} // closed when the command returned, with err and stderr set
		err    error
		stderr string
	}
	start := func(region string) *started {
		port, err := testnet.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		listen := fmt.Sprintf("127.0.0.1:%d", port)
		cctx, stop := context.WithCancel(ctx)
		s := &started{url: "http://" + listen, region: region, stop: stop, done: make(chan struct{})}
		go func() {
			defer close(s.done)
			// The coordinators of one marketplace share its key; each has
			// its own store here.
			_, s.stderr, s.err = run(cctx, "coordinator", "start", "--wallet", devnet.GenesisWallet, "--password", "123",
				"--listen", listen, "--store", filepath.Join(home, region+".db"), "--public-url", s.url, "--region", region)
		}()
		t.Cleanup(func() { stop(); <-s.done })
		return s
	}
	eu, us, gone := start("eu-west"), start("us-east"), start("ap-south")

	list := func(args ...string) []coordinator.Candidate {
		t.Helper()
		out, errOut, err := run(ctx, append([]string{"coordinator", "list", "--output", "json"}, args...)...)
		if err != nil {
			return nil // no announcement committed yet
		}
		var cs []coordinator.Candidate
		if err := json.Unmarshal([]byte(out), &cs); err != nil {
			t.Fatalf("coordinator list: %v\n%s\n%s", err, out, errOut)
		}
		return cs
	}
	healthy := func(cs []coordinator.Candidate) int {
		n := 0
		for _, c := range cs {
			if c.Healthy {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(3 * time.Minute)
	for cs := list(); len(cs) != 3 || healthy(cs) != 3; cs = list() {
		if time.Now().After(deadline) {
			out, errOut, err := run(ctx, "coordinator", "list")
			eu.stop()
			<-eu.done
			t.Logf("eu: %v\n%s", eu.err, eu.stderr)
			t.Fatalf("three coordinators never announced and healthy: %+v\n%v\n%s\n%s", cs, err, out, errOut)
		}
		for _, s := range []*started{eu, us, gone} {
			select {
			case <-s.done:
				t.Fatalf("coordinator %s ended: %v\n%s", s.region, s.err, s.stderr)
			default:
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	gone.stop()
	<-gone.done
	if gone.err != nil {
		t.Fatalf("stopping a coordinator: %v\n%s", gone.err, gone.stderr)
	}
	cs := list()
	if len(cs) != 3 || healthy(cs) != 2 || cs[2].URL != gone.url || cs[2].Healthy || cs[2].Error == "" {
		t.Fatalf("after one stopped: %+v", cs)
	}
	regions := map[string]string{}
	for _, c := range cs {
		regions[c.URL] = c.Region
		if c.Source != "chain" || c.Address != cs[0].Address {
			t.Fatalf("not the announcing key: %+v", c)
		}
	}
	if regions[eu.url] != "eu-west" || regions[us.url] != "us-east" || regions[gone.url] != "ap-south" {
		t.Fatalf("regions: %v", regions)
	}
	// One marketplace's key: the same three.
	if byKey := list("--coordinator", "chain:"+cs[0].Address); len(byKey) != 3 {
		t.Fatalf("chain:%s: %+v", cs[0].Address, byKey)
	}
	// A command given the chain's coordinators uses a running one and says
	// which with -v.
	out, errOut, err := run(ctx, "--coordinator", "chain", "-v", "coordinator", "miners")
	if err != nil || !strings.Contains(out, "no miner connected") || !strings.Contains(errOut, "nearest healthy first") ||
		!strings.Contains(errOut, "DOWN") || !strings.Contains(errOut, gone.url) {
		t.Fatalf("coordinator miners via the chain: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	// The stopped one is retired: the chain no longer lists it.
	if _, errOut, err := run(ctx, "coordinator", "retire", "--wallet", devnet.GenesisWallet, "--password", "123", "--public-url", gone.url); err != nil {
		t.Fatalf("retire: %v\n%s", err, errOut)
	}
	for cs := list(); len(cs) != 2; cs = list() {
		if time.Now().After(deadline) {
			t.Fatalf("the retired coordinator is still listed: %+v", cs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Bad announcements are refused before the coordinator starts.
	if _, _, err := run(ctx, "coordinator", "start", "--wallet", devnet.GenesisWallet, "--password", "123", "--listen", "127.0.0.1:0",
		"--public-url", "http://x.example", "--store", filepath.Join(home, "x.db")); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Fatalf("a URL without a region: %v", err)
	}
	if _, _, err := run(ctx, "coordinator", "start", "--wallet", devnet.GenesisWallet, "--password", "123", "--listen", "127.0.0.1:0",
		"--public-url", "http://x.example/", "--region", "eu", "--store", filepath.Join(home, "x.db")); err == nil || !strings.Contains(err.Error(), "slash") {
		t.Fatalf("a URL with a trailing slash: %v", err)
	}
}

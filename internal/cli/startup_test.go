package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/testnet"
)

// Every command that runs services fails at startup the same way: exit
// status 1, the cause in one line on stderr (after the progress line some
// commands print first), no stack trace, and nothing left behind: every
// port the command had bound is free again and its home can be used at
// once. These tests run the real entry point, cli.Execute, in-process.

// port is a free loopback host:port.
func port(t *testing.T) string {
	t.Helper()
	p, err := testnet.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// busyPort is a port another program holds for the rest of the test.
func busyPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", port(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// requireFree fails unless each address can be bound again.
func requireFree(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		a = strings.TrimPrefix(a, "tcp://")
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is still bound after the failed start: %v", a, err)
			continue
		}
		ln.Close()
	}
}

// runExit runs one aitbc command line through cli.Execute with the
// process's stdout and stderr captured, and returns its exit status and
// stderr. A command that starts instead of failing is stopped after a
// minute.
func runExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(&stdout, outR) }()
	go func() { defer wg.Done(); _, _ = io.Copy(&stderr, errR) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outW, errW
	code := cli.Execute(ctx, "aitbc", args)
	os.Stdout, os.Stderr = oldOut, oldErr
	outW.Close()
	errW.Close()
	wg.Wait()
	return code, stderr.String()
}

// requireStartupFailure checks exit status 1 and a one-line cause that
// contains want.
func requireStartupFailure(t *testing.T, code int, stderr, want string) {
	t.Helper()
	if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
		t.Fatalf("stack trace on stderr:\n%s", stderr)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "starting devnet in ") { // progress, printed before starting
			lines = append(lines, l)
		}
	}
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "aitbc: ") || !strings.Contains(lines[0], want) {
		t.Fatalf("exit %d, stderr %q; want exit 1 and one line with %q", code, stderr, want)
	}
}

// devnetArgs are `aitbc devnet` flags on fresh ports, and the ports.
func devnetArgs(t *testing.T, home string) ([]string, []string) {
	rpc, wal, coord, p2p, comet, web := port(t), port(t), port(t), "tcp://"+port(t), "tcp://"+port(t), port(t)
	return []string{"--home", home, "devnet", "--miners", "0", "--block-time", "150ms",
			"--rpc-listen", rpc, "--wallet-listen", wal, "--coordinator-listen", coord,
			"--p2p-listen", p2p, "--comet-rpc-listen", comet, "--web-listen", web,
			"--exchange-listen", "off", "--oracle-listen", "off"},
		[]string{rpc, wal, coord, p2p, comet, web}
}

// nodeArgs are `aitbc node start` flags on fresh ports, and the ports.
func nodeArgs(home string, rest, p2p, comet string) []string {
	return []string{"--home", home, "node", "start", "--rest-listen", rest, "--p2p-listen", "tcp://" + p2p, "--comet-rpc-listen", "tcp://" + comet}
}

// replace returns args with the value after flag set to v.
func replace(args []string, flag, v string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = v
		}
	}
	return out
}

// with is base followed by more, in a new slice.
func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// without drops each address in drop from addrs.
func without(addrs []string, drop ...string) []string {
	var out []string
	for _, a := range addrs {
		keep := true
		for _, d := range drop {
			if strings.TrimPrefix(a, "tcp://") == strings.TrimPrefix(d, "tcp://") {
				keep = false
			}
		}
		if keep {
			out = append(out, a)
		}
	}
	return out
}

// startTestDevnet runs a devnet in-process on home (wallets with the cheap
// test KDF, so that the commands under test open them quickly).
func startTestDevnet(t *testing.T, home, coordinatorListen string) *devnet.Devnet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := devnet.Start(ctx, devnet.Config{
		Home: home, BlockTime: 150 * time.Millisecond, Miners: -1,
		RPCListen: "127.0.0.1:0", WalletListen: "127.0.0.1:0", CoordinatorListen: coordinatorListen,
		CometRPCListen: "off", P2PListen: "tcp://" + port(t),
		Keystore: []keystore.Option{keystore.WithKDF(keystore.InsecureTestKDF())},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStartupFailuresWhileADevnetRuns: a devnet (without a coordinator)
// holds its home; a second devnet or a node on that home, and services on
// busy ports or with wrong passwords, each fail with exit 1 and one line.
func TestStartupFailuresWhileADevnetRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	home := t.TempDir()
	d := startTestDevnet(t, home, "off")
	defer d.Close()
	node := []string{"--home", home, "--node", d.RPCURL()}

	t.Run("devnet on a home in use", func(t *testing.T) {
		args, ports := devnetArgs(t, home)
		code, stderr := runExit(t, args...)
		requireStartupFailure(t, code, stderr, "in use by another process")
		requireFree(t, ports...)
	})
	t.Run("node start on a home in use", func(t *testing.T) {
		rest, p2p, comet := port(t), port(t), port(t)
		code, stderr := runExit(t, nodeArgs(home, rest, p2p, comet)...)
		requireStartupFailure(t, code, stderr, "in use by another process")
		requireFree(t, rest, p2p, comet)
	})
	t.Run("wallet daemon on a busy port", func(t *testing.T) {
		code, stderr := runExit(t, with(node, "wallet", "daemon", "--listen", busyPort(t))...)
		requireStartupFailure(t, code, stderr, "address already in use")
	})
	coordStart := with(node, "coordinator", "start", "--wallet", devnet.CoordinatorWallet, "--log-level", "error")
	t.Run("coordinator start on a busy port", func(t *testing.T) {
		code, stderr := runExit(t, with(coordStart, "--password", "123", "--listen", busyPort(t))...)
		requireStartupFailure(t, code, stderr, "address already in use")
	})
	t.Run("coordinator start with a wrong password", func(t *testing.T) {
		listen := port(t)
		code, stderr := runExit(t, with(coordStart, "--password", "wrong", "--listen", listen)...)
		requireStartupFailure(t, code, stderr, "wrong password")
		requireFree(t, listen)
	})
	t.Run("coordinator start on a store in use, and the first stops cleanly", func(t *testing.T) {
		first := port(t)
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var out, errb bytes.Buffer
		root := cli.NewRoot("aitbc", strings.NewReader(""), &out, &errb)
		root.SetArgs(with(coordStart, "--password", "123", "--listen", first))
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		waitHTTP(t, "http://"+first+"/v1/health", done)

		second := port(t)
		code, stderr := runExit(t, with(coordStart, "--password", "123", "--listen", second)...)
		requireStartupFailure(t, code, stderr, "in use by another process")
		requireFree(t, second)

		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the first coordinator stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the first coordinator did not stop")
		}
		if !strings.Contains(errb.String(), "coordinator ") || !strings.Contains(errb.String(), "listening on http://"+first) {
			t.Errorf("banner %q", errb.String())
		}
		requireFree(t, first)
	})
	t.Run("miner start with a wrong password", func(t *testing.T) {
		code, stderr := runExit(t, with(node, "miner", "start", "--wallet", devnet.GenesisWallet, "--password", "wrong")...)
		requireStartupFailure(t, code, stderr, "wrong password")
	})
	t.Run("miner start when no node answers", func(t *testing.T) {
		dead := "http://" + port(t)
		code, stderr := runExit(t, "--home", home, "--node", dead, "--coordinator", "http://"+port(t),
			"miner", "start", "--wallet", devnet.GenesisWallet, "--password", "123", "--models", "tolstoy-1m")
		requireStartupFailure(t, code, stderr, "not reachable")
	})
}

// TestDevnetAndNodeStartupFailuresReleaseTheHome: on a home nobody uses, a
// wrong genesis password and busy ports (the last one found only after
// the node and the wallet daemon run) fail with exit 1 and one line, free
// every other port, and then a devnet starts on the same home: the failed
// starts left no lock or open store behind.
func TestDevnetAndNodeStartupFailuresReleaseTheHome(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	home := t.TempDir()
	startTestDevnet(t, home, "127.0.0.1:0").Close()

	t.Run("devnet with a wrong genesis password", func(t *testing.T) {
		args, ports := devnetArgs(t, home)
		code, stderr := runExit(t, with(args, "--genesis-password", "wrong")...)
		requireStartupFailure(t, code, stderr, "wrong password")
		requireFree(t, ports...)
	})
	for _, flag := range []string{"--rpc-listen", "--p2p-listen", "--wallet-listen", "--coordinator-listen", "--web-listen"} {
		t.Run("devnet with "+flag+" busy", func(t *testing.T) {
			args, ports := devnetArgs(t, home)
			busy := busyPort(t)
			if flag == "--p2p-listen" {
				busy = "tcp://" + busy
			}
			code, stderr := runExit(t, replace(args, flag, busy)...)
			requireStartupFailure(t, code, stderr, "address already in use")
			requireFree(t, without(ports, busy)...)
		})
	}
	t.Run("node start with the REST port busy", func(t *testing.T) {
		rest, p2p, comet := busyPort(t), port(t), port(t)
		code, stderr := runExit(t, nodeArgs(home, rest, p2p, comet)...)
		requireStartupFailure(t, code, stderr, "address already in use")
		requireFree(t, p2p, comet)
	})
	t.Run("node start with the P2P port busy", func(t *testing.T) {
		rest, p2p, comet := port(t), busyPort(t), port(t)
		code, stderr := runExit(t, nodeArgs(home, rest, p2p, comet)...)
		requireStartupFailure(t, code, stderr, "address already in use")
		requireFree(t, rest, comet) // CometBFT's RPC had bound before P2P failed
	})

	d := startTestDevnet(t, home, "127.0.0.1:0")
	d.Close()
}

// waitHTTP waits until url answers, or fails the test if the command
// ended first.
func waitHTTP(t *testing.T, url string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("the command ended before serving: %v", err)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
}

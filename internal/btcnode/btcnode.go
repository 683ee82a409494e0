// Package btcnode runs a real Bitcoin node (btcd, built from the module's
// tool dependency) in regtest mode on loopback, for the bridge's tests and
// `aitbc devnet --btc`: a temporary data directory, free ports, an RPC
// user and password, a mining address, and a transaction index. It also
// holds the client-side Bitcoin helpers the bridge shares with its tests:
// P2WPKH addresses from BIP-32 keys and building and signing transactions
// that spend them (txscript), so that nothing here trusts a wallet inside
// the node.
package btcnode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
)

// SegwitHeight is the height from which a fresh btcd regtest chain has
// segregated witness active: btcd's regtest deploys it by BIP 9 voting in
// windows of 144 blocks (started, locked in, active), unlike Bitcoin
// Core's regtest where it is active from genesis. Spending the bridge's
// P2WPKH outputs needs it.
const SegwitHeight = 432

// CoinbaseMaturity is the number of confirmations before a coinbase output
// may be spent (100 on every network).
const CoinbaseMaturity = 100

// Config of a regtest node.
type Config struct {
	// Binary is the btcd executable (Binary() finds or builds one).
	Binary string
	// Dir is the node's data directory; it is created.
	Dir string
	// MiningAddr receives the coinbase of the blocks Mine generates.
	MiningAddr btcutil.Address
	Log        *slog.Logger
}

// Node is a running btcd.
type Node struct {
	cfg     Config
	RPCAddr string
	P2PAddr string
	User    string
	Pass    string
	Client  *rpcclient.Client
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	mu      sync.Mutex // serialises Mine: btcd's generate is not reentrant
}

// Params are the network parameters of a regtest node.
func Params() *chaincfg.Params { return &chaincfg.RegressionNetParams }

var (
	buildMu   sync.Mutex
	errNoBtcd = errors.New("btcd not available")
)

// Binary returns a btcd executable: $AITBC_BTCD when set, else one built
// with `go build` from this module's tool dependency (github.com/btcsuite/btcd,
// pinned in go.mod) into dir, reused when already there. dir "" is the
// user's cache directory, under the pinned version, so that tests and
// devnets build it once.
func Binary(ctx context.Context, dir string) (string, error) {
	if p := os.Getenv("AITBC_BTCD"); p != "" {
		return p, nil
	}
	if dir == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		dir = filepath.Join(c, "aitbc", "btcd-"+btcdVersion(ctx))
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(dir, "btcd")
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() {
		return out, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if p, lerr := exec.LookPath("btcd"); lerr == nil {
			return p, nil
		}
		return "", fmt.Errorf("%w: neither go (to build the tool dependency) nor btcd on PATH", errNoBtcd)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// build beside, then rename: a concurrent process never runs half a file
	tmp := out + ".tmp" + randomHex(4)
	defer os.Remove(tmp)
	var cmd *exec.Cmd
	if md := moduleDir(); md != "" {
		cmd = exec.CommandContext(ctx, goBin, "build", "-o", tmp, "github.com/btcsuite/btcd")
		cmd.Dir = md
	} else {
		// an installed aitbc outside the source tree: the version it was
		// built with, through the module proxy
		gobin, err := os.MkdirTemp(dir, "gobin")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(gobin)
		cmd = exec.CommandContext(ctx, goBin, "install", "github.com/btcsuite/btcd@"+btcdVersion(ctx))
		cmd.Env = append(os.Environ(), "GOBIN="+gobin)
		tmp = filepath.Join(gobin, "btcd")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		if p, lerr := exec.LookPath("btcd"); lerr == nil {
			return p, nil
		}
		return "", fmt.Errorf("%w: %s: %v: %s", errNoBtcd, strings.Join(cmd.Args, " "), err, b)
	}
	return out, os.Rename(tmp, out)
}

// btcdVersion is the btcd module version this binary was built with (the
// one go.mod pins); a test binary carries no module list, so it asks go.
func btcdVersion(ctx context.Context) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/btcsuite/btcd" {
				return d.Version
			}
		}
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", "github.com/btcsuite/btcd")
	cmd.Dir = moduleDir()
	if b, err := cmd.Output(); err == nil && len(b) > 1 {
		return string(bytes.TrimSpace(b))
	}
	return "dev"
}

// moduleDir is a directory inside this module, so that `go build` resolves
// the tool dependency at the version go.mod pins: the working directory
// when it is inside a module, else the source directory of this file.
func moduleDir() string {
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return ""
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Start starts btcd in regtest and waits until its RPC answers.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	rpcAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	p2p, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, RPCAddr: rpcAddr, P2PAddr: p2p, User: "aitbc", Pass: randomHex(16), done: make(chan struct{})}
	args := []string{
		"--regtest", "--datadir=" + filepath.Join(cfg.Dir, "data"), "--logdir=" + filepath.Join(cfg.Dir, "logs"),
		"--rpcuser=" + n.User, "--rpcpass=" + n.Pass, "--rpclisten=" + rpcAddr, "--notls",
		// --txindex: getrawtransaction answers for any transaction (the
		// tests and the reserves check read payments by txid)
		"--listen=" + p2p, "--nodnsseed", "--txindex", "--debuglevel=info",
	}
	if cfg.MiningAddr != nil {
		args = append(args, "--miningaddr="+cfg.MiningAddr.EncodeAddress())
	}
	logf, err := os.Create(filepath.Join(cfg.Dir, "btcd.out"))
	if err != nil {
		return nil, err
	}
	n.cmd = exec.Command(cfg.Binary, args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start btcd: %w", err)
	}
	go func() { n.waitErr = n.cmd.Wait(); logf.Close(); close(n.done) }()
	n.Client, err = rpcclient.New(&rpcclient.ConnConfig{Host: rpcAddr, User: n.User, Pass: n.Pass, HTTPPostMode: true, DisableTLS: true}, nil)
	if err != nil {
		n.Stop()
		return nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := n.Client.GetBlockCount(); err == nil {
			break
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			n.Stop()
			return nil, fmt.Errorf("btcd did not answer on %s: %v (log %s)", rpcAddr, err, filepath.Join(cfg.Dir, "btcd.out"))
		}
		select {
		case <-n.done:
			return nil, fmt.Errorf("btcd exited: %v (log %s)", n.waitErr, filepath.Join(cfg.Dir, "btcd.out"))
		case <-time.After(100 * time.Millisecond):
		}
	}
	cfg.Log.Info("btcd regtest started", "rpc", rpcAddr, "dir", cfg.Dir)
	return n, nil
}

// URL is the node's RPC address as the bridge's configuration names it.
func (n *Node) URL() string { return "http://" + n.User + ":" + n.Pass + "@" + n.RPCAddr }

// Mine generates count blocks to the mining address and returns their hashes.
func (n *Node) Mine(count int) ([]*chainhash.Hash, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var all []*chainhash.Hash
	for count > 0 {
		step := min(count, 200)
		hs, err := n.Client.Generate(uint32(step))
		if err != nil {
			return all, fmt.Errorf("generate %d: %w", step, err)
		}
		all = append(all, hs...)
		count -= step
	}
	return all, nil
}

// Height is the node's best height.
func (n *Node) Height() (int64, error) { return n.Client.GetBlockCount() }

// Stop stops btcd (interrupt, then kill after 10 s) and waits for it.
func (n *Node) Stop() {
	if n.Client != nil {
		n.Client.Shutdown()
	}
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// Remote is a Node of a btcd running elsewhere (another process's
// devnet), reached through client: Mine and the wallets work on it.
func Remote(client *rpcclient.Client) *Node { return &Node{Client: client, done: make(chan struct{})} }

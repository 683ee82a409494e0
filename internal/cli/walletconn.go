package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/keystore"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/walletd"
)

// walletBackend is what the wallet commands need. The wallet daemon's
// Client and a local walletd.Service over the keystore both provide it.
type walletBackend interface {
	Create(ctx context.Context, name, password string) (walletd.WalletInfo, error)
	Restore(ctx context.Context, name, mnemonic, password string) (walletd.WalletInfo, error)
	List(ctx context.Context) ([]walletd.WalletInfo, error)
	Get(ctx context.Context, name string) (walletd.WalletInfo, error)
	Backup(ctx context.Context, name, password string) (walletd.Backup, error)
	Unlock(ctx context.Context, name, password string, timeout time.Duration) (walletd.WalletInfo, error)
	Lock(ctx context.Context, name string) (walletd.WalletInfo, error)
	Balance(ctx context.Context, name string) (walletd.Balance, error)
	BalanceOf(ctx context.Context, addr address.Address) (walletd.Balance, error)
	Send(ctx context.Context, name, password string, to address.Address, amount, fee coin.Amount) (walletd.Submitted, error)
	SignAndSubmit(ctx context.Context, name, password string, msg tx.Msg, fee coin.Amount) (walletd.Submitted, error)
	SignMessage(ctx context.Context, name, password, domain string, payload []byte) (walletd.Signature, error)
}

var (
	_ walletBackend = (*walletd.Client)(nil)
	_ walletBackend = (*walletd.Service)(nil)
)

// walletConn is the backend a command got: the daemon at --wallet-url when
// it answers, else the keystore under --home.
type walletConn struct {
	walletBackend
	daemon bool
	where  string // daemon URL or keystore directory
}

// errNeedsDaemon is returned by commands that only a running daemon can do.
var errNeedsDaemon = errors.New("needs the wallet daemon")

// daemonProbeTimeout bounds the check for a running daemon.
const daemonProbeTimeout = 2 * time.Second

// daemonAPIKey is the key for the daemon: AITBC_WALLET_API_KEY, else the
// key file the daemon keeps under --home.
func (g *Globals) daemonAPIKey() string {
	if k := os.Getenv(walletd.EnvAPIKey); k != "" {
		return k
	}
	k, _ := walletd.ReadAPIKey(g.Home)
	return k
}

// walletsOff reports whether --wallet-url disables the daemon.
func (g *Globals) walletsOff() bool {
	switch strings.ToLower(strings.TrimSpace(g.WalletURL)) {
	case "", "off", "none", "local":
		return true
	}
	return false
}

// wallets connects to the wallet daemon at --wallet-url, or, when nothing
// answers there, opens the keystore under --home with the node at --node.
// A daemon that answers but refuses the API key is an error, not a reason
// to fall back: the user meant that daemon.
func (g *Globals) wallets(ctx context.Context) (*walletConn, error) {
	if !g.walletsOff() {
		c := walletd.NewClient(g.WalletURL, g.daemonAPIKey())
		pctx, cancel := context.WithTimeout(ctx, daemonProbeTimeout)
		_, err := c.Health(pctx)
		cancel()
		if err == nil {
			var b walletBackend = c
			if k, err := os.ReadFile(walletd.ServiceKeyPath(g.Home)); err == nil && strings.TrimSpace(string(k)) != "" {
				b = &serviceFallback{Client: c, service: walletd.NewClient(g.WalletURL, strings.TrimSpace(string(k)))}
			}
			return &walletConn{walletBackend: b, daemon: true, where: g.WalletURL}, nil
		}
		if errors.Is(err, walletd.ErrUnauthorized) {
			return nil, fmt.Errorf("wallet daemon at %s refused the API key: use the daemon's --home, or set %s", g.WalletURL, walletd.EnvAPIKey)
		}
		var api *httpx.APIError
		if errors.As(err, &api) {
			return nil, fmt.Errorf("wallet daemon at %s: %w", g.WalletURL, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	ks, err := keystore.ForHome(g.Home)
	if err != nil {
		return nil, err
	}
	svc, err := walletd.NewService(walletd.ServiceConfig{Store: ks, Node: rpc.NewClient(g.Node)})
	if err != nil {
		return nil, err
	}
	return &walletConn{walletBackend: svc, where: ks.Path()}, nil
}

// client is the daemon client behind w, with the admin (or
// AITBC_WALLET_API_KEY's) key; false when w is the local keystore.
func (w *walletConn) client() (*walletd.Client, bool) {
	switch b := w.walletBackend.(type) {
	case *walletd.Client:
		return b, true
	case *serviceFallback:
		return b.Client, true
	}
	return nil, false
}

// serviceFallback is the daemon with two keys: the customer-facing one, and
// the key scoped to the service wallets that the devnet writes to
// walletd.ServiceKeyPath. The daemon refuses the first for a service
// wallet (service_wallet); the operator's CLI on the same home then uses
// the second, so `aitbc pool join --wallet devnet-miner-0` keeps working
// while other holders of the admin key cannot sign as the coordinator or a
// miner.
type serviceFallback struct {
	*walletd.Client
	service *walletd.Client
}

func viaService[T any](f *serviceFallback, call func(*walletd.Client) (T, error)) (T, error) {
	v, err := call(f.Client)
	if errors.Is(err, walletd.ErrServiceWallet) {
		return call(f.service)
	}
	return v, err
}

func (f *serviceFallback) Backup(ctx context.Context, name, password string) (walletd.Backup, error) {
	return viaService(f, func(c *walletd.Client) (walletd.Backup, error) { return c.Backup(ctx, name, password) })
}

func (f *serviceFallback) Unlock(ctx context.Context, name, password string, timeout time.Duration) (walletd.WalletInfo, error) {
	return viaService(f, func(c *walletd.Client) (walletd.WalletInfo, error) { return c.Unlock(ctx, name, password, timeout) })
}

func (f *serviceFallback) Lock(ctx context.Context, name string) (walletd.WalletInfo, error) {
	return viaService(f, func(c *walletd.Client) (walletd.WalletInfo, error) { return c.Lock(ctx, name) })
}

func (f *serviceFallback) Send(ctx context.Context, name, password string, to address.Address, amount, fee coin.Amount) (walletd.Submitted, error) {
	return viaService(f, func(c *walletd.Client) (walletd.Submitted, error) {
		return c.Send(ctx, name, password, to, amount, fee)
	})
}

func (f *serviceFallback) SignAndSubmit(ctx context.Context, name, password string, msg tx.Msg, fee coin.Amount) (walletd.Submitted, error) {
	return viaService(f, func(c *walletd.Client) (walletd.Submitted, error) {
		return c.SignAndSubmit(ctx, name, password, msg, fee)
	})
}

func (f *serviceFallback) SignMessage(ctx context.Context, name, password, domain string, payload []byte) (walletd.Signature, error) {
	return viaService(f, func(c *walletd.Client) (walletd.Signature, error) {
		return c.SignMessage(ctx, name, password, domain, payload)
	})
}

// explain adds what the user can do to the errors that need it.
func (w *walletConn) explain(g *Globals, name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, walletd.ErrLocked) && !w.daemon:
		return fmt.Errorf("wallet %q needs its password: give --password or set AITBC_PASSWORD (signing with an unlocked wallet needs the wallet daemon, and none answers at %s)", name, g.WalletURL)
	case errors.Is(err, walletd.ErrLocked):
		return fmt.Errorf("wallet %q is locked: give --password, set AITBC_PASSWORD, or run `aitbc wallet unlock --wallet %s` first", name, name)
	}
	return err
}

// secretSource says where a command reads a secret when no flag gives it.
type secretSource struct {
	flag    string // the flag's name, for messages
	prompt  string // shown on the terminal
	confirm bool   // ask twice (a new password)
}

// secret returns value, or reads it from the terminal without echo. It
// fails with a clear message when stdin is not a terminal.
func (g *Globals) secret(ctx context.Context, value string, src secretSource) (string, error) {
	if value != "" {
		return value, nil
	}
	f, ok := g.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		env := "AITBC_" + strings.ToUpper(strings.ReplaceAll(src.flag, "-", "_"))
		return "", usagef("--%s is required (or set %s; without either it is asked for on a terminal)", src.flag, env)
	}
	fmt.Fprint(g.stderr, src.prompt)
	v, err := readSecret(ctx, f)
	fmt.Fprintln(g.stderr)
	if err != nil {
		return "", fmt.Errorf("reading --%s: %w", src.flag, err)
	}
	if v == "" {
		return "", usagef("empty --%s", src.flag)
	}
	if src.confirm {
		fmt.Fprint(g.stderr, "Repeat it: ")
		again, err := readSecret(ctx, f)
		fmt.Fprintln(g.stderr)
		if err != nil {
			return "", fmt.Errorf("reading --%s: %w", src.flag, err)
		}
		if again != v {
			return "", usagef("the two entries of --%s differ", src.flag)
		}
	}
	return v, nil
}

// canPrompt reports whether stdin is a terminal.
func (g *Globals) canPrompt() bool {
	f, ok := g.stdin.(*os.File)
	return ok && isTerminal(f)
}

// signingPassword is the password for a signing command: the flag (or
// AITBC_PASSWORD), else none when the daemon holds the wallet unlocked,
// else a prompt on a terminal, else none (and the backend then answers
// that the wallet is locked).
func (g *Globals) signingPassword(ctx context.Context, w *walletConn, name, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if w.daemon {
		info, err := w.Get(ctx, name)
		if err != nil {
			return "", err
		}
		if info.Unlocked {
			return "", nil
		}
	}
	if g.canPrompt() {
		return g.secret(ctx, "", secretSource{flag: "password", prompt: fmt.Sprintf("Password for wallet %s: ", name)})
	}
	return "", nil
}

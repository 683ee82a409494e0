package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/walletd"
)

// Wallet commands: the seed forms `create`, `list`, `send`, `balance` at
// the top level, and `wallet ...` for all of them plus unlock, lock,
// backup, restore and the daemon itself.

func newWalletCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wallet",
		Short: "Manage wallets: create, list, send, balance, unlock, lock, backup, restore, daemon",
		Long: `Wallets are encrypted files under <home>/wallets. Commands use the wallet daemon
when one answers at --wallet-url (it holds unlocked wallets), and otherwise open
the keystore under --home directly and reach the node at --node.`,
	}
	cmd.AddCommand(
		newCreateCmd(g), newListCmd(g), newSendCmd(g), newBalanceCmd(g),
		newWalletShowCmd(g), newUnlockCmd(g), newLockCmd(g), newBackupCmd(g), newRestoreCmd(g),
		newWalletDaemonCmd(g),
	)
	return cmd
}

// walletFlag defines --wallet, the wallet a command works on, with the
// seeds' spelling --name as an alias (aitbc-cli create --name wallet1).
func walletFlag(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVar(p, "wallet", "", usage+" (alias --name)")
	aliasFlag(cmd, "name", "wallet")
}

func requireName(flag, v string) error {
	if v == "" {
		return usagef("--%s is required", flag)
	}
	return nil
}

func newCreateCmd(g *Globals) *cobra.Command {
	var name, password string
	cmd := &cobra.Command{
		Use:     "create",
		Short:   "Create a wallet with a new 24-word recovery phrase",
		Example: "  aitbc create --name customer-1 --password 123",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("wallet", name); err != nil {
				return err
			}
			ctx := cmd.Context()
			pw, err := g.secret(ctx, password, secretSource{flag: "password", prompt: "New password for wallet " + name + ": ", confirm: true})
			if err != nil {
				return err
			}
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			info, err := w.Create(ctx, name, pw)
			if err != nil {
				return err
			}
			if !g.JSON() {
				fmt.Fprintf(g.stderr, "Created wallet %s. Write down its recovery phrase: aitbc wallet backup --wallet %s\n", name, name)
			}
			// A wallet daemon refuses short passwords itself (outside a
			// devnet); a local keystore is the user's own file, so the
			// CLI warns instead of refusing: the seeds' devnet flows use
			// "123", and a devnet's keys guard no real money.
			if !w.daemon && utf8.RuneCountInString(pw) < walletd.DefaultMinPasswordLength {
				fmt.Fprintf(g.stderr, "warning: a password of %d characters protects wallet %s's key file (%s) poorly against guessing if the file is copied; use at least %d for a wallet that will hold real money\n",
					utf8.RuneCountInString(pw), name, w.where, walletd.DefaultMinPasswordLength)
			}
			return g.Print(info, func(out io.Writer) { fmt.Fprintf(out, "%s: %s\n", info.Name, info.Address) })
		},
	}
	walletFlag(cmd, &name, "wallet name (letters, digits, '.', '_', '-')")
	cmd.Flags().StringVar(&password, "password", "", "password that encrypts the wallet (or AITBC_PASSWORD; asked on a terminal)")
	return cmd
}

func newListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   `List wallets, one "name: address" per line`,
		Example: `  aitbc list | grep "customer-1:" | cut -d" " -f2`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			list, err := w.List(ctx)
			if err != nil {
				return err
			}
			if list == nil {
				list = []walletd.WalletInfo{}
			}
			return g.Print(list, func(out io.Writer) {
				for _, i := range list {
					fmt.Fprintf(out, "%s: %s\n", i.Name, i.Address)
				}
			})
		},
	}
}

// sendResult is what send prints with --output json.
type sendResult struct {
	walletd.Submitted
	Committed *rpc.Transaction `json:"committed,omitempty"`
}

func newSendCmd(g *Globals) *cobra.Command {
	var from, to, amount, fee, password, asset string
	var wait bool
	var waitTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "send",
		Short: "Send AITBC from a wallet; prints the transaction hash",
		Example: `  aitbc send --from genesis-ops --to aitbc1... --amount 1000 --password 123
  aitbc send --from genesis-ops --to aitbc1... --amount 0.5 --wait
  aitbc send --from alice --to aitbc1... --amount 0.001 --asset btc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("from", from); err != nil {
				return err
			}
			if to == "" {
				return usagef("--to is required")
			}
			if amount == "" {
				return usagef("--amount is required")
			}
			toAddr, err := address.Parse(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			ctx := cmd.Context()
			var amt coin.Amount
			if asset != "" && asset != bank.Native {
				// Another denomination: its decimals come from the node.
				d, derr := denomOf(ctx, g, asset)
				if derr != nil {
					return derr
				}
				amt, err = bank.ParseUnits(strings.TrimSpace(amount), d.Decimals)
			} else {
				amt, err = coin.Parse(strings.TrimSpace(amount))
			}
			if err != nil {
				return fmt.Errorf("--amount: %w", err)
			}
			if amt == 0 {
				return fmt.Errorf("--amount: %w: must be positive", coin.ErrInvalid)
			}
			var feeAmt coin.Amount
			if fee != "" {
				if feeAmt, err = coin.Parse(strings.TrimSpace(fee)); err != nil {
					return fmt.Errorf("--fee: %w", err)
				}
			}
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			pw, err := g.signingPassword(ctx, w, from, password)
			if err != nil {
				return w.explain(g, from, err)
			}
			var res walletd.Submitted
			if asset != "" && asset != bank.Native {
				res, err = w.SignAndSubmit(ctx, from, pw, bank.NewSendDenomMsg(toAddr, asset, amt), feeAmt)
			} else {
				res, err = w.Send(ctx, from, pw, toAddr, amt, feeAmt)
			}
			if err != nil {
				return w.explain(g, from, err)
			}
			out := sendResult{Submitted: res}
			if wait {
				if !g.JSON() {
					fmt.Fprintf(g.stderr, "submitted %s, waiting for a block...\n", res.TxHash)
				}
				wctx, cancel := context.WithTimeout(ctx, waitTimeout)
				defer cancel()
				t, err := rpc.NewClient(g.Node).WaitTx(wctx, res.TxHash, 200*time.Millisecond)
				if err != nil {
					return fmt.Errorf("transaction %s submitted, but: %w", res.TxHash, err)
				}
				if t.Status != "committed" {
					return fmt.Errorf("transaction %s %s: %s", res.TxHash, t.Status, t.Error)
				}
				out.Committed = &t
				if !g.JSON() {
					fmt.Fprintf(g.stderr, "committed in block %d\n", t.Height)
				}
			}
			return g.Print(out, func(o io.Writer) { fmt.Fprintln(o, res.TxHash) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "wallet to send from")
	f.StringVar(&to, "to", "", "recipient address (aitbc1...)")
	f.StringVar(&amount, "amount", "", "amount in AITBC (up to 6 decimals), or of --asset (btc: up to 8)")
	f.StringVar(&asset, "asset", bank.Native, "denomination to send: aitbc, or a bridged asset such as btc (the fee is always AITBC)")
	f.StringVar(&fee, "fee", "", "fee in AITBC (default: the chain's minimum)")
	f.StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD; not needed while the daemon holds the wallet unlocked)")
	f.DurationVar(&waitTimeout, "wait-timeout", time.Minute, "how long --wait waits")
	waitBoolFlag(f, &wait, &waitTimeout, "wait until the transaction is committed (--wait=30s: and at most that long)")
	return cmd
}

func newBalanceCmd(g *Globals) *cobra.Command {
	var name, addr string
	cmd := &cobra.Command{
		Use:   "balance",
		Short: "Show the balance of a wallet or an address",
		Example: `  aitbc balance --name customer-1
  aitbc balance --address aitbc1...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name != "" && addr != "" {
				return usagef("give --wallet or --address, not both")
			}
			if name == "" && addr == "" {
				return usagef("--wallet or --address is required")
			}
			var a address.Address
			if addr != "" {
				var err error
				if a, err = address.Parse(addr); err != nil {
					return fmt.Errorf("--address: %w", err)
				}
			}
			ctx := cmd.Context()
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			var b walletd.Balance
			label := name
			if addr != "" {
				b, err = w.BalanceOf(ctx, a)
				label = a.String()
			} else {
				b, err = w.Balance(ctx, name)
			}
			if err != nil {
				return w.explain(g, name, err)
			}
			out := balanceWithAssets{Balance: b}
			if other, err := otherAssets(ctx, g, b.Address); err != nil {
				fmt.Fprintf(g.stderr, "other assets unknown: %v\n", err)
			} else if len(other) > 0 {
				out.Assets = other
			}
			return g.Print(out, func(o io.Writer) {
				fmt.Fprintf(o, "%s: %s %s\n", label, b.Amount, coin.Denom)
				for _, a := range out.Assets {
					fmt.Fprintf(o, "%s: %s %s\n", label, a.Amount, strings.ToUpper(a.Denom))
				}
			})
		},
	}
	walletFlag(cmd, &name, "wallet name")
	cmd.Flags().StringVar(&addr, "address", "", "account address (aitbc1...)")
	return cmd
}

func newWalletShowCmd(g *Globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "show",
		Short:   "Show a wallet's address and whether the daemon holds it unlocked",
		Example: "  aitbc wallet show --wallet customer-1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("wallet", name); err != nil {
				return err
			}
			ctx := cmd.Context()
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			info, err := w.Get(ctx, name)
			if err != nil {
				return err
			}
			return g.Print(info, func(o io.Writer) {
				fmt.Fprintf(o, "name      %s\naddress   %s\ncreated   %s\n", info.Name, info.Address, info.Created.Format(time.RFC3339))
				if info.UnlockedUntil != nil {
					fmt.Fprintf(o, "unlocked  until %s\n", info.UnlockedUntil.Local().Format(time.RFC3339))
				} else {
					fmt.Fprintln(o, "unlocked  no")
				}
			})
		},
	}
	walletFlag(cmd, &name, "wallet name")
	return cmd
}

func newUnlockCmd(g *Globals) *cobra.Command {
	var name, password string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Have the wallet daemon hold a wallet's key, so signing needs no password until the timeout",
		Example: `  aitbc wallet unlock --wallet customer-1 --timeout 15m
  aitbc send --from customer-1 --to aitbc1... --amount 5      # no password needed now`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("wallet", name); err != nil {
				return err
			}
			if timeout <= 0 || timeout > walletd.MaxUnlockTimeout {
				return usagef("--timeout must be between 0 and %v", walletd.MaxUnlockTimeout)
			}
			ctx := cmd.Context()
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			if !w.daemon {
				return fmt.Errorf("wallet unlock %w: no wallet daemon answers at %s (start one with `aitbc wallet daemon` or `aitbc devnet`)", errNeedsDaemon, g.WalletURL)
			}
			pw, err := g.secret(ctx, password, secretSource{flag: "password", prompt: "Password for wallet " + name + ": "})
			if err != nil {
				return err
			}
			info, err := w.Unlock(ctx, name, pw, timeout)
			if err != nil {
				return err
			}
			return g.Print(info, func(o io.Writer) {
				fmt.Fprintf(o, "%s unlocked until %s\n", info.Name, info.UnlockedUntil.Local().Format(time.RFC3339))
			})
		},
	}
	walletFlag(cmd, &name, "wallet name")
	cmd.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD; asked on a terminal)")
	cmd.Flags().DurationVar(&timeout, "timeout", walletd.DefaultUnlockTimeout, "how long the daemon keeps the key")
	return cmd
}

func newLockCmd(g *Globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "lock",
		Short:   "Have the wallet daemon forget a wallet's unlocked key",
		Example: "  aitbc wallet lock --wallet customer-1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("wallet", name); err != nil {
				return err
			}
			ctx := cmd.Context()
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			if !w.daemon {
				return fmt.Errorf("wallet lock %w: no wallet daemon answers at %s, so no wallet is unlocked", errNeedsDaemon, g.WalletURL)
			}
			info, err := w.Lock(ctx, name)
			if err != nil {
				return err
			}
			return g.Print(info, func(o io.Writer) { fmt.Fprintf(o, "%s locked\n", info.Name) })
		},
	}
	walletFlag(cmd, &name, "wallet name")
	return cmd
}

func newBackupCmd(g *Globals) *cobra.Command {
	var name, password string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Print a wallet's 24-word recovery phrase (asks for the password)",
		Long: `Prints the wallet's BIP-39 recovery phrase. Anyone who has it can spend the
wallet's funds: write it on paper, keep it offline, never paste it into chats.`,
		Example: "  aitbc wallet backup --wallet customer-1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("wallet", name); err != nil {
				return err
			}
			ctx := cmd.Context()
			pw, err := g.secret(ctx, password, secretSource{flag: "password", prompt: "Password for wallet " + name + ": "})
			if err != nil {
				return err
			}
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			b, err := w.Backup(ctx, name, pw)
			if err != nil {
				return err
			}
			if !g.JSON() {
				fmt.Fprintf(g.stderr, "Recovery phrase of %s (%s). Anyone with these words can spend its funds:\n", b.Name, b.Address)
			}
			return g.Print(b, func(o io.Writer) { fmt.Fprintln(o, b.Mnemonic) })
		},
	}
	walletFlag(cmd, &name, "wallet name")
	cmd.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD; asked on a terminal)")
	return cmd
}

func newRestoreCmd(g *Globals) *cobra.Command {
	var name, mnemonic, password string
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Recreate a wallet from its recovery phrase (same address as before)",
		Example: `  aitbc wallet restore --wallet customer-1 --mnemonic "word1 word2 ... word24" --password 123
  aitbc wallet restore --wallet customer-1     # asks for the phrase and a password on the terminal`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireName("wallet", name); err != nil {
				return err
			}
			ctx := cmd.Context()
			m, err := g.secret(ctx, mnemonic, secretSource{flag: "mnemonic", prompt: "Recovery phrase (12-24 words): "})
			if err != nil {
				return err
			}
			pw, err := g.secret(ctx, password, secretSource{flag: "password", prompt: "New password for wallet " + name + ": ", confirm: true})
			if err != nil {
				return err
			}
			w, err := g.wallets(ctx)
			if err != nil {
				return err
			}
			info, err := w.Restore(ctx, name, m, pw)
			if err != nil {
				return err
			}
			return g.Print(info, func(o io.Writer) { fmt.Fprintf(o, "%s: %s\n", info.Name, info.Address) })
		},
	}
	walletFlag(cmd, &name, "name for the restored wallet")
	cmd.Flags().StringVar(&mnemonic, "mnemonic", "", "the recovery phrase (or AITBC_MNEMONIC; asked on a terminal)")
	cmd.Flags().StringVar(&password, "password", "", "password that encrypts the wallet (or AITBC_PASSWORD; asked on a terminal)")
	return cmd
}

func newWalletDaemonCmd(g *Globals) *cobra.Command {
	var listen, apiKey, defWallet, logLevel string
	var minPassword int
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the wallet daemon (HTTP API on 127.0.0.1:8002) until interrupted",
		Long: `Serves the wallets under --home over HTTP, signing with the node at --node. Every
request needs the API key in the X-API-Key header: --api-key, else
AITBC_WALLET_API_KEY, else the key in <home>/wallet/api-key (made on first start),
which the CLI on the same --home reads by itself.`,
		Example: `  aitbc wallet daemon
  curl http://127.0.0.1:8002/api/v1/wallet/balance?name=genesis-ops -H "X-API-Key: $(cat ~/.aitbc/wallet/api-key)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level: %v", err)
			}
			if apiKey == "" {
				apiKey = os.Getenv(walletd.EnvAPIKey)
			}
			log := g.logger(level)
			keyFrom := walletd.APIKeyPath(g.Home)
			if apiKey != "" {
				keyFrom = "--api-key / " + walletd.EnvAPIKey
			}
			return system.Run(cmd.Context(), system.Config{Log: log, Wallet: &system.WalletConfig{Config: walletd.Config{
				Home: g.Home, Listen: listen, APIKey: apiKey, Node: g.serviceNode(log),
				DefaultWallet: defWallet, Logger: log, MinPasswordLength: minPassword, Limits: g.httpLimits(),
			}}}, func(s *system.System) error {
				w := s.Wallet
				w.Service().SetPasswordGrace(walletd.PasswordGraceFromEnv(walletd.DefaultPasswordGrace)) // see walletd/grace.go
				info := map[string]string{"url": w.URL(), "wallets": w.Service().Store().Path(), "api_key_from": keyFrom, "node": g.Node}
				return g.Print(info, func(o io.Writer) {
					fmt.Fprintf(o, "wallet daemon on %s (wallets in %s, API key from %s, node %s)\n", w.URL(), info["wallets"], keyFrom, g.Node)
				})
			})
		},
	}
	cmd.AddCommand(newDaemonKeyCmd(g))
	f := cmd.Flags()
	f.StringVar(&listen, "listen", walletd.DefaultListen, "address to serve on (keep it on loopback)")
	f.StringVar(&apiKey, "api-key", "", "API key clients must send (default: "+walletd.EnvAPIKey+", else <home>/wallet/api-key)")
	f.StringVar(&defWallet, "default-wallet", "", "wallet that GET /api/v1/wallet/balance reports when none is named")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.IntVar(&minPassword, "min-password-length", walletd.DefaultMinPasswordLength, "fewest characters a new wallet's password may have (0: any, as on a devnet)")
	// Not AITBC_API_KEY: that is the coordinator key every other command sends.
	setEnvName(f, "api-key", walletd.EnvAPIKey)
	return withConfig(cmd, config.Wallet)
}

// balanceWithAssets is the balance command's answer: the wallet daemon's
// AITBC balance and the account's non-zero balances of other
// denominations (btc), read from the node.
type balanceWithAssets struct {
	walletd.Balance
	Assets []assetBalance `json:"assets,omitempty"`
}

// assetBalance is a balance of another denomination: Amount in its
// decimal unit ("0.5" BTC), Units in base units (satoshis).
type assetBalance struct {
	Denom  string `json:"denom"`
	Amount string `json:"amount"`
	Units  uint64 `json:"units"`
}

// otherAssets returns a's non-zero balances of denominations other than
// AITBC.
func otherAssets(ctx context.Context, g *Globals, a address.Address) ([]assetBalance, error) {
	dv, err := bank.QueryDenoms(ctx, g.node())
	if err != nil {
		return nil, err
	}
	bv, err := bank.QueryBalances(ctx, g.node(), a)
	if err != nil {
		return nil, err
	}
	var out []assetBalance
	for _, d := range dv.Denoms {
		if u := bv.Balances[d.Name]; d.Name != bank.Native && u != 0 {
			out = append(out, assetBalance{Denom: d.Name, Amount: bank.FormatUnits(coin.Amount(u), d.Decimals), Units: u})
		}
	}
	return out, nil
}

// denomOf returns the node's denomination called name.
func denomOf(ctx context.Context, g *Globals, name string) (bank.DenomView, error) {
	dv, err := bank.QueryDenoms(ctx, g.node())
	if err != nil {
		return bank.DenomView{}, err
	}
	for _, d := range dv.Denoms {
		if d.Name == name {
			return d, nil
		}
	}
	return bank.DenomView{}, usagef("--asset %q: the chain has no such denomination", name)
}

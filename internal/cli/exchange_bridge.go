package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/rpcclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/bridge"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	cb "github.com/aitbc/aitbc/internal/chain/modules/bridge"
	"github.com/aitbc/aitbc/internal/chain/tx"
	"github.com/aitbc/aitbc/internal/devnet"
	"github.com/aitbc/aitbc/internal/httpx"
)

// exchangeBridgeCmds are the Bitcoin bridge's exchange subcommands
// (docs/BRIDGE.md), added by the exchange's parent command
// (exchange.go) after the order book's.
func exchangeBridgeCmds(g *Globals) []*cobra.Command {
	return []*cobra.Command{newDepositAddressCmd(g), newDepositsCmd(g), newWithdrawBTCCmd(g), newWithdrawalsCmd(g), newReservesCmd(g), newBTCFaucetCmd(g), newBridgeDaemonCmd(g)}
}

func checkAsset(asset string) error {
	if asset != cb.Denom {
		return usagef("--asset %q: the bridge carries btc only", asset)
	}
	return nil
}

func (g *Globals) submitter(wallet, password string) bridge.Submitter {
	return func(ctx context.Context, msg tx.Msg) (string, error) { return g.submit(ctx, wallet, password, msg) }
}

func newDepositAddressCmd(g *Globals) *cobra.Command {
	var asset, wallet, password string
	cmd := &cobra.Command{
		Use:   "deposit-address",
		Short: "The wallet's own Bitcoin deposit address: BTC sent to it is minted as btc on AITBC after N confirmations",
		Long: `Shows the wallet's Bitcoin deposit address, asking the chain for one the
first time (a bridge/address transaction the wallet signs). Each account has
its own address, an m-of-n P2WSH of the bridge operators' keys; BTC paid to it is
minted to the satoshi as btc once the deposit has the bridge's confirmations
(1 on a devnet).`,
		Example: `  aitbc exchange deposit-address --asset btc --wallet alice
  aitbc exchange deposit-address --asset btc --wallet alice -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := checkAsset(asset); err != nil {
				return err
			}
			acct, err := g.walletAddress(ctx, wallet)
			if err != nil {
				return err
			}
			node := g.node()
			v, err := cb.Query(ctx, node)
			if err != nil {
				return err
			}
			if !v.Enabled {
				return cb.ErrDisabled
			}
			a, err := bridge.DepositAddress(ctx, node, g.submitter(wallet, password), acct)
			if err != nil {
				return err
			}
			// uri is BIP 21's form, what wallets and QR codes take
			out := map[string]any{"asset": asset, "account": a.Account, "address": a.Address, "uri": "bitcoin:" + a.Address, "index": a.Index,
				"network": v.Params.Network, "confirmations": v.Params.Confirmations, "min_deposit_sat": v.Params.MinDepositSat}
			return g.Print(out, func(w io.Writer) {
				fmt.Fprintln(w, a.Address)
				fmt.Fprintf(w, "Send BTC (%s) to it: minted as btc to %s after %d confirmation(s); deposits under %d sat are not minted.\n",
					v.Params.Network, a.Account, v.Params.Confirmations, v.Params.MinDepositSat)
			})
		},
	}
	cmd.Flags().StringVar(&asset, "asset", cb.Denom, "asset to deposit (btc)")
	cmd.Flags().StringVar(&wallet, "wallet", "genesis-ops", "wallet whose deposit address it is")
	cmd.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD), to ask for the address the first time")
	_ = cmd.RegisterFlagCompletionFunc("wallet", func(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return g.completeWallets(c)
	})
	return cmd
}

func newWithdrawBTCCmd(g *Globals) *cobra.Command {
	var asset, amount, to, wallet, password string
	cmd := &cobra.Command{
		Use:   "withdraw",
		Short: "Burn btc on AITBC and have the bridge pay the BTC to a Bitcoin address, once",
		Long: `Burns --amount btc from the wallet and records a withdrawal; the bridge's
daemon pays the amount less the bridge's withdrawal fee (Bitcoin's miners' fee)
to --to on Bitcoin, once, and records the payment's txid on chain. The address
must be one of the bridge's Bitcoin network (bcrt1... on a devnet), the amount at
least the bridge's minimum and not more than the wallet holds.`,
		Example: `  aitbc exchange withdraw --asset btc --amount 0.25 --to bcrt1q... --wallet alice
  aitbc exchange withdraw --asset btc --amount 0.0001 --to tb1q... --wallet alice -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := checkAsset(asset); err != nil {
				return err
			}
			if to == "" {
				return usagef("--to (a Bitcoin address) is required")
			}
			sat, err := bank.ParseUnits(strings.TrimSpace(amount), 8)
			if err != nil || sat == 0 {
				return usagef("--amount must be a positive amount of BTC (up to 8 decimals), not %q", amount)
			}
			acct, err := g.walletAddress(ctx, wallet)
			if err != nil {
				return err
			}
			w, h, err := bridge.Withdraw(ctx, g.node(), g.submitter(wallet, password), acct, to, uint64(sat))
			if err != nil {
				return err
			}
			out := map[string]any{"tx_hash": h, "withdrawal": w}
			return g.Print(out, func(out io.Writer) {
				fmt.Fprintf(out, "withdrawal %d: %s BTC burned; %s BTC to %s once the bridge pays (fee %d sat)\n", w.ID,
					bank.FormatUnits(sat, 8), bank.FormatUnits(coinSat(w.Payout), 8), w.To, w.Fee)
				fmt.Fprintln(out, h)
			})
		},
	}
	cmd.Flags().StringVar(&asset, "asset", cb.Denom, "asset to withdraw (btc)")
	cmd.Flags().StringVar(&amount, "amount", "", "BTC to withdraw (required), e.g. 0.25")
	cmd.Flags().StringVar(&to, "to", "", "Bitcoin address to pay (required)")
	cmd.Flags().StringVar(&wallet, "wallet", "genesis-ops", "wallet that burns its btc")
	cmd.Flags().StringVar(&password, "password", "", "wallet password (or AITBC_PASSWORD)")
	_ = cmd.RegisterFlagCompletionFunc("wallet", func(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return g.completeWallets(c)
	})
	return cmd
}

// ErrReservesShort is a reserves check that failed.
var ErrReservesShort = errors.New("bridge reserves do not cover the btc on AITBC")

func newReservesCmd(g *Globals) *cobra.Command {
	var btcRPC string
	cmd := &cobra.Command{
		Use:   "reserves",
		Short: "BTC the bridge holds on Bitcoin against btc on AITBC (fails when short)",
		Long: `Sums the Bitcoin outputs the chain's records point at — every minted deposit
and the change of every paid withdrawal — as the Bitcoin node sees them now, and
compares them with the btc supply on AITBC plus the withdrawals being paid. It
reads the chain and the Bitcoin node only, not the bridge's daemon. --btc-rpc
defaults to a running devnet's regtest node (<home>/btc/rpc-url).`,
		Example: `  aitbc exchange reserves
  aitbc exchange reserves --btc-rpc http://user:pass@127.0.0.1:18334 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if btcRPC == "" {
				b, err := os.ReadFile(devnet.BTCRPCFile(g.Home))
				if err != nil {
					return usagef("--btc-rpc is required (no running devnet --btc at %s)", g.Home)
				}
				btcRPC = strings.TrimSpace(string(b))
			}
			c, err := bridge.DialBTC(btcRPC)
			if err != nil {
				return usagef("%v", err)
			}
			defer c.Shutdown()
			r, err := bridge.Reserves(ctx, g.node(), c)
			if err != nil {
				return err
			}
			if err := g.Print(r, func(w io.Writer) {
				fmt.Fprintf(w, "reserve:  %s BTC in %d outputs (%s)\n", bank.FormatUnits(coinSat(uint64(r.ReserveSat)), 8), r.Outputs, r.Network)
				fmt.Fprintf(w, "supply:   %s btc on AITBC\n", bank.FormatUnits(coinSat(r.SupplySat), 8))
				fmt.Fprintf(w, "pending:  %s BTC of withdrawals being paid\n", bank.FormatUnits(coinSat(r.PendingSat), 8))
				if r.Halted != "" {
					fmt.Fprintf(w, "HALTED:   %s\n", r.Halted)
				}
				if r.OK {
					fmt.Fprintln(w, "ok")
				}
			}); err != nil {
				return err
			}
			if !r.OK {
				return fmt.Errorf("%w: %s", ErrReservesShort, r.Detail)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&btcRPC, "btc-rpc", "", "Bitcoin node RPC URL, http://user:password@host:port (default: the devnet's regtest node)")
	return cmd
}

// coinSat is satoshis as the bank's base units of btc.
func coinSat(sat uint64) coin.Amount { return coin.Amount(sat) }

func newBTCFaucetCmd(g *Globals) *cobra.Command {
	var to, amount string
	cmd := &cobra.Command{
		Use:   "btc-faucet",
		Short: "Pay regtest BTC from a devnet's test Bitcoin wallet (aitbc devnet --btc) to an address",
		Long: `Pays --amount BTC to --to from the test Bitcoin wallet of the devnet --btc running
at --home (its regtest node mines the coins to that wallet), so that a deposit
can be made locally; the devnet mines the payment within a second or two.`,
		Example: `  aitbc exchange btc-faucet --to $(aitbc exchange deposit-address --asset btc --wallet alice -o json | jq -r .address) --amount 0.5
  aitbc exchange btc-faucet --to bcrt1q... --amount 0.01 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sat, err := bank.ParseUnits(strings.TrimSpace(amount), 8)
			if err != nil || sat == 0 {
				return usagef("--amount must be a positive amount of BTC (up to 8 decimals), not %q", amount)
			}
			if to == "" {
				return usagef("--to (a regtest Bitcoin address) is required")
			}
			txid, err := devnet.PayTestBTC(cmd.Context(), g.Home, to, int64(sat))
			if err != nil {
				return err
			}
			return g.Print(map[string]any{"txid": txid, "to": to, "amount_sat": uint64(sat)}, func(w io.Writer) { fmt.Fprintln(w, txid) })
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "regtest Bitcoin address to pay (required)")
	cmd.Flags().StringVar(&amount, "amount", "", "BTC to pay (required), e.g. 0.5")
	return cmd
}

func newBridgeDaemonCmd(g *Globals) *cobra.Command {
	var f struct {
		btcRPC, xprvFile, state, wallet, password, listen, logLevel string
		start                                                       int64
		poll                                                        time.Duration
	}
	cmd := &cobra.Command{
		Use:   "bridge-daemon",
		Short: "Run the Bitcoin bridge's daemon: attest deposits, pay withdrawals once, halt on a deep reorganisation",
		Long: `Runs the bridge's daemon against a Bitcoin node (--btc-rpc: regtest, testnet or
mainnet, as the chain's bridge parameters name the network) and the AITBC node
(--node), as one operator: its AITBC wallet (--wallet, through the wallet
daemon) and its own Bitcoin key (--xprv-file: the account-level extended private
key, BIP 48 m/48'/coin'/0'/2', whose xpub the genesis lists for that operator).
The bridge's bitcoin sits in m-of-n P2WSH outputs of all operators' keys: the
daemon attests deposits, proposes payouts when it is its turn, checks and signs
the others' proposals, and broadcasts and records a payout once m operators
signed it on chain. Its progress, and each assembled payout before it is
broadcast, is kept in --state-file; the payout's txid is fixed on chain, so a
restart never pays twice. aitbc devnet --btc runs one per operator itself.`,
		Example: `  aitbc exchange bridge-daemon --btc-rpc http://user:pass@127.0.0.1:18332 --xprv-file bridge.xprv --wallet bridge-op-1 --start-height 2500000
  aitbc exchange bridge-daemon --btc-rpc http://user:pass@127.0.0.1:18443 --xprv-file bridge.xprv --wallet bridge-op-1 --listen 127.0.0.1:8019 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.btcRPC == "" || f.xprvFile == "" || f.wallet == "" {
				return usagef("--btc-rpc, --xprv-file and --wallet are required")
			}
			log, err := g.newLogger(f.logLevel)
			if err != nil {
				return err
			}
			raw, err := os.ReadFile(f.xprvFile)
			if err != nil {
				return err
			}
			c, err := bridge.DialBTC(f.btcRPC)
			if err != nil {
				return usagef("%v", err)
			}
			defer c.Shutdown()
			if f.state == "" {
				f.state = filepath.Join(g.Home, "bridge", "state.json")
			}
			reg := prometheus.NewRegistry()
			d, err := bridge.New(ctx, bridge.Config{XPrv: strings.TrimSpace(string(raw)), StateFile: f.state, StartHeight: f.start, Poll: f.poll,
				BTC: c, Chain: g.node(), Operator: senderFunc(g.submitter(f.wallet, f.password)), Registry: reg, Log: log})
			if err != nil {
				return err
			}
			if f.listen != "" && f.listen != "off" {
				ln, err := net.Listen("tcp", f.listen)
				if err != nil {
					return err
				}
				srv := httpx.NewServer(d.Handler(reg), httpx.Limits{}, nil)
				go func() { _ = srv.Serve(ln) }()
				defer srv.Close()
				log.Info("bridge daemon status", "url", "http://"+ln.Addr().String()+"/api/v1/bridge/status")
			}
			return d.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.btcRPC, "btc-rpc", "", "Bitcoin node RPC URL, http://user:password@host:port (required)")
	fl.StringVar(&f.xprvFile, "xprv-file", "", "file holding this operator's account-level Bitcoin extended private key (required)")
	fl.StringVar(&f.state, "state-file", "", "the daemon's state (default <home>/bridge/state.json)")
	fl.StringVar(&f.wallet, "wallet", "", "the operator's wallet that signs attestations, payout proposals, signature shares and payment records (required)")
	fl.StringVar(&f.password, "password", "", "its password (or AITBC_PASSWORD)")
	fl.Int64Var(&f.start, "start-height", 0, "Bitcoin height before the bridge's first deposit: a fresh state reads from the block after it")
	fl.DurationVar(&f.poll, "poll", 5*time.Second, "how often to look at Bitcoin and the chain")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8019", "status and metrics address (off: none)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// senderFunc adapts a Submitter to the daemon's Sender.
type senderFunc bridge.Submitter

func (s senderFunc) Send(ctx context.Context, msg tx.Msg) (string, error) { return s(ctx, msg) }

func newBenchBridgeCmd(g *Globals) *cobra.Command {
	var b devnet.BridgeBench
	cmd := &cobra.Command{
		Use:   "bridge",
		Short: "Time from a Bitcoin deposit's Nth confirmation to its btc minted on AITBC (a throwaway devnet --btc)",
		Example: `  aitbc bench bridge
  aitbc bench bridge --deposits 20 --confirmations 1 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !g.JSON() {
				b.Progress = g.Stderr()
			}
			r, err := devnet.BenchBridge(cmd.Context(), b)
			if err != nil {
				return err
			}
			return g.Print(r, func(w io.Writer) {
				fmt.Fprintf(w, "deposit to mint  median %s, p90 %s, max %s over %d deposits (N = %d)\n", r.Median.Round(time.Millisecond),
					r.P90.Round(time.Millisecond), r.Max.Round(time.Millisecond), r.Deposits, r.Confirmations)
				fmt.Fprintf(w, "method           %s\n", r.Method)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&b.Deposits, "deposits", 10, "deposits to time")
	f.Int64Var(&b.Confirmations, "confirmations", 1, "the bridge's N")
	f.DurationVar(&b.BlockTime, "block-time", time.Second, "AITBC block time")
	f.DurationVar(&b.Poll, "poll", 200*time.Millisecond, "the bridge daemon's poll interval")
	return cmd
}

// auditReserves adds the bridge's reserves to an audit when a devnet --btc
// runs at --home (its regtest node's RPC URL in <home>/btc/rpc-url): the
// bitcoin the chain's records point at must cover the btc supply. On other
// networks `aitbc exchange reserves --btc-rpc URL` is the check.
func (g *Globals) auditReserves(ctx context.Context, au module.Audit) module.Audit {
	raw, err := os.ReadFile(devnet.BTCRPCFile(g.Home))
	if err != nil {
		return au
	}
	v, err := cb.Query(ctx, g.node())
	if err != nil || !v.Enabled {
		return au
	}
	in := module.AuditInvariant{Name: "bridge/reserves", OK: true}
	c, err := bridge.DialBTC(strings.TrimSpace(string(raw)))
	if err == nil {
		defer c.Shutdown()
		var r bridge.ReserveReport
		if r, err = bridge.Reserves(ctx, g.node(), c); err == nil {
			in.OK, in.Detail = r.OK, r.Detail
			in.Figures = map[string]string{"reserve_sat": strconv.FormatInt(r.ReserveSat, 10), "btc_supply_sat": strconv.FormatUint(r.SupplySat, 10),
				"pending_withdrawals_sat": strconv.FormatUint(r.PendingSat, 10)}
			if r.Halted != "" {
				in.Detail += "; the bridge is halted: " + r.Halted
			}
		}
	}
	if err != nil {
		// the Bitcoin node does not answer (a devnet stopped uncleanly left
		// its URL behind): say so rather than fail the chain's own audit
		in.Detail = "not checked: " + err.Error()
	}
	au.Invariants = append(au.Invariants, in)
	au.OK = au.OK && in.OK
	return au
}

// btcClient is the Bitcoin node of --btc-rpc, or of the devnet --btc at
// --home, or nil when there is neither.
func (g *Globals) btcClient(flag string) (*rpcclient.Client, error) {
	if flag == "" {
		raw, err := os.ReadFile(devnet.BTCRPCFile(g.Home))
		if err != nil {
			return nil, nil
		}
		flag = strings.TrimSpace(string(raw))
	}
	c, err := bridge.DialBTC(flag)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

func newDepositsCmd(g *Globals) *cobra.Command {
	var asset, wallet, btcRPC string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "deposits",
		Short: "The wallet's BTC deposits and how far along each is: mempool, confirming (k of N), minted",
		Long: `Lists the deposits to the wallet's deposit address: those the chain has minted
or is attesting, and — with a Bitcoin node (--btc-rpc, or a running devnet --btc) —
those still in Bitcoin's mempool or short of the bridge's confirmations. With
--wait it follows them, printing each change, until none is pending.`,
		Example: `  aitbc exchange deposits --asset btc --wallet alice
  aitbc exchange deposits --asset btc --wallet alice --wait 5m -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := checkAsset(asset); err != nil {
				return err
			}
			acct, err := g.walletAddress(ctx, wallet)
			if err != nil {
				return err
			}
			c, err := g.btcClient(btcRPC)
			if err != nil {
				return err
			}
			var btc bridge.BlockReader
			if c != nil {
				defer c.Shutdown()
				btc = c
			}
			deadline := time.Now().Add(wait)
			last := ""
			for {
				list, err := bridge.AccountDeposits(ctx, g.node(), btc, acct, 0)
				if err != nil {
					return err
				}
				pending := false
				var b strings.Builder
				for _, d := range list {
					pending = pending || d.Status == "mempool" || d.Status == "confirming"
					fmt.Fprintf(&b, "%s  %s BTC  %-13s %d/%d confirmations\n", d.Outpoint, bank.FormatUnits(coinSat(d.Amount), 8), d.Status, d.Confirmations, d.Needed)
				}
				if !pending || wait <= 0 || time.Now().After(deadline) {
					return g.Print(list, func(w io.Writer) { fmt.Fprint(w, b.String()) })
				}
				if s := b.String(); s != last && !g.JSON() {
					fmt.Fprintf(g.Stderr(), "waiting:\n%s", s)
					last = s
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
			}
		},
	}
	cmd.Flags().StringVar(&asset, "asset", cb.Denom, "asset (btc)")
	cmd.Flags().StringVar(&wallet, "wallet", "genesis-ops", "wallet whose deposits to show")
	cmd.Flags().StringVar(&btcRPC, "btc-rpc", "", "Bitcoin node RPC URL (default: a running devnet --btc's; none: the chain's records only)")
	waitFlag(cmd.Flags(), &wait, 10*time.Minute, "follow pending deposits up to this long, until every one is minted (true: 10m)")
	return cmd
}

func newWithdrawalsCmd(g *Globals) *cobra.Command {
	var asset, wallet string
	var limit int
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "withdrawals",
		Short: "The wallet's BTC withdrawals: amount, payout, pending or paid with the Bitcoin txid",
		Example: `  aitbc exchange withdrawals --asset btc --wallet alice
  aitbc exchange withdrawals --asset btc --wallet alice --wait 2m -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := checkAsset(asset); err != nil {
				return err
			}
			if limit < 1 || limit > 10_000 {
				return usagef("--limit must be 1-10000")
			}
			acct, err := g.walletAddress(ctx, wallet)
			if err != nil {
				return err
			}
			deadline := time.Now().Add(wait)
			for {
				list, err := bridge.AccountWithdrawals(ctx, g.node(), acct, limit)
				if err != nil {
					return err
				}
				pending := false
				for _, w := range list {
					pending = pending || w.Status == "pending"
				}
				if !pending || wait <= 0 || time.Now().After(deadline) {
					return g.Print(list, func(out io.Writer) {
						for _, w := range list {
							progress := w.PaidTx
							if w.Status == "pending" && w.PayoutTxid != "" {
								// the payout proposed on chain, signed by w.Shares operators so far
								progress = fmt.Sprintf("payout %s signed by %d operator(s)", w.PayoutTxid, w.Shares)
							}
							fmt.Fprintf(out, "%d  %s BTC to %s  %s %s\n", w.ID, bank.FormatUnits(coinSat(w.Payout), 8), w.To, w.Status, progress)
						}
					})
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Second):
				}
			}
		},
	}
	cmd.Flags().StringVar(&asset, "asset", cb.Denom, "asset (btc)")
	cmd.Flags().StringVar(&wallet, "wallet", "genesis-ops", "wallet whose withdrawals to show")
	cmd.Flags().IntVar(&limit, "limit", 100, "most withdrawals to show, oldest first")
	waitFlag(cmd.Flags(), &wait, 10*time.Minute, "wait up to this long until every withdrawal is paid (true: 10m)")
	return cmd
}

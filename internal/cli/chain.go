package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/bank"
	"github.com/aitbc/aitbc/internal/rpc"
	"github.com/aitbc/aitbc/internal/system"
)

func (g *Globals) node() *rpc.Client { return rpc.NewClient(g.Node) }

// serviceNode is the node client of a long-running service (coordinator,
// wallet daemon, miner): it logs when it fails over to the next node of
// --node's comma-separated list.
func (g *Globals) serviceNode(log *slog.Logger) *rpc.Client {
	c := rpc.NewClient(g.Node)
	c.OnFailover(func(from, to string, err error) {
		log.Warn("node stopped answering; using the next one", "from", from, "to", to, "err", err)
	})
	return c
}

func newTransactionCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transaction",
		Short: "Look up, follow and verify one transaction",
	}
	var txID string
	var wait time.Duration
	status := &cobra.Command{
		Use:   "status",
		Short: "Show whether a transaction is pending, committed (at which height) or failed (and why)",
		Example: `  aitbc transaction status --tx-id 0x5f2c...
  aitbc transaction status --tx-id 0x5f2c... --wait 30s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if txID == "" {
				return usagef("--tx-id is required")
			}
			ctx := cmd.Context()
			var t rpc.Transaction
			var err error
			if wait > 0 {
				wctx, cancel := context.WithTimeout(ctx, wait)
				defer cancel()
				t, err = g.node().WaitTx(wctx, txID, 200*time.Millisecond)
			} else {
				t, err = g.node().Tx(ctx, txID)
			}
			if err != nil {
				return err
			}
			return g.Print(t, func(w io.Writer) { printTxStatus(w, t) })
		},
	}
	status.Flags().StringVar(&txID, "tx-id", "", "transaction hash (0x...)")
	waitFlag(status.Flags(), &wait, 30*time.Second, "wait up to this long for the transaction to leave the mempool (true: 30s)")

	var vID string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check a transaction's signature and prove its inclusion against its block header",
		Long: `Fetches the transaction's bytes, checks that they hash to the given id, decode,
carry a valid ed25519 signature for this chain, and proves with the Merkle path
from the node that they are part of the block whose header data hash is served
for that height.`,
		Example: "  aitbc transaction verify --tx-id 0x5f2c...",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if vID == "" {
				return usagef("--tx-id is required")
			}
			v, err := g.node().VerifyTx(cmd.Context(), vID)
			if err != nil {
				return err
			}
			return g.Print(v, func(w io.Writer) {
				fmt.Fprintf(w, "transaction %s verified\n", v.TxHash)
				fmt.Fprintf(w, "  signature   valid (signer %s, chain %s)\n", v.Signer, v.ChainID)
				fmt.Fprintf(w, "  inclusion   proven in block %d (index %d), data hash %s\n", v.Height, v.Index, v.DataHash)
				fmt.Fprintf(w, "  block hash  %s\n", v.BlockHash)
				fmt.Fprintf(w, "  result      %s\n", v.Status)
			})
		},
	}
	verify.Flags().StringVar(&vID, "tx-id", "", "transaction hash (0x...)")
	cmd.AddCommand(status, verify, newVerifyPropagationCmd(g))
	return cmd
}

func printTxStatus(w io.Writer, t rpc.Transaction) {
	switch t.Status {
	case "pending":
		fmt.Fprintf(w, "%s: pending (in the mempool)\n", t.Hash)
	case "committed":
		fmt.Fprintf(w, "%s: committed at height %d\n", t.Hash, t.Height)
	case "failed":
		fmt.Fprintf(w, "%s: failed at height %d: %s\n", t.Hash, t.Height, t.Error)
	default:
		fmt.Fprintf(w, "%s: %s\n", t.Hash, t.Status)
	}
}

func newBlockCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "block [height|latest]",
		Short: "Show a block: hash, time, proposer, transactions",
		Example: `  aitbc block            # the newest block
  aitbc block 42 --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var h int64
			if len(args) == 1 && args[0] != "latest" {
				v, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || v < 1 {
					return usagef("height must be a positive integer or \"latest\", not %q", args[0])
				}
				h = v
			}
			b, err := g.node().Block(cmd.Context(), h)
			if err != nil {
				return err
			}
			return g.Print(b, func(w io.Writer) {
				fmt.Fprintf(w, "block %d  %s\n  time      %s\n  proposer  %s\n  app hash  %s\n  txs       %d\n",
					b.Height, b.Hash, b.Time.Format(time.RFC3339Nano), b.Proposer, b.AppHash, b.NumTxs)
				for _, t := range b.Txs {
					fmt.Fprintf(w, "    %s\n", t)
				}
			})
		},
	}
}

func newChainCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "chain", Short: "Chain information"}
	cmd.AddCommand(&cobra.Command{
		Use:   "info",
		Short: "Chain id, height, fee parameters and token supply",
		Example: `  aitbc chain info
  aitbc chain info --node http://127.0.0.1:8006 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ci, err := g.node().Chain(cmd.Context())
			if err != nil {
				return err
			}
			dv, err := bank.QueryDenoms(cmd.Context(), g.node())
			if err != nil {
				return err
			}
			return g.Print(chainInfoWithDenoms{ChainInfo: ci, Denoms: dv.Denoms}, func(w io.Writer) {
				fmt.Fprintf(w, "chain id        %s\nheight          %d\nminimum fee     %s %s (%.2f%% burned)\nsupply          %s %s\nburned          %s %s\nminted          %s %s (after genesis)\ngenesis supply  %s %s\n",
					ci.ChainID, ci.Height, ci.MinFee, ci.Denom, float64(ci.BurnBps)/100, ci.Supply, ci.Denom, ci.Burned, ci.Denom, ci.Minted, ci.Denom, ci.GenesisTotal, ci.Denom)
				inModules := coin.Amount(0)
				for _, m := range ci.ModuleAccounts {
					fmt.Fprintf(w, "module account  %-15s %s  %s %s\n", m.Name, m.Address, m.Balance, ci.Denom)
					inModules += m.Balance
				}
				if inModules <= ci.Supply {
					fmt.Fprintf(w, "in accounts     %s %s (the supply less the module accounts)\n", ci.Supply-inModules, ci.Denom)
				}
				for _, d := range dv.Denoms[1:] {
					fmt.Fprintf(w, "asset %-9s supply %s (minted %s, burned %s; minters %s)\n", strings.ToUpper(d.Name),
						bank.FormatUnits(coin.Amount(d.Supply), d.Decimals), bank.FormatUnits(coin.Amount(d.Minted), d.Decimals),
						bank.FormatUnits(coin.Amount(d.Burned), d.Decimals), strings.Join(d.Minters, ","))
				}
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "audit",
		Short: "Check the chain's books: supply against every balance, each module account against its records",
		Long: `Runs every module's invariants on the node's committed state and prints each
with its figures: the circulating supply equals the sum of all balances
(module accounts included) and minted less burned; the escrow account holds
the escrow of every open or assigned job; the deposits account holds every
deposit; the stake account holds every miner's stake; every finished job paid
out exactly its escrow. Exits 1 if any invariant is broken.`,
		Example: "  aitbc chain audit\n  aitbc chain audit --output json --node http://10.0.0.2:8006",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			au, err := g.node().Audit(cmd.Context())
			if err != nil {
				return err
			}
			au = g.auditReserves(cmd.Context(), au) // exchange_bridge.go: a devnet --btc's Bitcoin reserves
			if err := g.Print(au, func(w io.Writer) {
				fmt.Fprintf(w, "audit at height %d (%s)\n", au.Height, au.Time.Local().Format(time.DateTime))
				for _, in := range au.Invariants {
					fmt.Fprintf(w, "%-4s %-18s %s\n", okBad(in.OK), in.Name, in.Detail)
				}
			}); err != nil {
				return err
			}
			return au.Err()
		},
	})
	cmd.AddCommand(newChainExportCmd(g))
	cmd.AddCommand(&cobra.Command{
		Use:   "sync",
		Short: "Whether the node is catching up, its height and peers",
		Example: `  aitbc chain sync
  aitbc chain sync --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := g.node().Sync(cmd.Context())
			if err != nil {
				return err
			}
			return g.Print(s, func(w io.Writer) {
				fmt.Fprintf(w, "catching up  %v\nheight       %d (%s)\npeers        %d\nvalidator    %v\n",
					s.CatchingUp, s.LatestBlockHeight, s.LatestBlockTime.Format(time.RFC3339), s.Peers, s.Validator)
			})
		},
	})
	return cmd
}

// addressFlag resolves --address directly or --name through the wallets.
type addressFlag struct {
	name, addr string
}

func (a *addressFlag) bind(cmd *cobra.Command) {
	walletFlag(cmd, &a.name, "wallet name")
	cmd.Flags().StringVar(&a.addr, "address", "", "account address (aitbc1...)")
}

func (a *addressFlag) resolve(ctx context.Context, g *Globals) (address.Address, string, error) {
	switch {
	case a.addr != "" && a.name != "":
		return address.Address{}, "", usagef("give --wallet or --address, not both")
	case a.addr != "":
		ad, err := address.Parse(a.addr)
		return ad, a.addr, err
	case a.name != "":
		ad, err := g.walletAddress(ctx, a.name)
		return ad, a.name, err
	}
	return address.Address{}, "", usagef("--wallet or --address is required")
}

func newTransactionsCmd(g *Globals) *cobra.Command {
	var who addressFlag
	var limit int
	var cross *crossNode
	cmd := &cobra.Command{
		Use:     "transactions",
		Short:   "List an account's newest transactions, sent and received",
		Example: "  aitbc transactions --name customer-1 --limit 50",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usagef("--limit must be from 1 to 1000")
			}
			if cross.on {
				return cross.run(cmd.Context(), g, &who, limit)
			}
			addr, label, err := who.resolve(cmd.Context(), g)
			if err != nil {
				return err
			}
			list, err := g.node().Transactions(cmd.Context(), addr, limit)
			if err != nil {
				return err
			}
			return g.Print(list, func(w io.Writer) {
				if len(list.Transactions) == 0 {
					fmt.Fprintf(w, "%s: no transactions\n", label)
					return
				}
				for _, t := range list.Transactions {
					line := fmt.Sprintf("%s  height %-6d %-9s %s", t.Hash, t.Height, t.Status, t.Type)
					if body, ok := t.Body.(map[string]any); ok {
						if t.From == addr {
							line += fmt.Sprintf("  to %v  -%v AITBC (fee %s)", body["to"], body["amount"], t.Fee)
						} else {
							line += fmt.Sprintf("  from %s  +%v AITBC", t.From, body["amount"])
						}
					}
					fmt.Fprintln(w, line)
				}
			})
		},
	}
	who.bind(cmd)
	cmd.Flags().IntVar(&limit, "limit", 20, "how many transactions, newest first (1-1000)")
	cross = bindCrossNode(cmd)
	return cmd
}

// exportSummary is what `chain export --out FILE` prints.
type exportSummary struct {
	File string `json:"file"`
	system.Exported
}

func newChainExportCmd(g *Globals) *cobra.Command {
	var (
		height  int64
		out     string
		chainID string
		when    string
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a genesis with the chain's whole state, for a new chain (an upgrade) to start from",
		Long: `Reads the state of the stopped node in --home and writes the genesis document
of a new chain that starts from it, as Cosmos chains upgrade: every balance,
every module's records (jobs, miners, listings, bids, agreements, stakes and
unbondings, rewards, pools, multisig accounts and proposals, faucet windows),
every account's nonce, the supply's books (genesis, minted and burned carry
over, so the audit still reconciles), the same validators and consensus
parameters. The new chain's first block is the exported height + 1.

The state store keeps only the latest state: --height must be the node's
last height (or be left out). Stop the node first; the export is refused
while it runs. Without --out the genesis goes to standard output. See
docs/OPERATIONS.md, "Upgrading the chain".`,
		Example: `  # stop the node first (Ctrl-C on aitbc node start, or on aitbc devnet)
  aitbc chain export --home ./testnet/node0 --out genesis-v2.json
  aitbc chain export --home ./testnet/node0 --height 81234 --chain-id aitbc-2 \
      --genesis-time 2026-12-01T12:00:00Z --out genesis-v2.json --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if height < 0 {
				return usagef("--height must be positive, or left out for the latest")
			}
			var t time.Time
			if when != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, when); err != nil {
					return usagef("--genesis-time: %v (RFC 3339, e.g. 2026-12-01T12:00:00Z)", err)
				}
			}
			if out != "" && out != "-" {
				if _, err := os.Stat(out); err == nil {
					return usagef("--out %s exists: choose a new file", out)
				}
			}
			home, err := nodeHome(g.Home)
			if err != nil {
				return err
			}
			e, err := system.ExportChain(home, system.ExportOptions{Height: height, ChainID: chainID, GenesisTime: t.UTC()})
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err := g.stdout.Write(append(e.Genesis, '\n'))
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := f.Write(e.Genesis); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			s := exportSummary{File: out, Exported: e}
			return g.Print(s, func(w io.Writer) {
				fmt.Fprintf(w, "wrote %s: chain %s starts at height %d (%s) from %s at height %d (app hash %s)\nmodules: %s; %d validator(s)\n",
					s.File, s.ChainID, s.InitialHeight, s.GenesisTime.Format(time.RFC3339), s.ExportedFrom, s.ExportedHeight, s.AppHash, strings.Join(s.Modules, ", "), s.Validators)
				fmt.Fprintf(w, "next: give every validator this file as config/genesis.json of a home with its keys, no chain data and a reset data/priv_validator_state.json (docs/OPERATIONS.md, Upgrading the chain), and start them\n")
			})
		},
	}
	cmd.Flags().Int64Var(&height, "height", 0, "height to export: the node's last (the only one its state store keeps); 0 for the latest")
	cmd.Flags().StringVar(&out, "out", "", "file to write the genesis to (must not exist); default standard output")
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain id of the new chain, which must differ from the old (default: the old with its trailing -N counted up, or -2 added)")
	cmd.Flags().StringVar(&when, "genesis-time", "", "genesis time of the new chain, RFC 3339 (default now; not before the exported block)")
	return cmd
}

// chainInfoWithDenoms is chain info's answer: the node's chain info and
// every denomination's supply (base units).
type chainInfoWithDenoms struct {
	rpc.ChainInfo
	Denoms []bank.DenomView `json:"denoms"`
}

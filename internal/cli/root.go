// Package cli builds the aitbc command tree. It is imported only by
// cmd/aitbc; every other package exposes plain Go APIs that these commands
// wire together.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Globals are the options shared by every command. Each has a flag and an
// AITBC_* environment variable; the flag wins when both are set.
type Globals struct {
	Home      string // state directory (AITBC_HOME, default ~/.aitbc)
	Output    string // "text" or "json" (AITBC_OUTPUT)
	Node      string // node REST RPC base URL (AITBC_NODE)
	WalletURL string // wallet daemon base URL (AITBC_WALLET_URL)
	Coord     string // coordinator base URL (AITBC_COORDINATOR)
	APIKey    string // coordinator API key (AITBC_API_KEY)

	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader
}

// JSON reports whether machine-readable output was requested.
func (g *Globals) JSON() bool { return g.Output == "json" }

// Print writes v as indented JSON when --output json was given, and the
// result of text() otherwise.
func (g *Globals) Print(v any, text func(w io.Writer)) error {
	if g.JSON() {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(g.stdout)
	return nil
}

// Stdout is where command results go.
func (g *Globals) Stdout() io.Writer { return g.stdout }

// Stderr is where progress and diagnostics go.
func (g *Globals) Stderr() io.Writer { return g.stderr }

// DefaultHome is ~/.aitbc, or ./.aitbc when no home directory is known.
func DefaultHome() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".aitbc")
	}
	return ".aitbc"
}

// NewRoot returns the aitbc command tree writing to the given streams.
// name is the program name shown in help ("aitbc" or "aitbc-cli"); both
// behave the same.
func NewRoot(name string, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &Globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           name,
		Short:         "AITBC: a marketplace for AI compute on its own proof-of-authority chain",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Root()); err != nil {
				return err
			}
			if cmd != cmd.Root() {
				if err := applyEnv(cmd); err != nil {
					return err
				}
			}
			if g.Output != "text" && g.Output != "json" && g.Output != "csv" { // csv: the tables that offer it (marketplace regulatory-audit), text elsewhere
				return fmt.Errorf("--output must be text or json (or csv where a command offers it), not %q", g.Output)
			}
			return nil
		},
	}
	setVersion(root)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.Home, "home", DefaultHome(), "state directory (chain, wallets, coordinator store)")
	pf.StringVarP(&g.Output, "output", "o", "text", "output format: text or json (csv where a command offers it)")
	pf.StringVar(&g.Node, "node", "http://127.0.0.1:8006", "node REST RPC URL; several, comma-separated, are used in order when one stops answering")
	pf.StringVar(&g.WalletURL, "wallet-url", "http://127.0.0.1:8002", "wallet daemon URL")
	pf.StringVar(&g.Coord, "coordinator", "http://127.0.0.1:8000", "coordinator URL")
	pf.StringVar(&g.APIKey, "api-key", "", "coordinator API key (default: the devnet's, from <home>/coordinator/api-key)")

	// Commands are registered here, one constructor per file.
	root.AddCommand(
		newVersionCmd(g),
		newDevnetCmd(g),
		newSubmitCmd(g),
		newStatusCmd(g),
		newResultsCmd(g, "results [job-id]"),
		newResultsCmd(g, "ai-results"),
		newReceiptsCmd(g),
		newReceiptCmd(g),
		newAISubmitCmd(g),
		newAIStatusCmd(g),
		newDepositCmd(g),
		newMinerCmd(g),
		newCoordinatorCmd(g),
		newHealthCmd(g),
		newResourceCmd(g),
		newTransactionCmd(g),
		newTransactionsCmd(g),
		newBlockCmd(g),
		newChainCmd(g),
		newBenchCmd(g),
		newCreateCmd(g),
		newListCmd(g),
		newSendCmd(g),
		newBalanceCmd(g),
		newWalletCmd(g),
		newNodeCmd(g),
		newTestnetCmd(g),
		newModelCmd(g),
		newMarketplaceCmd(g),
		newMarketCmd(g),
		newWebCmd(g),
		newStakeCmd(g),
		newUnstakeCmd(g),
		newStakingCmd(g),
		newEconomicsCmd(g),
		newMultisigCmd(g),
		newFaucetCmd(g),
		newPoolCmd(g),
		newTreasuryCmd(g),
	)
	return root
}

// applyEnv fills every flag of cmd that was not set on the command line
// from AITBC_<FLAG> (dashes become underscores), so that any option can be
// given by environment.
func applyEnv(cmd *cobra.Command) error {
	var firstErr error
	set := func(f *pflag.Flag) {
		if f.Changed || firstErr != nil {
			return
		}
		key := "AITBC_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = fmt.Errorf("%s=%q: %w", key, v, err)
				return
			}
			f.Changed = true
		}
	}
	cmd.Flags().VisitAll(set)
	cmd.PersistentFlags().VisitAll(set)
	return firstErr
}

// Execute runs the command tree and turns an error into a one-line message
// and exit code 1 (2 for usage errors).
func Execute(ctx context.Context, name string, args []string) int {
	root := NewRoot(name, os.Stdin, os.Stdout, os.Stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, oneLine(err))
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown ") || strings.Contains(err.Error(), "flag") {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks a mistake in how a command was called.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

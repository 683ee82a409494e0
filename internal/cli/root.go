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
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aitbc/aitbc/internal/bench"
	"github.com/aitbc/aitbc/internal/chain/errs"
	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/walletd"
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
	LogFormat string // log lines of long-running commands: text or json (AITBC_LOG_FORMAT)
	Verbose   bool   // -v: say more (which coordinator was chosen, and why)

	// coordFallbacks are the other healthy coordinators of a --coordinator
	// list, nearest first (coordinator_pick.go).
	coordFallbacks []string

	// conf is the running service's configuration (defaults, its
	// --config file, AITBC_* variables), set before RunE for the commands
	// that take --config; nil for the others.
	conf *config.Loaded
	// fromEnv names the flags that applyEnv set from AITBC_* variables,
	// so that `config show` can say where a value came from.
	fromEnv map[string]bool

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
			g.fromEnv = map[string]bool{}
			if err := applyEnv(cmd.Root(), g.fromEnv); err != nil {
				return err
			}
			if cmd != cmd.Root() {
				if err := applyEnv(cmd, g.fromEnv); err != nil {
					return err
				}
			}
			if err := g.loadServiceConfig(cmd); err != nil {
				return err
			}
			if g.Output != "text" && g.Output != "json" && g.Output != "csv" { // csv: the tables that offer it (marketplace regulatory-audit), text elsewhere
				return usagef("--output must be text or json (or csv where a command offers it), not %q", g.Output)
			}
			if err := checkLogFormat(g.LogFormat); err != nil {
				return err
			}
			g.resolveCoordinator(cmd) // a --coordinator list: the nearest healthy one
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
	pf.StringVar(&g.Coord, "coordinator", "http://127.0.0.1:8000", "coordinator URL; several, comma-separated, or chain (those announced on chain; chain:ADDRESS for one key's): the nearest healthy one is used (aitbc coordinator list)")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "say more: which coordinator of a --coordinator list was chosen, with each one's round trip and health")
	pf.StringVar(&g.APIKey, "api-key", "", "coordinator API key (default: the devnet's, from <home>/coordinator/api-key)")
	pf.StringVar(&g.LogFormat, "log-format", LogFormatText, "log lines of long-running commands (node start, devnet, coordinator start, miner start, wallet daemon, web start, and testnet bench's nodes): text or json")

	// Commands are registered here, one constructor per file.
	root.AddCommand(
		newVersionCmd(g),
		newDevnetCmd(g),
		newSubmitCmd(g),
		newStatusCmd(g),
		newResultsCmd(g, "results [job-id]"),
		newResultsCmd(g, "ai-results [job-id]"),
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
		newDataCmd(g), // data.go: the data-processing pipeline
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
		newRentCmd(g),
		newBrowserCmd(g),
		newAIMetricsCmd(g),
		newConfigCmd(g),
		newTreasuryCmd(g),
		newSwarmCmd(g),
		newExchangeCmd(g), // exchange.go: the AITBC/BTC order book and its API; the Bitcoin bridge's subcommands in exchange_bridge.go
		newAgentCmd(g),    // agent.go: agents on chain (register, heartbeat, list, show)
		newOracleCmd(g),   // oracle.go: the metrics oracle
		newAuditsCmd(g),   // audits.go: spot checks on chain (list, show, miner, params)
		newVerifierCmd(g), // verifier.go: verifiers of spot checks (register, start, status)
		newZKCmd(g),       // zk.go: keys of private jobs (setup, ceremony)
	)
	root.AddCommand(newAdminCmds(g)...)
	registerWalletCompletion(g, root)
	markUsageErrors(root)
	return root
}

// envAnnotation on a flag names the variable it reads instead of
// AITBC_<FLAG>: a local flag that shares a global flag's name but means
// something else (the wallet daemon's own --api-key) must not read the
// global's variable.
const envAnnotation = "aitbc_env"

// envOf is the AITBC_* variable flag f reads.
func envOf(f *pflag.Flag) string {
	if v := f.Annotations[envAnnotation]; len(v) == 1 {
		return v[0]
	}
	return "AITBC_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
}

// setEnvName makes flag name of fs read variable env.
func setEnvName(fs *pflag.FlagSet, name, env string) {
	_ = fs.SetAnnotation(name, envAnnotation, []string{env})
}

// applyEnv fills every flag of cmd that was not set on the command line
// from its AITBC_* variable (AITBC_<FLAG>, dashes as underscores, unless
// the flag names another), so that any option can be given by
// environment. It records the flags it set in fromEnv.
func applyEnv(cmd *cobra.Command, fromEnv map[string]bool) error {
	var firstErr error
	set := func(f *pflag.Flag) {
		if f.Changed || firstErr != nil {
			return
		}
		key := envOf(f)
		if v, ok := os.LookupEnv(key); ok {
			if err := f.Value.Set(v); err != nil {
				firstErr = usagef("%s=%q: %w", key, v, err)
				return
			}
			f.Changed = true
			fromEnv[f.Name] = true
		}
	}
	cmd.Flags().VisitAll(set)
	cmd.PersistentFlags().VisitAll(set)
	return firstErr
}

// Exit statuses of the aitbc command (docs/OPERATIONS.md).
const (
	ExitOK      = 0 // the command did what was asked
	ExitFailure = 1 // it could not (unreachable service, refused transaction, ...)
	ExitUsage   = 2 // it was called wrongly (unknown command or flag, missing or bad argument, bad config file)
)

// Execute runs the command tree and returns the exit status. An error is
// written to stderr as one line, "name: message", or with --output json
// (AITBC_OUTPUT=json) as {"error":{"code","message"}} with a stable code.
func Execute(ctx context.Context, name string, args []string) int {
	root := NewRoot(name, os.Stdin, os.Stdout, os.Stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := errorCode(err)
	if wantsJSON(root, args) {
		var v struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		v.Error.Code, v.Error.Message = code, oneLine(err)
		b, _ := json.Marshal(v)
		fmt.Fprintf(os.Stderr, "%s\n", b)
	} else {
		fmt.Fprintf(os.Stderr, "%s: %s\n", name, oneLine(err))
	}
	if isUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

// wantsJSON reports whether errors should be JSON: --output json parsed,
// or (when parsing failed before it) given in args or AITBC_OUTPUT.
func wantsJSON(root *cobra.Command, args []string) bool {
	if f := root.PersistentFlags().Lookup("output"); f != nil && f.Value.String() == "json" {
		return true
	}
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "--output=json" || a == "-o=json" || a == "-ojson":
			return true
		case (a == "--output" || a == "-o") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return os.Getenv("AITBC_OUTPUT") == "json"
}

// usageError marks a mistake in how a command was called.
type usageError struct{ error }

// markUsageErrors makes cobra's own complaints (a bad flag, the wrong
// number of arguments, a missing required flag) usage errors, so that the
// exit status does not depend on their wording.
func markUsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageError{err}
				}
				return nil
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

// Codes of `--output json` errors that are not a service's own.
const (
	CodeUsage       = "usage"       // exit status 2
	CodeTimeout     = "timeout"     // a deadline passed (--wait, --timeout)
	CodeCanceled    = "canceled"    // interrupted
	CodeUnreachable = "unreachable" // a service did not answer
	CodeError       = "error"       // anything else
)

// errorCodes maps the CLI's own sentinels to their codes; errors from a
// service keep that service's code (the wallet daemon's, the
// coordinator's, the chain's error name).
var errorCodes = []struct {
	err  error
	code string
}{
	{config.ErrUnknownKey, "config_unknown_key"},
	{config.ErrBadValue, "config_bad_value"},
	{config.ErrTooLarge, "config_too_large"},
	{config.ErrUnknownService, CodeUsage},
	{errFileExists, "file_exists"},
	{errNeedsDaemon, "wallet_daemon_required"},
	{bench.ErrNoPostgres, "postgres_required"},
	{context.DeadlineExceeded, CodeTimeout},
	{context.Canceled, CodeCanceled},
}

// cobraUsage are the beginnings of cobra's own messages for a command
// called wrongly that come without a hook to mark them.
var cobraUsage = []string{"unknown command ", "unknown flag", "unknown shorthand flag", "required flag(s) ", "if any flags in the group"}

// isUsage reports whether err says the command was called wrongly.
func isUsage(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	for _, p := range cobraUsage {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}

// errorCode is err's stable code for `--output json` errors.
func errorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	var api *httpx.APIError
	if errors.As(err, &api) && api.Code != "" {
		return api.Code
	}
	var ce *coordinator.Error
	if errors.As(err, &ce) && ce.Code != "" {
		return ce.Code
	}
	var chainErr *errs.Error
	if errors.As(err, &chainErr) {
		return chainErr.Name
	}
	if _, code := walletd.HTTPStatus(err); code != "internal" { // keystore and daemon sentinels
		return code
	}
	if isUsage(err) {
		return CodeUsage
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return CodeUnreachable
	}
	return CodeError
}

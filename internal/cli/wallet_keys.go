package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/walletd"
)

// The wallet daemon's scoped API keys: `aitbc wallet daemon key ...`. The
// work is the daemon's (walletd/keys.go); these commands call it with the
// admin key.

func newDaemonKeyCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage API keys scoped to some wallets (create, list, revoke)",
		Long: `The daemon's own key (<home>/wallet/api-key, --api-key) is the admin key: it
opens every customer wallet and manages the others. A scoped key opens only the
wallets it names: give one to each application or customer instead of the admin
key. Service wallets (the devnet's coordinator and miners) are opened only by a
key scoped to them.`,
		Example: `  aitbc wallet daemon key create --wallets customer-1 --label shop
  aitbc wallet daemon key list
  aitbc wallet daemon key revoke 3f9a0c1b2d4e5f60`,
	}
	cmd.AddCommand(newDaemonKeyCreateCmd(g), newDaemonKeyListCmd(g), newDaemonKeyRevokeCmd(g))
	return cmd
}

// daemonClient is the running wallet daemon, with the admin key.
func (g *Globals) daemonClient(cmd *cobra.Command, what string) (*walletd.Client, error) {
	w, err := g.wallets(cmd.Context())
	if err != nil {
		return nil, err
	}
	c, ok := w.client()
	if !ok {
		return nil, fmt.Errorf("%s %w: no wallet daemon answers at %s (start one with `aitbc wallet daemon` or `aitbc devnet`)", what, errNeedsDaemon, g.WalletURL)
	}
	return c, nil
}

func newDaemonKeyCreateCmd(g *Globals) *cobra.Command {
	var wallets, label string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API key that opens only the named wallets (shown once)",
		Example: `  aitbc wallet daemon key create --wallets customer-1,customer-2 --label shop
  AITBC_WALLET_API_KEY=$(aitbc wallet daemon key create --wallets customer-1 --output json | jq -r .key) aitbc balance --name customer-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var names []string
			for _, w := range strings.Split(wallets, ",") {
				if w = strings.TrimSpace(w); w != "" {
					names = append(names, w)
				}
			}
			if len(names) == 0 {
				return usagef("--wallets is required: the wallets the key opens, comma-separated")
			}
			c, err := g.daemonClient(cmd, "wallet daemon key create")
			if err != nil {
				return err
			}
			k, err := c.CreateKey(cmd.Context(), names, label)
			if err != nil {
				return err
			}
			return g.Print(k, func(o io.Writer) {
				fmt.Fprintf(o, "key %s opens %s (shown once; send it in X-API-Key or set %s):\n%s\n", k.ID, strings.Join(k.Wallets, ", "), walletd.EnvAPIKey, k.Key)
			})
		},
	}
	cmd.Flags().StringVar(&wallets, "wallets", "", "wallets the key opens, comma-separated (at most 100)")
	cmd.Flags().StringVar(&label, "label", "", "what the key is for (at most 64 characters)")
	return cmd
}

func newDaemonKeyListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the daemon's scoped API keys (id, creation, wallets, label; never the keys)",
		Example: "  aitbc wallet daemon key list\n  aitbc wallet daemon key list --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.daemonClient(cmd, "wallet daemon key list")
			if err != nil {
				return err
			}
			keys, err := c.Keys(cmd.Context())
			if err != nil {
				return err
			}
			return g.Print(walletd.KeyList{Keys: keys}, func(o io.Writer) {
				if len(keys) == 0 {
					fmt.Fprintln(o, "no scoped keys (the admin key opens every customer wallet)")
					return
				}
				tw := tabwriter.NewWriter(o, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tCREATED\tWALLETS\tLABEL")
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Created.Format("2006-01-02 15:04:05Z"), strings.Join(k.Wallets, ","), k.Label)
				}
				tw.Flush()
			})
		},
	}
}

func newDaemonKeyRevokeCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a scoped API key by id; it stops working at once",
		Example: "  aitbc wallet daemon key revoke 3f9a0c1b2d4e5f60",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.daemonClient(cmd, "wallet daemon key revoke")
			if err != nil {
				return err
			}
			if err := c.RevokeKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			out := map[string]string{"revoked": strings.ToLower(args[0])}
			return g.Print(out, func(o io.Writer) { fmt.Fprintf(o, "key %s revoked\n", out["revoked"]) })
		},
	}
}

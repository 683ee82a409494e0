package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/keystore"
)

// walletAddress resolves a wallet name to its address through the wallet
// daemon, or the local keystore when no daemon answers.
func (g *Globals) walletAddress(ctx context.Context, name string) (address.Address, error) {
	w, err := g.wallets(ctx)
	if err != nil {
		return address.Address{}, err
	}
	info, err := w.Get(ctx, name)
	if err != nil {
		return address.Address{}, err
	}
	return info.Address, nil
}

// completeWallets offers the wallet names in the local keystore of
// --home (AITBC_HOME): shell completion must not need a daemon.
func (g *Globals) completeWallets(c *cobra.Command) ([]string, cobra.ShellCompDirective) {
	_ = applyEnv(c.Root(), map[string]bool{}) // completion skips PersistentPreRunE
	ks, err := keystore.ForHome(g.Home)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, _ := ks.List() // the readable ones, even when one file is not
	names := make([]string, 0, len(list))
	for _, w := range list {
		names = append(names, w.Name+"\t"+w.Address.String())
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// registerWalletCompletion completes --wallet (and send's --from) on every
// command that has it with the names of the local wallets.
func registerWalletCompletion(g *Globals, root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, name := range []string{"wallet", "from"} {
			f := c.LocalNonPersistentFlags().Lookup(name)
			if f == nil || f.Value.Type() != "string" || (name == "from" && !strings.Contains(f.Usage, "wallet")) {
				continue
			}
			_ = c.RegisterFlagCompletionFunc(name, func(c *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
				return g.completeWallets(c)
			})
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

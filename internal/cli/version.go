package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the release version; set with -ldflags "-X github.com/aitbc/aitbc/internal/cli.Version=...".
var Version = "dev"

func newVersionCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the aitbc version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := map[string]string{"version": Version, "go": runtime.Version()}
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, d := range bi.Deps {
					if d.Path == "github.com/cometbft/cometbft" {
						info["cometbft"] = d.Version
					}
				}
			}
			return g.Print(info, func(w io.Writer) {
				fmt.Fprintf(w, "aitbc %s (%s, cometbft %s)\n", info["version"], info["go"], info["cometbft"])
			})
		},
	}
}

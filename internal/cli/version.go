package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/version"
)

// Version is this binary's version (see internal/version: the build info,
// or what `make build` stamped), as the miner reports it to coordinators.
var Version = version.Get().Version

// setVersion gives the root command --version, printing what `aitbc
// version` prints.
func setVersion(root *cobra.Command) {
	root.Version = version.Get().String()
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
}

func newVersionCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the aitbc version, commit and build date",
		Long: `Prints the module version, the VCS commit and the build date of this binary,
with the Go toolchain, platform and CometBFT version it was built with. They come
from the Go build info, or from what ` + "`make build`" + ` stamped where the build
info lacks them; "dev" and "unknown" mean neither knew. --version prints the
same line.`,
		Example: `  aitbc version
  aitbc --version
  aitbc version --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			return g.Print(info, func(w io.Writer) {
				fmt.Fprintf(w, "%s %s\n", cmd.Root().Name(), info)
			})
		},
	}
}

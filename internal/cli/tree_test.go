package cli

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func walkCommands(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, s := range c.Commands() {
		walkCommands(s, fn)
	}
}

func testRoot() *cobra.Command {
	return NewRoot("aitbc", strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
}

// An AITBC_* variable means one thing: every flag that reads it has the
// same type, and a command's own flag never reads the variable of a
// global flag it shadows (the wallet daemon's --api-key once read the
// coordinator's AITBC_API_KEY; AITBC_WAIT=true once broke `transaction
// status`, whose --wait was a duration).
func TestNoVariableMeansTwoThings(t *testing.T) {
	root := testRoot()
	global := map[string]*pflag.Flag{}
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) { global[f.Name] = f })
	types := map[string]map[string][]string{} // env → flag type → commands
	walkCommands(root, func(c *cobra.Command) {
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
			env := envOf(f)
			if types[env] == nil {
				types[env] = map[string][]string{}
			}
			ty := kindOf(f.Value.Type())
			types[env][ty] = append(types[env][ty], c.CommandPath())
			if g, ok := global[f.Name]; ok && envOf(g) == env {
				t.Errorf("%s --%s shadows the global --%s and reads its variable %s", c.CommandPath(), f.Name, f.Name, env)
			}
		})
	})
	for env, byType := range types {
		if len(byType) > 1 && byType["string"] != nil {
			delete(byType, "string") // a string flag takes whatever the others take
		}
		if len(byType) > 1 {
			var ks []string
			for ty, cmds := range byType {
				ks = append(ks, fmt.Sprintf("%s in %s", ty, strings.Join(cmds, ", ")))
			}
			sort.Strings(ks)
			t.Errorf("%s means several things: %s", env, strings.Join(ks, "; "))
		}
	}
}

// kindOf groups flag types whose values parse alike: every integer type
// takes "12", and a duration flag here takes bare seconds as well.
func kindOf(ty string) string {
	switch ty {
	case "int", "int64", "uint", "uint64", "uint32", "int32":
		return "integer"
	}
	return ty
}

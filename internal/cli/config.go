package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/httpx"
)

// configAnnotation on a command names the service whose --config file it
// reads.
const configAnnotation = "aitbc_config_service"

// withConfig gives a long-running command --config FILE for service svc.
func withConfig(cmd *cobra.Command, svc config.Service) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[configAnnotation] = string(svc)
	cmd.Flags().String("config", "", fmt.Sprintf("TOML config file (docs/CONFIG.md; `aitbc config init --service %s` writes one); flags and AITBC_* variables override it", svc))
	_ = cmd.MarkFlagFilename("config", "toml")
	return cmd
}

// loadServiceConfig reads the --config file of a command made with
// withConfig into g.conf. A key the file sets that has a flag becomes
// that flag's value unless the flag (or its AITBC_* variable) was given,
// so RunE sees one set of values with the documented precedence; the keys
// without a flag (the [http] limits) are read from g.conf.
func (g *Globals) loadServiceConfig(cmd *cobra.Command) error {
	svc, ok := cmd.Annotations[configAnnotation]
	if !ok {
		return nil
	}
	path, _ := cmd.Flags().GetString("config")
	l, err := config.Load(config.Service(svc), path)
	if err != nil {
		return usageError{err}
	}
	for _, kv := range l.FileFlags() {
		f := cmd.Flags().Lookup(kv[0])
		if f == nil || f.Changed {
			continue
		}
		if err := setFlag(f, kv[1]); err != nil {
			return usagef("%s: %s = %q: %w", path, kv[0], kv[1], err)
		}
	}
	if err := l.ApplyEnv(os.LookupEnv); err != nil {
		return usageError{err}
	}
	// A warning, not a refusal: the operator may have reasons (a
	// single-user host), but should know.
	if keys, err := l.ExposedSecrets(); err == nil && len(keys) > 0 {
		fmt.Fprintf(g.Stderr(), "warning: %s sets %s and anyone on this host can read it: chmod 0640, or move the secret to an AITBC_* variable in a root-only EnvironmentFile\n", path, strings.Join(keys, ", "))
	}
	g.conf = l
	return nil
}

// setFlag sets f to v as if it had been given on the command line. A
// slice flag is replaced, not appended to.
func setFlag(f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		var items []string
		if v != "" {
			items = strings.Split(v, ",")
		}
		if err := sv.Replace(items); err != nil {
			return err
		}
	} else if err := f.Value.Set(v); err != nil {
		return err
	}
	f.Changed = true
	return nil
}

// httpLimits are the [http] limits of the running service's config; the
// zero value (the service's own defaults) when it has none.
func (g *Globals) httpLimits() httpx.Limits {
	if g.conf == nil {
		return httpx.Limits{}
	}
	h, ok := g.conf.HTTP()
	if !ok {
		return httpx.Limits{}
	}
	return h.Limits()
}

func newConfigCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show a service's effective configuration, or write a commented default config file",
		Long: `Every long-running service (node, coordinator, wallet daemon, miner, web pages,
devnet) reads a TOML file given with --config; flags and AITBC_* variables
override it. docs/CONFIG.md lists every key with its default.`,
		Example: `  aitbc config init --service coordinator --file /etc/aitbc/coordinator.toml
  aitbc config show --service coordinator --config /etc/aitbc/coordinator.toml`,
	}
	cmd.AddCommand(newConfigShowCmd(g), newConfigInitCmd(g))
	return cmd
}

func serviceFlag(cmd *cobra.Command, p *string) {
	names := make([]string, 0, 6)
	for _, s := range config.Services() {
		names = append(names, string(s))
	}
	cmd.Flags().StringVar(p, "service", "", "service: "+strings.Join(names, ", "))
	_ = cmd.RegisterFlagCompletionFunc("service", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return names, cobra.ShellCompDirectiveNoFileComp
	})
}

func parseServiceFlag(s string) (config.Service, error) {
	if s == "" {
		return "", usagef("--service is required: node, coordinator, wallet, miner, web or devnet")
	}
	svc, err := config.ParseService(s)
	if err != nil {
		return "", usageError{err}
	}
	return svc, nil
}

// configView is `config show --output json`.
type configView struct {
	Service string                   `json:"service"`
	File    string                   `json:"file"`
	Config  map[string]any           `json:"config"`
	Sources map[string]config.Source `json:"sources"`
}

func newConfigShowCmd(g *Globals) *cobra.Command {
	var service, file string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print a service's effective configuration, secrets masked, and where each value came from",
		Long: `Prints what the service would run with: its defaults, overlaid by --config FILE,
by AITBC_* variables, and by the global flags given here (--home, --node,
--coordinator, --wallet-url). Passwords and keys are shown as ******** when set.
A file with an unknown key or a bad value is reported as the service would.`,
		Example: `  aitbc config show --service node --config /etc/aitbc/node.toml
  AITBC_HTTP_MAX_BODY_BYTES=2097152 aitbc config show --service coordinator --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := parseServiceFlag(service)
			if err != nil {
				return err
			}
			l, err := config.Load(svc, file)
			if err != nil {
				return usageError{err}
			}
			// ~/.aitbc as this user's home resolves it (the --home default).
			if err := l.SetDefault("home", cmd.Flags().Lookup("home").DefValue); err != nil {
				return err
			}
			if err := l.ApplyEnv(os.LookupEnv); err != nil {
				return usageError{err}
			}
			// Global flags given on this command line (not from a
			// variable: ApplyEnv took those) override like the service's own.
			err = l.ApplyFlags(func(name string) (string, bool) {
				f := cmd.Flags().Lookup(name)
				if f == nil || !f.Changed || g.fromEnv[name] || name == "output" {
					return "", false
				}
				return f.Value.String(), true
			})
			if err != nil {
				return usageError{err}
			}
			es := l.Entries()
			v := configView{Service: string(svc), File: l.Path, Config: l.Tree(), Sources: map[string]config.Source{}}
			for _, e := range es {
				v.Sources[e.Key] = e.Source
			}
			return g.Print(v, func(w io.Writer) {
				from := l.Path
				if from == "" {
					from = "none (defaults)"
				}
				fmt.Fprintf(w, "# %s configuration; file: %s\n", svc, from)
				for _, e := range es {
					fmt.Fprintf(w, "%-28s = %-40s # %s\n", e.Key, showValue(e.Value), e.Source)
				}
			})
		},
	}
	serviceFlag(cmd, &service)
	cmd.Flags().StringVar(&file, "config", "", "the service's TOML config file (default: none, the defaults)")
	_ = cmd.MarkFlagFilename("config", "toml")
	return cmd
}

func showValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case []string:
		return fmt.Sprintf("%q", x)
	default:
		return fmt.Sprint(x)
	}
}

// errFileExists is `config init` refusing to overwrite.
var errFileExists = errors.New("config: file exists (give --force to overwrite it)")

func newConfigInitCmd(g *Globals) *cobra.Command {
	var service, file string
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a service's config file with every key at its default, commented",
		Long: `Writes a TOML file with every key of the service at its default, commented out,
under its description: uncomment a line to change it. Without --file it is
printed. An existing file is kept unless --force is given. The file is
written 0600: it may come to hold a password or an API key.`,
		Example: `  aitbc config init --service node > node.toml
  sudo aitbc config init --service coordinator --file /etc/aitbc/coordinator.toml
  aitbc config init --service miner --file ./miner.toml --force --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := parseServiceFlag(service)
			if err != nil {
				return err
			}
			tpl, err := config.Template(svc)
			if err != nil {
				return err
			}
			if file == "" {
				if g.JSON() {
					return g.Print(map[string]string{"service": string(svc), "template": tpl}, nil)
				}
				_, err := io.WriteString(g.Stdout(), tpl)
				return err
			}
			if err := writeNewFile(file, []byte(tpl), force); err != nil {
				return err
			}
			return g.Print(map[string]string{"service": string(svc), "file": file}, func(w io.Writer) {
				fmt.Fprintf(w, "wrote %s (%s config); use it with: %s --config %s\n", file, svc, config.Command(svc), file)
			})
		},
	}
	serviceFlag(cmd, &service)
	cmd.Flags().StringVar(&file, "file", "", "write here instead of printing")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}

// writeNewFile writes b to path with mode 0600, refusing to replace an
// existing file unless force.
func writeNewFile(path string, b []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s", errFileExists, path)
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("config: %w", err)
	}
	return f.Close()
}

// coordinatorOptions are the [jobs] and [limits] sections of the
// coordinator's config (its defaults when it has none).
func (g *Globals) coordinatorOptions() coordinator.Config {
	if g.conf != nil {
		if c, ok := g.conf.Value.(*config.CoordinatorConfig); ok {
			return c.Options()
		}
	}
	return coordinator.Config{}
}

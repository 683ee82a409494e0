package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// secondsValue is a duration flag that also takes a bare number of seconds
// ("--ttl 900", as the seed documents write it, or "--ttl 15m").
type secondsValue struct{ d *time.Duration }

func (v secondsValue) String() string {
	if v.d == nil {
		return "0s"
	}
	return v.d.String()
}

func (v secondsValue) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*v.d = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (v secondsValue) Type() string { return "duration" }

// secondsFlag defines a duration flag that accepts bare seconds.
func secondsFlag(f *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	f.Var(secondsValue{p}, name, usage)
}

// waitValue is every command's --wait: "true"/"false" or a duration (bare
// seconds too), so that AITBC_WAIT means the same to every command that
// reads it. on (when not nil) says whether to wait; d (when not nil) is
// how long, and "true" sets it to def when there is no on.
type waitValue struct {
	on  *bool
	d   *time.Duration
	def time.Duration
}

func (v waitValue) String() string {
	if v.d != nil && v.on == nil {
		return v.d.String()
	}
	if v.on != nil {
		return strconv.FormatBool(*v.on)
	}
	return "false"
}

func (v waitValue) Set(s string) error {
	if b, err := strconv.ParseBool(s); err == nil {
		if v.on != nil {
			*v.on = b
		}
		switch {
		case v.d != nil && !b:
			*v.d = 0
		case v.d != nil && v.on == nil:
			*v.d = v.def
		}
		return nil
	}
	var d time.Duration
	if err := (secondsValue{&d}).Set(s); err != nil {
		return fmt.Errorf("want true, false or a duration (30s, 2m): %w", err)
	}
	if v.d != nil {
		*v.d = d
	}
	if v.on != nil {
		*v.on = d > 0
	}
	return nil
}

func (v waitValue) Type() string { return "wait" }

// waitBoolFlag defines --wait as a switch (bare --wait means true) that
// also takes a duration: how long to wait, written to d when d is not nil.
func waitBoolFlag(f *pflag.FlagSet, on *bool, d *time.Duration, usage string) {
	*on = false
	f.Var(waitValue{on: on, d: d}, "wait", usage)
	f.Lookup("wait").NoOptDefVal = "true"
}

// waitFlag defines --wait as how long to wait (0: not at all); "true"
// means def.
func waitFlag(f *pflag.FlagSet, d *time.Duration, def time.Duration, usage string) {
	*d = 0
	f.Var(waitValue{d: d, def: def}, "wait", usage)
}

// aliasFlag makes --alias another spelling of cmd's --name (the seeds'
// spellings stay valid while help shows one name per concept).
func aliasFlag(cmd *cobra.Command, alias, name string) {
	prev := cmd.Flags().GetNormalizeFunc()
	cmd.Flags().SetNormalizeFunc(func(f *pflag.FlagSet, n string) pflag.NormalizedName {
		if n == alias {
			n = name
		}
		return prev(f, n)
	})
}

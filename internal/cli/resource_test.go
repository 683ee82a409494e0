package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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

// On a machine without a GPU (no nvidia-smi on PATH), --type gpu says so
// and tests the CPU backend.
func TestResourceTestWithoutAGPUSaysSo(t *testing.T) {
	e := newWalletEnv(t, false)
	t.Setenv("PATH", t.TempDir())
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

// With a GPU (an nvidia-smi on PATH that reports one), --type gpu names it,
// says the work is the CPU's, and samples the GPU's used memory.
func TestResourceTestWithAGPUSamplesItsMemory(t *testing.T) {
	e := newWalletEnv(t, false)
	dir := t.TempDir()
	smi := "#!/bin/sh\necho 'NVIDIA H200, 143771, 1234, 7, 550.54'\n"
	if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(smi), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, errOut, err := e.run("resource", "test", "--type", "gpu", "--duration", "1", "--workers", "1", "-o", "json")
	if err != nil {
		t.Fatalf("%v: %s", err, errOut)
	}
	if !strings.Contains(errOut, "GPU NVIDIA H200 found") || !strings.Contains(errOut, "gpu 1234 MB") {
		t.Fatalf("stderr: %s", errOut)
	}
	var rep cli.StressReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Device != "NVIDIA H200" || len(rep.Samples) == 0 ||
		rep.Samples[0].GPUUsedMB == nil || *rep.Samples[0].GPUUsedMB != 1234 {
		t.Fatalf("report %+v (%v)", rep, err)
	}
}

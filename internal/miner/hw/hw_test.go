package hw_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/miner/hw"
)

func TestParseNvidiaSMI(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want []hw.GPU
		err  bool
	}{
		{
			name: "one H100",
			out:  "NVIDIA H100 80GB HBM3, 81559, 0, 0, 550.90.07\n",
			want: []hw.GPU{{Index: 0, Name: "NVIDIA H100 80GB HBM3", MemoryTotalMB: 81559, MemoryUsedMB: 0, UtilizationPct: 0, Driver: "550.90.07"}},
		},
		{
			name: "two different GPUs, busy, CRLF",
			out:  "NVIDIA GeForce RTX 4090, 24564, 20311, 97, 560.35.03\r\nNVIDIA GeForce RTX 3090, 24576, 2, 0, 560.35.03\r\n",
			want: []hw.GPU{
				{Index: 0, Name: "NVIDIA GeForce RTX 4090", MemoryTotalMB: 24564, MemoryUsedMB: 20311, UtilizationPct: 97, Driver: "560.35.03"},
				{Index: 1, Name: "NVIDIA GeForce RTX 3090", MemoryTotalMB: 24576, MemoryUsedMB: 2, UtilizationPct: 0, Driver: "560.35.03"},
			},
		},
		{
			name: "eight GPUs",
			out:  strings.Repeat("NVIDIA A100-SXM4-80GB, 81920, 4, 0, 535.183.01\n", 8),
			want: func() []hw.GPU {
				var g []hw.GPU
				for i := range 8 {
					g = append(g, hw.GPU{Index: i, Name: "NVIDIA A100-SXM4-80GB", MemoryTotalMB: 81920, MemoryUsedMB: 4, Driver: "535.183.01"})
				}
				return g
			}(),
		},
		{
			name: "fields nvidia-smi cannot report (MIG, old boards)",
			out:  "NVIDIA A100-SXM4-40GB, 40960, [N/A], [N/A], 535.104.05\nGRID K520, 4095, 10, [Not Supported], [N/A]\n",
			want: []hw.GPU{
				{Index: 0, Name: "NVIDIA A100-SXM4-40GB", MemoryTotalMB: 40960, MemoryUsedMB: -1, UtilizationPct: -1, Driver: "535.104.05"},
				{Index: 1, Name: "GRID K520", MemoryTotalMB: 4095, MemoryUsedMB: 10, UtilizationPct: -1},
			},
		},
		{name: "empty", out: "", want: nil},
		{name: "driver not loaded", out: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n", err: true},
		{name: "no devices", out: "No devices were found\n", err: true},
		{name: "header line kept", out: "name, memory.total [MiB], memory.used [MiB], utilization.gpu [%], driver_version\nTesla T4, 15360, 0, 0, 535.54.03\n",
			want: []hw.GPU{{Index: 0, Name: "Tesla T4", MemoryTotalMB: 15360, Driver: "535.54.03"}}, err: true},
		{name: "units left in", out: "Tesla T4, 15360 MiB, 0 MiB, 0 %, 535.54.03\n", err: true},
		{name: "too few fields", out: "Tesla T4, 15360, 0\n", err: true},
		{name: "negative", out: "Tesla T4, 15360, -5, 0, 535\n", err: true},
		{name: "utilization over 100", out: "Tesla T4, 15360, 5, 250, 535\n", err: true},
		{name: "zero memory", out: "Tesla T4, 0, 0, 0, 535\n", err: true},
		{name: "binary garbage", out: "\x00\xff\xfe,,,,\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hw.ParseNvidiaSMI([]byte(tc.out))
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if err != nil && !errors.Is(err, hw.ErrNvidiaSMIOutput) {
				t.Fatalf("err %v does not wrap ErrNvidiaSMIOutput", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseNvidiaSMI(f *testing.F) {
	f.Add([]byte("NVIDIA H100 80GB HBM3, 81559, 0, 0, 550.90.07\n"))
	f.Add([]byte("A, 1, [N/A], [Not Supported], [N/A]\r\nB, 2, 3, 4, 5\n"))
	f.Add([]byte("No devices were found"))
	f.Fuzz(func(t *testing.T, out []byte) {
		gpus, err := hw.ParseNvidiaSMI(out)
		for i, g := range gpus {
			if g.Index != i || g.Name == "" || g.MemoryTotalMB == 0 || g.UtilizationPct > 100 || g.UtilizationPct < -1 || g.MemoryUsedMB < -1 {
				t.Fatalf("implausible GPU %+v", g)
			}
		}
		if err != nil && !errors.Is(err, hw.ErrNvidiaSMIOutput) {
			t.Fatal(err)
		}
		info := hw.Info{GPUs: gpus}
		_ = info.Summary()
	})
}

// fakeProc writes a /proc with the given cpuinfo and meminfo.
func fakeProc(t *testing.T, cpuinfo, meminfo string) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cpuinfo"), []byte(cpuinfo), 0o644)
	os.WriteFile(filepath.Join(dir, "meminfo"), []byte(meminfo), 0o644)
	return dir
}

// fakeNvidiaSMI writes an executable that prints out and exits with code.
func fakeNvidiaSMI(t *testing.T, out string, code int) string {
	if runtime.GOOS == "windows" {
		t.Skip("shell script")
	}
	path := filepath.Join(t.TempDir(), "nvidia-smi")
	script := "#!/bin/sh\n" +
		`[ "$1" = "--query-gpu=name,memory.total,memory.used,utilization.gpu,driver_version" ] && [ "$2" = "--format=csv,noheader,nounits" ] || { echo "bad arguments: $*" >&2; exit 2; }` + "\n" +
		"cat <<'EOF'\n" + out + "EOF\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

const cpuinfo2x2 = `processor	: 0
model name	: AMD EPYC 7B13 64-Core Processor
physical id	: 0
core id		: 0

processor	: 1
model name	: AMD EPYC 7B13 64-Core Processor
physical id	: 0
core id		: 0

processor	: 2
model name	: AMD EPYC 7B13 64-Core Processor
physical id	: 0
core id		: 1

processor	: 3
model name	: AMD EPYC 7B13 64-Core Processor
physical id	: 0
core id		: 1
`

const meminfo = `MemTotal:       16314372 kB
MemFree:         1000000 kB
MemAvailable:   12582912 kB
`

func TestDetectWithGPUs(t *testing.T) {
	smi := fakeNvidiaSMI(t, "NVIDIA H100 80GB HBM3, 81559, 512, 3, 550.90.07\nNVIDIA H100 80GB HBM3, 81559, 0, 0, 550.90.07\n", 0)
	info := hw.DetectWith(context.Background(), hw.Options{ProcDir: fakeProc(t, cpuinfo2x2, meminfo), NvidiaSMI: smi})
	if info.CPUModel != "AMD EPYC 7B13 64-Core Processor" || info.CPUCores != 2 || info.CPUs != runtime.NumCPU() {
		t.Fatalf("cpu %+v", info)
	}
	if info.MemoryTotalMB != 15932 || info.MemoryAvailableMB != 12288 {
		t.Fatalf("memory %d / %d MiB", info.MemoryTotalMB, info.MemoryAvailableMB)
	}
	if len(info.GPUs) != 2 || info.Accelerator() != "NVIDIA H100 80GB HBM3" || info.GPUMemoryMB() != 81559 || len(info.Warnings) != 0 {
		t.Fatalf("gpus %+v, warnings %v", info.GPUs, info.Warnings)
	}
	s := info.Summary()
	for _, want := range []string{"AMD EPYC 7B13", "2 physical cores", "15.6 GiB (12.0 GiB available)", "gpu 0:  NVIDIA H100 80GB HBM3, 79.6 GiB (512 MiB used, 3% busy), driver 550.90.07", "gpu 1:"} {
		if !strings.Contains(s, want) {
			t.Fatalf("summary lacks %q:\n%s", want, s)
		}
	}
}

func TestDetectWhenNvidiaSMIFails(t *testing.T) {
	smi := fakeNvidiaSMI(t, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n", 9)
	info := hw.DetectWith(context.Background(), hw.Options{ProcDir: fakeProc(t, cpuinfo2x2, meminfo), NvidiaSMI: smi})
	if len(info.GPUs) != 0 || info.Accelerator() != "cpu" || info.GPUMemoryMB() != 0 {
		t.Fatalf("gpus %+v", info.GPUs)
	}
	if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "couldn't communicate with the NVIDIA driver") {
		t.Fatalf("warnings %q", info.Warnings)
	}
	if !strings.Contains(info.Summary(), "gpu:    none") || !strings.Contains(info.Summary(), "note:") {
		t.Fatal(info.Summary())
	}
}

func TestDetectKeepsGoodLinesOfOddOutput(t *testing.T) {
	smi := fakeNvidiaSMI(t, "Tesla T4, 15360, 0, 0, 535.54.03\nsomething else\n", 0)
	info := hw.DetectWith(context.Background(), hw.Options{ProcDir: fakeProc(t, "", ""), NvidiaSMI: smi})
	if len(info.GPUs) != 1 || len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "something else") {
		t.Fatalf("%+v", info)
	}
	if !strings.HasPrefix(info.CPUModel, "unknown") || info.CPUCores != 0 || info.MemoryTotalMB != 0 {
		t.Fatalf("empty /proc files: %+v", info)
	}
}

func TestDetectARMCPUInfo(t *testing.T) {
	arm := "processor\t: 0\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x41\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
	info := hw.DetectWith(context.Background(), hw.Options{ProcDir: fakeProc(t, arm, meminfo), NoGPU: true})
	if info.CPUModel != "BCM2835" || info.CPUCores != 0 {
		t.Fatalf("%+v", info)
	}
}

// The real machine: whatever it has, the report is consistent. Without
// nvidia-smi (the usual test machine) there is no GPU and the miner runs
// on "cpu".
func TestDetectThisMachine(t *testing.T) {
	info := hw.Detect(context.Background())
	if info.CPUs != runtime.NumCPU() || info.CPUModel == "" || info.GPUs == nil {
		t.Fatalf("%+v", info)
	}
	if runtime.GOOS == "linux" && info.MemoryTotalMB == 0 {
		t.Fatalf("no memory read: %+v", info)
	}
	if len(info.GPUs) == 0 && info.Accelerator() != "cpu" {
		t.Fatal(info.Accelerator())
	}
	t.Logf("\n%s", info.Summary())
}

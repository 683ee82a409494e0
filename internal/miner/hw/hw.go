// Package hw detects the hardware a miner offers: CPU model and core
// counts (/proc/cpuinfo and the Go runtime), memory (/proc/meminfo), and
// NVIDIA GPUs through nvidia-smi when it is installed. It reports what is
// really there: a machine without a GPU has an empty GPU list and the
// accelerator "cpu".
//
// Imported by the miner command, which registers Accelerator and
// GPUMemoryMB on chain and shows Summary to the operator.
package hw

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// NvidiaSMIQuery is the nvidia-smi command line Detect runs.
var NvidiaSMIQuery = []string{"--query-gpu=name,memory.total,memory.used,utilization.gpu,driver_version", "--format=csv,noheader,nounits"}

// GPU is one GPU as nvidia-smi reports it.
type GPU struct {
	Index          int    `json:"index"` // order in nvidia-smi's output
	Name           string `json:"name"`
	MemoryTotalMB  uint64 `json:"memory_total_mb"`
	MemoryUsedMB   int64  `json:"memory_used_mb"`  // -1: not reported
	UtilizationPct int    `json:"utilization_pct"` // -1: not reported
	Driver         string `json:"driver"`
}

// Info is a machine's hardware.
type Info struct {
	CPUModel string `json:"cpu_model"`
	// CPUs is the number of logical CPUs this process can use.
	CPUs int `json:"cpus"`
	// CPUCores is the number of physical cores /proc/cpuinfo lists (0 when
	// it does not say).
	CPUCores          int    `json:"cpu_cores,omitempty"`
	MemoryTotalMB     uint64 `json:"memory_total_mb,omitempty"`
	MemoryAvailableMB uint64 `json:"memory_available_mb,omitempty"`
	GPUs              []GPU  `json:"gpus"`
	OS                string `json:"os"`
	Arch              string `json:"arch"`
	// Warnings say what could not be read (nvidia-smi failing, lines it
	// printed that do not parse); detection never fails as a whole.
	Warnings []string `json:"warnings,omitempty"`
}

// Options adjust Detect for tests and unusual systems. The zero value
// reads /proc and runs the nvidia-smi found on PATH.
type Options struct {
	ProcDir   string        // default "/proc"
	NvidiaSMI string        // path to nvidia-smi; default: looked up on PATH
	NoGPU     bool          // do not look for GPUs
	Timeout   time.Duration // for nvidia-smi; default 10 s
}

// Detect reads the machine's hardware.
func Detect(ctx context.Context) Info { return DetectWith(ctx, Options{}) }

// DetectWith reads the machine's hardware as opts say.
func DetectWith(ctx context.Context, opts Options) Info {
	info := Info{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, GPUs: []GPU{}}
	proc := opts.ProcDir
	if proc == "" {
		proc = "/proc"
	}
	if f, err := os.Open(filepath.Join(proc, "cpuinfo")); err == nil {
		info.CPUModel, info.CPUCores = parseCPUInfo(f)
		f.Close()
	} else if runtime.GOOS == "linux" {
		info.Warnings = append(info.Warnings, fmt.Sprintf("cpu: %v", err))
	}
	if info.CPUModel == "" {
		info.CPUModel = "unknown " + runtime.GOARCH + " CPU"
	}
	if f, err := os.Open(filepath.Join(proc, "meminfo")); err == nil {
		info.MemoryTotalMB, info.MemoryAvailableMB = parseMemInfo(f)
		f.Close()
	} else if runtime.GOOS == "linux" {
		info.Warnings = append(info.Warnings, fmt.Sprintf("memory: %v", err))
	}
	if !opts.NoGPU {
		gpus, warn := detectGPUs(ctx, opts)
		info.GPUs = append(info.GPUs, gpus...)
		info.Warnings = append(info.Warnings, warn...)
	}
	return info
}

// detectGPUs runs nvidia-smi when it exists; no nvidia-smi is no GPU, not
// a warning.
func detectGPUs(ctx context.Context, opts Options) ([]GPU, []string) {
	path := opts.NvidiaSMI
	if path == "" {
		p, err := exec.LookPath("nvidia-smi")
		if err != nil {
			return nil, nil
		}
		path = p
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, NvidiaSMIQuery...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := firstLine(stderr.String())
		if msg == "" {
			msg = firstLine(stdout.String()) // nvidia-smi prints its failures on stdout
		}
		if msg != "" {
			msg = ": " + msg
		}
		return nil, []string{fmt.Sprintf("gpu: %s: %v%s", path, err, msg)}
	}
	gpus, err := ParseNvidiaSMI(stdout.Bytes())
	if err != nil {
		return gpus, []string{"gpu: " + err.Error()}
	}
	return gpus, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// ErrNvidiaSMIOutput means nvidia-smi printed lines that are not the CSV
// Detect asked for.
var ErrNvidiaSMIOutput = errors.New("hw: unexpected nvidia-smi output")

// ParseNvidiaSMI reads the output of nvidia-smi with NvidiaSMIQuery: one
// line per GPU, "name, memory.total, memory.used, utilization.gpu,
// driver_version", memory in MiB. Fields nvidia-smi cannot report ("[N/A]",
// "[Not Supported]") become -1. It returns the GPUs of the lines that
// parse, and an error wrapping ErrNvidiaSMIOutput that quotes the first
// line that does not.
func ParseNvidiaSMI(out []byte) ([]GPU, error) {
	var (
		gpus []GPU
		bad  []string
	)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		g, ok := parseGPULine(line)
		if !ok {
			bad = append(bad, line)
			continue
		}
		g.Index = len(gpus)
		gpus = append(gpus, g)
	}
	if err := sc.Err(); err != nil {
		return gpus, fmt.Errorf("%w: %v", ErrNvidiaSMIOutput, err)
	}
	if len(bad) > 0 {
		return gpus, fmt.Errorf("%w: %d line(s) not understood, first: %.200q", ErrNvidiaSMIOutput, len(bad), bad[0])
	}
	return gpus, nil
}

func parseGPULine(line string) (GPU, bool) {
	f := strings.Split(line, ",")
	if len(f) != 5 {
		return GPU{}, false
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	g := GPU{Name: f[0], Driver: f[4]}
	total, err := strconv.ParseUint(f[1], 10, 64)
	if g.Name == "" || unreported(g.Name) || err != nil || total == 0 {
		return GPU{}, false
	}
	g.MemoryTotalMB = total
	used, ok := optionalInt(f[2], 1<<50)
	if !ok {
		return GPU{}, false
	}
	g.MemoryUsedMB = used
	util, ok := optionalInt(f[3], 100)
	if !ok {
		return GPU{}, false
	}
	g.UtilizationPct = int(util)
	if unreported(g.Driver) {
		g.Driver = ""
	}
	return g, true
}

// unreported tells nvidia-smi's placeholders: [N/A], [Not Supported],
// [Unknown Error], [Insufficient Permissions].
func unreported(s string) bool {
	return strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") || s == "N/A"
}

// optionalInt parses a count in 0..max, or a placeholder as -1.
func optionalInt(s string, max int64) (int64, bool) {
	if unreported(s) {
		return -1, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > max {
		return 0, false
	}
	return n, true
}

// parseCPUInfo returns the CPU model and the number of physical cores
// (distinct physical id / core id pairs; 0 when the file has none).
func parseCPUInfo(r io.Reader) (model string, cores int) {
	type core struct{ pkg, id string }
	seen := map[core]bool{}
	var pkg, id string
	var alt string // a model from the fields ARM kernels write
	flush := func() {
		if id != "" {
			seen[core{pkg, id}] = true
		}
		pkg, id = "", ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			if strings.TrimSpace(sc.Text()) == "" {
				flush()
			}
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			if model == "" {
				model = v
			}
		case "Hardware", "Model", "cpu model", "uarch":
			if alt == "" {
				alt = v
			}
		case "physical id":
			pkg = v
		case "core id":
			id = v
		}
	}
	flush()
	if model == "" {
		model = alt
	}
	return model, len(seen)
}

// parseMemInfo returns MemTotal and MemAvailable in MiB.
func parseMemInfo(r io.Reader) (total, avail uint64) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			n /= 1024
		} else {
			n /= 1 << 20 // bytes
		}
		switch k {
		case "MemTotal":
			total = n
		case "MemAvailable":
			avail = n
		}
	}
	return total, avail
}

// Accelerator is what the miner runs on, as registered on chain: the first
// GPU's name, or "cpu".
func (i Info) Accelerator() string {
	if len(i.GPUs) == 0 {
		return "cpu"
	}
	return i.GPUs[0].Name
}

// GPUMemoryMB is the memory of the largest GPU (what one model can use
// without splitting it), 0 without a GPU.
func (i Info) GPUMemoryMB() uint64 {
	var m uint64
	for _, g := range i.GPUs {
		m = max(m, g.MemoryTotalMB)
	}
	return m
}

// Summary describes the hardware in a few lines, for display.
func (i Info) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cpu:    %s (%d logical CPUs", i.CPUModel, i.CPUs)
	if i.CPUCores > 0 {
		fmt.Fprintf(&b, ", %d physical cores", i.CPUCores)
	}
	fmt.Fprintf(&b, "), %s/%s\n", i.OS, i.Arch)
	if i.MemoryTotalMB > 0 {
		fmt.Fprintf(&b, "memory: %s (%s available)\n", mib(i.MemoryTotalMB), mib(i.MemoryAvailableMB))
	}
	if len(i.GPUs) == 0 {
		b.WriteString("gpu:    none (jobs run on the CPU)\n")
	}
	for _, g := range i.GPUs {
		fmt.Fprintf(&b, "gpu %d:  %s, %s", g.Index, g.Name, mib(g.MemoryTotalMB))
		var extra []string
		if g.MemoryUsedMB >= 0 {
			extra = append(extra, mib(uint64(g.MemoryUsedMB))+" used")
		}
		if g.UtilizationPct >= 0 {
			extra = append(extra, fmt.Sprintf("%d%% busy", g.UtilizationPct))
		}
		if len(extra) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(extra, ", "))
		}
		if g.Driver != "" {
			fmt.Fprintf(&b, ", driver %s", g.Driver)
		}
		b.WriteByte('\n')
	}
	for _, w := range i.Warnings {
		fmt.Fprintf(&b, "note:   %s\n", w)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// mib writes a size given in MiB.
func mib(n uint64) string {
	if n >= 1024 {
		return fmt.Sprintf("%.1f GiB", float64(n)/1024)
	}
	return fmt.Sprintf("%d MiB", n)
}

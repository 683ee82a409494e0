package miner

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aitbc/aitbc/internal/miner/hw"
)

// gpuCollector reports each GPU's utilisation and memory as nvidia-smi
// says at scrape time (read at most every 5 s). A machine without
// nvidia-smi, or a value nvidia-smi does not report, exports nothing
// rather than a made-up zero.
type gpuCollector struct {
	opts  hw.Options
	every time.Duration

	mu   sync.Mutex
	at   time.Time
	gpus []hw.GPU

	util, memUsed, memTotal *prometheus.Desc
}

func newGPUCollector(opts hw.Options) *gpuCollector {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second // a scrape must not hang on a stuck driver
	}
	labels := []string{"gpu", "name"}
	return &gpuCollector{
		opts:     opts,
		every:    5 * time.Second,
		util:     prometheus.NewDesc("aitbc_miner_gpu_utilization_ratio", "GPU utilisation (0-1) as nvidia-smi reports it.", labels, nil),
		memUsed:  prometheus.NewDesc("aitbc_miner_gpu_memory_used_bytes", "GPU memory in use as nvidia-smi reports it.", labels, nil),
		memTotal: prometheus.NewDesc("aitbc_miner_gpu_memory_total_bytes", "GPU memory as nvidia-smi reports it.", labels, nil),
	}
}

func (c *gpuCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.util
	ch <- c.memUsed
	ch <- c.memTotal
}

func (c *gpuCollector) read() []hw.GPU {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= c.every {
		c.gpus = hw.DetectWith(context.Background(), c.opts).GPUs
		c.at = time.Now()
	}
	return c.gpus
}

func (c *gpuCollector) Collect(ch chan<- prometheus.Metric) {
	const mb = 1 << 20
	for _, g := range c.read() {
		l := []string{strconv.Itoa(g.Index), g.Name}
		if g.UtilizationPct >= 0 {
			ch <- prometheus.MustNewConstMetric(c.util, prometheus.GaugeValue, float64(g.UtilizationPct)/100, l...)
		}
		if g.MemoryUsedMB >= 0 {
			ch <- prometheus.MustNewConstMetric(c.memUsed, prometheus.GaugeValue, float64(g.MemoryUsedMB)*mb, l...)
		}
		if g.MemoryTotalMB > 0 {
			ch <- prometheus.MustNewConstMetric(c.memTotal, prometheus.GaugeValue, float64(g.MemoryTotalMB)*mb, l...)
		}
	}
}

package testnet

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aitbc/aitbc/internal/rpc"
)

// Cluster runs the nodes of a testnet as child processes of this one.
type Cluster struct {
	M     *Manifest
	Bin   string  // the aitbc binary
	Procs []*Proc // by node index; nil for a node never started
	// Args go after `node start --home HOME` for every node (flags that
	// override the node's config for this run). A "%d" in one is replaced
	// by the node's index.
	Args []string

	mu      sync.Mutex
	http    *http.Client
	clients []*rpc.Client
}

// NewCluster prepares to run m's nodes with the aitbc binary bin.
func NewCluster(m *Manifest, bin string) *Cluster {
	return &Cluster{M: m, Bin: bin, Procs: make([]*Proc, len(m.Nodes)), http: &http.Client{
		Timeout: 15 * time.Second,
		// Enough idle connections per node for many concurrent submitters
		// (the default keeps two and churns sockets).
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second},
	}}
}

// Start starts node i (which must not be running) and waits for its REST
// API.
func (c *Cluster) Start(ctx context.Context, i int) error {
	c.grow()
	for {
		p, err := StartProc(c.Bin, c.M.HomeOf(i), c.args(i)...)
		if err != nil {
			return err
		}
		c.Procs[i] = p
		err = p.WaitREST(ctx, c.M.Nodes[i].RESTURL)
		// A restarted node must take its own ports again (its peers dial
		// them), and while it was down another process on the machine —
		// a parallel test picking free ports — may have bound one for a
		// while: wait for it rather than fail.
		if err == nil || !p.Exited() || !strings.Contains(p.LogTail(512), "address already in use") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// StartAll starts every node, then waits for every REST API.
func (c *Cluster) StartAll(ctx context.Context) error {
	c.grow()
	for i := range c.M.Nodes {
		p, err := StartProc(c.Bin, c.M.HomeOf(i), c.args(i)...)
		if err != nil {
			return err
		}
		c.Procs[i] = p
	}
	var errs []error
	for i, p := range c.Procs {
		errs = append(errs, p.WaitREST(ctx, c.M.Nodes[i].RESTURL))
	}
	return errors.Join(errs...)
}

func (c *Cluster) args(i int) []string {
	out := make([]string, len(c.Args))
	for k, a := range c.Args {
		out[k] = strings.ReplaceAll(a, "%d", strconv.Itoa(i))
	}
	return out
}

// grow makes room for nodes added to the manifest after NewCluster.
func (c *Cluster) grow() {
	for len(c.Procs) < len(c.M.Nodes) {
		c.Procs = append(c.Procs, nil)
	}
}

// Running reports whether node i's process is alive.
func (c *Cluster) Running(i int) bool {
	return i < len(c.Procs) && c.Procs[i] != nil && !c.Procs[i].Exited()
}

// Kill SIGKILLs node i and waits for it to end.
func (c *Cluster) Kill(i int) {
	if c.Procs[i] != nil {
		c.Procs[i].Kill()
	}
}

// Close stops every running node: SIGTERM, then SIGKILL after a grace.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, p := range c.Procs {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Stop(10 * time.Second)
		}()
	}
	wg.Wait()
}

// Client returns a REST client for node i, sharing one connection pool.
func (c *Cluster) Client(i int) *rpc.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.clients) < len(c.M.Nodes) {
		cl := rpc.NewClient(c.M.Nodes[len(c.clients)].RESTURL)
		cl.HTTP = c.http
		c.clients = append(c.clients, cl)
	}
	return c.clients[i]
}

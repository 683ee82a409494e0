package swarm

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Peer is one span server as the router sees it: where it is, what it
// serves and how fast it was measured to be.
type Peer struct {
	ID          string // the miner's address or another stable name
	URL         string // base URL of its span API
	Model       string
	First, Last int           // it serves layers [First, Last)
	RTT         time.Duration // measured round trip from the driver; 0: unknown
	// LayerRPS is its speed in layer-positions per second; 0: unknown.
	LayerRPS float64
}

// Hop is one stage of a route: layers [First, Last) on Peer (a sub-range
// of what the peer serves when the route enters it midway).
type Hop struct {
	Peer        Peer
	First, Last int
}

// Mode selects how Route chooses among spans.
type Mode string

// Routing modes.
const (
	// MinLatency minimises the expected time of one token's pass:
	// Petals' min_latency sequence manager.
	MinLatency Mode = "min_latency"
	// MaxThroughput prefers the fewest hops (the longest spans, ties to
	// the fastest server), spreading no load but crossing the network least.
	MaxThroughput Mode = "max_throughput"
)

// ErrMissingLayers is wrapped by MissingLayersError.
var ErrMissingLayers = errors.New("swarm: no server for some layers")

// MissingLayersError says which layers no (unbanned) server serves.
type MissingLayersError struct {
	Model  string
	Layers []int
}

func (e *MissingLayersError) Error() string {
	s := make([]string, len(e.Layers))
	for i, l := range e.Layers {
		s[i] = strconv.Itoa(l)
	}
	return fmt.Sprintf("swarm: no server for layers %s of %s", strings.Join(s, ", "), e.Model)
}

func (e *MissingLayersError) Unwrap() error { return ErrMissingLayers }

// Weights of the latency graph, as in Petals' _build_inference_graph.
const (
	hopOverhead    = 2 * time.Millisecond // encoding and decoding one hop's payload
	defaultRTT     = 150 * time.Millisecond
	defaultLayerPS = 300.0
)

// Route returns hops covering layers [first, last) of model from peers,
// skipping those for which banned returns true (nil: none).
func Route(model string, first, last int, peers []Peer, mode Mode, banned func(id string) bool) ([]Hop, error) {
	var usable []Peer
	for _, p := range peers {
		if p.Model == model && p.First < p.Last && (banned == nil || !banned(p.ID)) {
			usable = append(usable, p)
		}
	}
	var missing []int
	for l := first; l < last; l++ {
		if !slices.ContainsFunc(usable, func(p Peer) bool { return p.First <= l && l < p.Last }) {
			missing = append(missing, l)
		}
	}
	if missing != nil {
		return nil, &MissingLayersError{Model: model, Layers: missing}
	}
	if first >= last {
		return nil, nil
	}
	switch mode {
	case MaxThroughput:
		return routeFewestHops(first, last, usable), nil
	case MinLatency, "":
		return routeMinLatency(first, last, usable), nil
	}
	return nil, fmt.Errorf("swarm: unknown routing mode %q", mode)
}

// routeFewestHops walks from first, taking at each layer the peer that
// reaches furthest (the fastest among equals).
func routeFewestHops(first, last int, peers []Peer) []Hop {
	var hops []Hop
	for l := first; l < last; {
		best := -1
		for i, p := range peers {
			if p.First > l || p.Last <= l {
				continue
			}
			if best < 0 || p.Last > peers[best].Last || p.Last == peers[best].Last && cost(p, 1) < cost(peers[best], 1) {
				best = i
			}
		}
		end := min(peers[best].Last, last)
		hops = append(hops, Hop{Peer: peers[best], First: l, Last: end})
		l = end
	}
	return hops
}

// cost is the expected time for peer p to take one hop and run n layers.
func cost(p Peer, n int) time.Duration {
	rtt := p.RTT
	if rtt <= 0 {
		rtt = defaultRTT
	}
	rps := p.LayerRPS
	if rps <= 0 {
		rps = defaultLayerPS
	}
	return rtt + hopOverhead + time.Duration(float64(n)/rps*float64(time.Second))
}

// routeMinLatency runs Dijkstra on Petals' graph: nodes are (peer, layer
// boundary); entering peer p at its boundary l costs p's round trip
// (hidden states go driver -> p -> driver) plus the overhead; running one
// layer costs 1/speed; leaving is possible only at the end of p's span
// (or at last), which keeps the graph linear in the number of spans.
func routeMinLatency(first, last int, peers []Peer) []Hop {
	type node struct{ peer, layer int } // peer -1: the source
	id := func(n node) int { return (n.peer+1)*(last+1) + n.layer }
	dist := map[int]time.Duration{}
	prev := map[int]node{}
	src := node{-1, first}
	dist[id(src)] = 0
	pq := &nodeHeap{}
	heap.Push(pq, nodeItem{n: [2]int{src.peer, src.layer}, d: 0})
	relax := func(from, to node, d time.Duration) {
		if old, ok := dist[id(to)]; !ok || d < old {
			dist[id(to)] = d
			prev[id(to)] = from
			heap.Push(pq, nodeItem{n: [2]int{to.peer, to.layer}, d: d})
		}
	}
	var end node
	found := false
	for pq.Len() > 0 {
		it := heap.Pop(pq).(nodeItem)
		n := node{it.n[0], it.n[1]}
		if it.d > dist[id(n)] {
			continue
		}
		if n.layer == last && n.peer >= 0 {
			end, found = n, true
			break
		}
		canSwitch := n.peer < 0 || peers[n.peer].Last == n.layer
		if canSwitch {
			for j, p := range peers {
				if p.First <= n.layer && n.layer < p.Last {
					rps := p.LayerRPS
					if rps <= 0 {
						rps = defaultLayerPS
					}
					// Entering j and running its first layer.
					relax(n, node{j, n.layer + 1}, it.d+cost(p, 0)+time.Duration(float64(time.Second)/rps))
				}
			}
		}
		if n.peer >= 0 && n.layer < peers[n.peer].Last && n.layer < last {
			p := peers[n.peer]
			rps := p.LayerRPS
			if rps <= 0 {
				rps = defaultLayerPS
			}
			relax(n, node{n.peer, n.layer + 1}, it.d+time.Duration(float64(time.Second)/rps))
		}
	}
	if !found {
		return nil // cannot happen: every layer is covered
	}
	// Walk back: a run of nodes of one peer is one hop.
	var hops []Hop
	n, hopLast := end, end.layer
	for {
		p := prev[id(n)]
		if p.peer == n.peer {
			n = p
			continue
		}
		hops = append([]Hop{{Peer: peers[n.peer], First: n.layer - 1, Last: hopLast}}, hops...)
		if p.peer < 0 {
			return hops
		}
		n, hopLast = p, p.layer
	}
}

type nodeItem struct {
	n [2]int
	d time.Duration
}

type nodeHeap []nodeItem

func (h nodeHeap) Len() int           { return len(h) }
func (h nodeHeap) Less(i, j int) bool { return h[i].d < h[j].d }
func (h nodeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nodeHeap) Push(x any)        { *h = append(*h, x.(nodeItem)) }
func (h *nodeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Bans are temporary bans of failing servers: the n-th failure in a row
// bans a server for Base·2^(n-1) (at most Max), as Petals' Blacklist with
// backoff_rate 2. A success clears the count.
type Bans struct {
	Base, Max time.Duration
	Now       func() time.Time

	mu sync.Mutex
	m  map[string]banEntry
}

type banEntry struct {
	failures int
	until    time.Time
}

// NewBans returns bans starting at base (default 15 s, Petals'
// ban_timeout) and capped at max (default 10 min).
func NewBans(base, max time.Duration) *Bans {
	if base <= 0 {
		base = 15 * time.Second
	}
	if max <= 0 {
		max = 10 * time.Minute
	}
	return &Bans{Base: base, Max: max, Now: time.Now, m: map[string]banEntry{}}
}

// Fail records a failure of id and returns how long it is now banned for.
func (b *Bans) Fail(id string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[id]
	e.failures++
	d := time.Duration(float64(b.Base) * math.Pow(2, float64(e.failures-1)))
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	e.until = b.Now().Add(d)
	b.m[id] = e
	return d
}

// Succeed clears id's failure count.
func (b *Bans) Succeed(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, id)
}

// Banned reports whether id is banned now.
func (b *Bans) Banned(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[id]
	return ok && b.Now().Before(e.until)
}
